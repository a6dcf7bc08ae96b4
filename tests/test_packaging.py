"""The agent runs with only its own packages; the console says what it lacks.

No network: instead of installing the agent alone, each agent command runs in a child
interpreter in which the console's packages cannot be imported (a finder at the head of
`sys.meta_path` refuses them, as if they were not installed), and again with everything
installed to show that none of them is even loaded. `python -m bench agent_install` does the
real install from PyPI and measures it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from console.entry import CONSOLE_PACKAGES

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# What a node must never load: the console, its packages and theirs (Rich brings Pygments and
# markdown-it; pydantic brings pydantic_core; asyncssh brings cryptography).
CONSOLE_ONLY = (*CONSOLE_PACKAGES, "console", "themes", "pydantic_core", "pygments",
                "markdown_it", "cryptography")
SIM = ["--collector", "sim", "--sim-devices", "2"]

# A child interpreter: hide HIDDEN (comma-separated top-level names), run `main(ARGV)` of
# MODULE, then write the top-level names of every loaded module to OUT as JSON.
CHILD = """
import json, sys
hidden, module, out, argv = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
class Hide:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in hidden.split(","):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden)", name=name)
        return None
if hidden:
    sys.meta_path.insert(0, Hide)
import importlib
try:
    rc = importlib.import_module(module).main(argv)
finally:
    with open(out, "w") as f:
        json.dump(sorted({m.partition(".")[0] for m in sys.modules}), f)
sys.exit(rc)
"""


def child(tmp_path: Path, module: str, argv: list[str], hidden: tuple[str, ...]):
    out = tmp_path / f"modules-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-c", CHILD, ",".join(hidden), module, str(out), json.dumps(argv)]
    return cmd, out


def run_child(tmp_path, module, argv, hidden=()):
    cmd, out = child(tmp_path, module, argv, hidden)
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    return r, json.loads(out.read_text()) if out.exists() else None


def _console_only(loaded: list[str]) -> list[str]:
    return [m for m in loaded if m in CONSOLE_ONLY]


@pytest.mark.parametrize("hidden", [CONSOLE_ONLY, ()], ids=["console-hidden", "all-installed"])
@pytest.mark.parametrize("argv", [
    ["stream", *SIM, "--interval", "0.05", "--count", "1"],
    ["once", *SIM],
    ["once", *SIM, "--json"],
    ["schema"],
    ["--version"],
], ids=["stream", "once", "once-json", "schema", "version"])
def test_agent_commands_need_and_load_nothing_of_the_console(tmp_path, argv, hidden):
    r, loaded = run_child(tmp_path, "agents.cli", argv, hidden)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout and b"Traceback" not in r.stderr
    assert _console_only(loaded) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("hidden", [CONSOLE_ONLY, ()], ids=["console-hidden", "all-installed"])
def test_daemon_with_metrics_and_a_relaying_stream_need_nothing_of_the_console(tmp_path, hidden):
    sock, port = str(tmp_path / "agent.sock"), _free_port()
    cmd, out = child(tmp_path, "agents.cli", ["daemon", *SIM, "--interval", "0.1",
                                              "--socket", sock,
                                              "--metrics-addr", f"127.0.0.1:{port}"], hidden)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        body = None
        while body is None:
            assert p.poll() is None, p.stderr.read().decode()
            assert time.monotonic() < deadline, "the daemon never served"
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                              timeout=5).read()
            except OSError:
                time.sleep(0.05)
        # a socket client: `stream` relays the daemon (sockpath, peer checks, relay)
        while b"DCGM_FI_DEV_GPU_UTIL{" not in body:
            assert time.monotonic() < deadline, "no report reached the metrics"
            time.sleep(0.05)
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        r, relayed = run_child(tmp_path, "agents.cli", ["stream", "--socket", sock,
                                                        "--count", "1"], hidden)
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout.startswith(b'{"kind":"hello"')
        assert _console_only(relayed) == []
    finally:
        p.terminate()
        _, err = p.communicate(timeout=20)
    assert p.returncode == 0, err.decode()
    assert _console_only(json.loads(out.read_text())) == []


@pytest.mark.parametrize("argv", [["nodes"], [], ["--version"], ["audit", "--json"]],
                         ids=["nodes", "tui", "version", "audit"])
@pytest.mark.parametrize("hidden", [CONSOLE_PACKAGES, ("textual",), ("rich",)],
                         ids=["all", "textual", "rich"])
def test_console_without_its_packages_is_one_line_exit_2(tmp_path, argv, hidden):
    r, _ = run_child(tmp_path, "console.entry", argv, hidden)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("fleetops: the console needs its own packages (missing: ")
    assert err.endswith(": pip install 'fleetops[console]'\n")
    for name in hidden:
        assert name in err
    assert r.stdout == b""


def test_the_console_runs_through_the_check_when_its_packages_are_there(tmp_path):
    r, _ = run_child(tmp_path, "console.entry", ["--version"])
    assert r.returncode == 0 and r.stdout.startswith(b"fleetops ")


def test_the_commands_and_dependency_sets_are_the_ones_documented():
    project = PYPROJECT["project"]
    assert project["scripts"] == {"fleetops": "console.entry:main",
                                  "fleetops-agent": "agents.cli:main"}
    names = {Requirement(r).name for r in project["dependencies"]}
    assert names == {"msgspec", "nvidia-ml-py", "prometheus-client"}
    extras = project["optional-dependencies"]
    assert extras["agent"] == []  # the base install is the agent
    assert {Requirement(r).name for r in extras["console"]} == set(CONSOLE_PACKAGES)
    assert "fleetops[console]" in extras["test"]  # the suite drives the console too
