"""agent_install: the agent installed alone against the full console install; size and start-up.

Builds the project's wheel, installs it into two fresh virtual environments with real
dependency resolution (from the package index pip is configured with, so it needs the
network): `fleetops[agent]` (what a GPU node gets) and `fleetops[console]` (an operator's
machine). The environments are made without pip (`python -m venv --without-pip`; this pip
installs into them with `--python`, pip >= 22.3), so site-packages holds only fleetops and
what it pulled in. For each: site-packages size, total and per distribution (the files its
RECORD lists, https://packaging.python.org/en/latest/specifications/recording-installed-packages/),
and the median wall and CPU time of `import agents.cli` (net of a bare interpreter's start)
and of a whole `fleetops-agent once --collector sim --json`. The console environment also
gets `import console.cli.main` and `fleetops --version`; the agent one checks that `fleetops`
says in one line what it lacks.
"""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import result

ROOT = Path(__file__).parents[1]
CONSOLE_DISTS = {"rich", "textual", "asyncssh", "pydantic", "pydantic-core", "pygments",
                 "markdown-it-py", "cryptography"}
MB = 1e6

# Runs in the target environment: site-packages bytes, in all and per distribution.
SIZES = r"""
import importlib.metadata as md, json, os, sysconfig
sp = os.path.realpath(sysconfig.get_paths()["purelib"])
total = 0
for root, _dirs, files in os.walk(sp):
    total += sum(os.lstat(os.path.join(root, f)).st_size for f in files)
per, parts = {}, {}
for d in md.distributions(path=[sp]):
    name = d.metadata["Name"].lower().replace("_", "-")
    size = 0
    for f in d.files or ():
        p = os.path.realpath(d.locate_file(f))
        if p.startswith(sp + os.sep) and os.path.isfile(p):
            size += os.lstat(p).st_size
            if name == "fleetops":  # agents/, console/, themes/, the dist-info
                top = f.parts[0] if not f.parts[0].endswith(".dist-info") else "dist-info"
                parts[top] = parts.get(top, 0) + os.lstat(p).st_size
    per[name] = size
print(json.dumps({"total": total, "per": per, "fleetops": parts}))
"""


def _sh(*cmd: str | Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


def _wheel(tmp: Path) -> Path:
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "tests",
        "bench", "out"))
    _sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp / "dist", src)
    (wheel,) = (tmp / "dist").glob("fleetops-*.whl")
    return wheel


def _venv(tmp: Path, name: str, requirement: str) -> Path:
    env = tmp / name
    _sh(sys.executable, "-m", "venv", "--without-pip", env)
    t0 = time.monotonic()
    _sh(sys.executable, "-m", "pip", "--python", env / "bin" / "python", "install", "-q",
        requirement)
    print(f"agent_install: {name}: installed in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return env


def _timed(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `cmd` (one warm-up run first: .pyc files, page cache)."""
    subprocess.run(cmd, check=True, capture_output=True)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def _measure(env: Path, runs: int, console: bool) -> dict:
    py, bin_ = str(env / "bin" / "python"), env / "bin"
    sizes = json.loads(_sh(py, "-c", SIZES).stdout)
    base_wall, base_cpu = _timed([py, "-c", "pass"], runs)
    times = {}
    commands = {"import agents.cli": [py, "-c", "import agents.cli"],
                "fleetops-agent once --json": [str(bin_ / "fleetops-agent"), "once",
                                               "--collector", "sim", "--json"]}
    if console:
        commands["import console.cli.main"] = [py, "-c", "import console.cli.main"]
        commands["fleetops --version"] = [str(bin_ / "fleetops"), "--version"]
    for label, cmd in commands.items():
        wall, cpu = _timed(cmd, runs)
        if label.startswith("import "):  # the import alone: net of the interpreter's start
            wall, cpu = wall - base_wall, cpu - base_cpu
        times[label] = (wall, cpu)
    return {"sizes": sizes, "times": times, "python_start": (base_wall, base_cpu)}


def _fmt_sizes(name: str, sizes: dict) -> str:
    per = sorted(sizes["per"].items(), key=lambda kv: -kv[1])
    listed = ", ".join(f"{n} {b / MB:.2f}" for n, b in per)
    return (f"  {name}: site-packages {sizes['total'] / MB:.1f} MB "
            f"({len(per)} distributions: {listed})")


def run(quick: bool = False) -> int:
    try:
        return _run(quick)
    except subprocess.CalledProcessError as exc:  # no network, no index: say so, briefly
        tail = (exc.stderr or "").strip().splitlines()[-3:]
        print(f"agent_install: {' '.join(map(str, exc.cmd))} failed (exit {exc.returncode}): "
              + " / ".join(tail), file=sys.stderr)
        return 1


def _run(quick: bool) -> int:
    runs = 5 if quick else 20
    with tempfile.TemporaryDirectory(prefix="fleetops-bench-") as tmp_name:
        tmp = Path(tmp_name)
        wheel = _wheel(tmp)
        agent_env = _venv(tmp, "agent", f"{wheel}[agent]")
        console_env = _venv(tmp, "console", f"{wheel}[console]")
        agent = _measure(agent_env, runs, console=False)
        console = _measure(console_env, runs, console=True)
        refusal = subprocess.run([str(agent_env / "bin" / "fleetops"), "nodes"],
                                 capture_output=True, text=True)

    a_size, c_size = agent["sizes"]["total"] / MB, console["sizes"]["total"] / MB
    leaked = sorted(CONSOLE_DISTS & set(agent["sizes"]["per"]))
    print(f"agent_install: wheel {wheel.name}, medians of {runs} runs, Python "
          f"{sys.version.split()[0]} (a bare interpreter starts in "
          f"{agent['python_start'][0] * 1000:.0f} ms)")
    print(_fmt_sizes("fleetops[agent]  ", agent["sizes"]))
    print(_fmt_sizes("fleetops[console]", console["sizes"]))
    print("  of which fleetops itself: " + ", ".join(
        f"{n} {b / MB:.2f}" for n, b in sorted(agent["sizes"]["fleetops"].items())) + " MB")
    for name, figures in (("fleetops[agent]  ", agent), ("fleetops[console]", console)):
        shown = "; ".join(f"{label}: {w * 1000:.0f} ms wall, {c * 1000:.0f} ms CPU"
                          for label, (w, c) in figures["times"].items())
        print(f"  {name}: {shown}")
    print(f"  fleetops[agent]: `fleetops nodes` -> exit {refusal.returncode}: "
          f"{refusal.stderr.strip()}")

    result("agent_install", a_size, "MB site-packages, fleetops[agent]", "< 5", a_size < 5,
           metric="agent_size", packages={n: round(b / MB, 3)
                                          for n, b in agent["sizes"]["per"].items()},
           fleetops_parts={n: round(b / MB, 3) for n, b in agent["sizes"]["fleetops"].items()})
    result("agent_install", len(leaked), "console packages in fleetops[agent]", "0",
           not leaked, metric="agent_console_packages", leaked=leaked)
    result("agent_install", c_size, "MB site-packages, fleetops[console]", "(reference)", True,
           metric="console_size", packages={n: round(b / MB, 3)
                                            for n, b in console["sizes"]["per"].items()})
    for env_name, figures in (("agent", agent), ("console", console)):
        for label, (wall, cpu) in figures["times"].items():
            key = label.replace("import ", "import_").replace(" ", "_").replace("-", "")
            ms = wall * 1000
            goal, ok = ("(reference)", True)
            if env_name == "agent" and label == "import agents.cli":
                goal, ok = "< 100", ms < 100
            result("agent_install", ms, f"ms wall, {label}, fleetops[{env_name}]", goal, ok,
                   metric=f"{env_name}:{key}", cpu_ms=round(cpu * 1000, 1))
    one_line = (refusal.returncode == 2 and refusal.stderr.count("\n") == 1
                and "fleetops[console]" in refusal.stderr)
    result("agent_install", refusal.returncode, "exit code of `fleetops nodes` in "
           "fleetops[agent] (one line on stderr)", "2", one_line, metric="console_refusal")
    return 0
