"""A real single-host Slurm 22.05 for engine tests: munged, slurmctld and one slurmd per fake node.

Every daemon runs as root in the foreground, detached with setsid, with its own files under
`root` (config, munge key and socket, state, spool, logs), its own free ports and
`NodeAddr=127.0.0.1`, so nothing of the machine's own Slurm or munge setup is touched and
several clusters could run side by side. GPUs are GRES without hardware: `Name=gpu` needs
`File=` paths in 22.05 (`Count=` alone leaves the node INVAL), so each node gets symlinks to
/dev/null.

Use from a test module (tests/ has no __init__.py, so this is a plain module):

    import slurm_cluster as cluster_module
    from slurm_cluster import SlurmCluster

    slurm_cluster = cluster_module.slurm_cluster  # bound at module level so pytest finds them
    slurm = cluster_module.slurm

    @pytest.mark.slurm
    def test_x(slurm: SlurmCluster) -> None: ...

`slurm_cluster` is the module-scoped cluster; `slurm` is the same cluster reset to "no jobs,
every node idle and resumed" before each test. Without the Slurm binaries the fixtures skip,
or fail under CI=true (CI must prove these paths). Daemons get SIGTERM if the test process
dies without teardown (PR_SET_PDEATHSIG); a job's slurmstepd and `sleep` (double-forked by
slurmd) then live on until the sleep ends, which is why test jobs sleep briefly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from child_guard import guard

T = TypeVar("T")

__all__ = [
    "DEFAULT_NODES",
    "SlurmCluster",
    "SlurmStartError",
    "require_slurm",
    "slurm",
    "slurm_available",
    "slurm_cluster",
]

IN_CI = os.environ.get("CI", "").lower() == "true"
READY_TIMEOUT_S = 20.0
BINARIES = ("munged", "slurmctld", "slurmd", "scontrol", "sinfo", "squeue", "sbatch", "scancel")

# (node name, partition, gres type, gres count): two nvidia nodes, two domestic ones.
DEFAULT_NODES: list[tuple[str, str, str, int]] = [
    ("gpu01", "gpu", "h100", 8),
    ("gpu02", "gpu", "h100", 8),
    ("npu01", "npu", "910b", 8),
    ("npu02", "npu", "910b", 8),
]
NODE_CPUS = 16  # claimed via config_overrides; jobs take one CPU each
NODE_MEMORY_MIB = 64000


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/bin", "/sbin"):
        if Path(d, name).exists():
            return str(Path(d, name))
    return None


def slurm_available() -> bool:
    return all(_binary(b) for b in BINARIES)


def require_slurm() -> None:
    """Skip the calling test without Slurm; under CI=true fail instead of skipping."""
    if slurm_available():
        return
    missing = " ".join(b for b in BINARIES if not _binary(b))
    message = (
        f"Slurm is not available (missing {missing}): "
        "apt-get install slurm-wlm slurmctld slurmd munge"
    )
    if IN_CI:
        pytest.fail(f"CI=true and {message} (scripts/setup.sh --system installs it)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmStartError(RuntimeError):
    """A daemon did not come up or the nodes never went idle; the message holds the logs."""


class SlurmCluster:
    """Slurm with one controller and `nodes` (name, partition, gres type, count) in `root`."""

    def __init__(self, root: Path, nodes: list[tuple[str, str, str, int]] | None = None) -> None:
        self.root = Path(root).resolve()
        self.nodes = list(nodes or DEFAULT_NODES)
        self.hostname = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_dir = self.root / "munge"
        self.munge_key = self.munge_dir / "munge.key"
        self.munge_socket = self.munge_dir / "socket" / "munge.socket"
        self.log_dir = self.root / "log"
        self.job_dir = self.root / "jobs"  # cwd and output of test jobs
        self.ctld_port = 0
        self._munged: subprocess.Popen[bytes] | None = None
        self._ctld: subprocess.Popen[bytes] | None = None
        self._slurmds: dict[str, subprocess.Popen[bytes]] = {}

    # --- public view ----------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """Environment for client commands (scontrol, sinfo, ...) against this cluster."""
        # A developer's shell (or a CI job running inside Slurm) may carry settings of another
        # cluster; SBATCH_*/SQUEUE_* variables change what the commands do.
        prefixes = ("SLURM_", "SBATCH_", "SQUEUE_", "SINFO_", "SCONTROL_", "SALLOC_", "SRUN_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env["SLURM_CONF"] = str(self.conf)
        return env

    @property
    def node_names(self) -> list[str]:
        return [n[0] for n in self.nodes]

    def run(self, *argv: str, check: bool = True, timeout: float = 30) -> str:
        """Run a Slurm client command against this cluster; stdout."""
        out = subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: rc {out.returncode}: {out.stderr.strip()}")
        return out.stdout

    def sbatch(
        self,
        script_text: str,
        partition: str,
        gres: str,
        nodes: int = 1,
        name: str = "fleetops-test",
        extra: tuple[str, ...] = (),
    ) -> str:
        """Submit a batch job (tests use `sleep` scripts); its id. `gres` like gpu:h100:2."""
        script = self.job_dir / f"job-{time.monotonic_ns()}.sh"
        script.write_text(script_text)
        out = self.run(
            "sbatch", "--parsable", "-p", partition, f"--gres={gres}", "-N", str(nodes),
            "-J", name, "-D", str(self.job_dir), "-o", str(self.job_dir / "slurm-%j.out"),
            "--time=10", *extra, str(script),
        )  # fmt: skip
        return out.strip().split(";")[0]

    def squeue(self) -> list[dict]:
        return json.loads(self.run("squeue", "--json"))["jobs"]

    def sinfo(self) -> dict[str, dict]:
        return {n["name"]: n for n in json.loads(self.run("sinfo", "--json"))["nodes"]}

    def wait_for(
        self, what: str, predicate: Callable[[], T], timeout: float = 20.0, every: float = 0.2
    ) -> T:
        """Poll `predicate()` until it returns something truthy; that value, or raise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"slurm test cluster: {what} not reached in {timeout} s")
            time.sleep(every)

    def job_state(self, job_id: str) -> str | None:
        for j in self.squeue():
            if str(j["job_id"]) == job_id:
                return j["job_state"]
        return None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> SlurmCluster:
        for d in (self.root, self.log_dir, self.job_dir, self.root / "state", self.root / "run"):
            d.mkdir(parents=True, exist_ok=True)
        try:
            self._write_files()
            self._start_munged()
            self.start_controller(wait_for_nodes=False)
            for name in self.node_names:
                self._start_slurmd(name)
            self.wait_until_idle()
        except BaseException:
            self.stop()
            raise
        return self

    def start_controller(self, wait_for_nodes: bool = True) -> None:
        """Start slurmctld (again: it keeps its state in StateSaveLocation) and wait for it,
        and for every node to have registered again."""
        if self._ctld is not None and self._ctld.poll() is None:
            return
        self._ctld = self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            out = subprocess.run(
                ["scontrol", "ping"], env=self.env, capture_output=True, text=True, timeout=30
            )
            if "is UP" in out.stdout:
                break
            if self._ctld.poll() is not None or time.monotonic() > deadline:
                raise SlurmStartError(f"slurmctld did not come up:\n{self._log('slurmctld')}")
            time.sleep(0.1)

        def known() -> bool:  # after a restart nodes are "unknown" until slurmd re-registers
            try:
                nodes = self.sinfo()
            except (RuntimeError, ValueError):
                return False
            return bool(nodes) and all(n["state"] != "unknown" for n in nodes.values())

        if wait_for_nodes:
            self.wait_for("nodes registered", known, READY_TIMEOUT_S)

    def stop_controller(self, crash: bool = False) -> None:
        """Stop slurmctld: SIGTERM (it saves its state, like `systemctl stop`), or SIGKILL with
        crash=True. Nodes and jobs keep running; client commands fail until start_controller."""
        if self._ctld is not None:
            if self._ctld.poll() is None:
                if crash:
                    self._ctld.kill()
                else:
                    self._ctld.terminate()
            try:
                self._ctld.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._ctld.kill()
                self._ctld.wait(timeout=5)
            self._ctld = None

    def wait_until_idle(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until every node is idle without flags (and so accepts jobs)."""

        def idle() -> bool:
            try:
                nodes = self.sinfo()
            except (RuntimeError, ValueError):
                return False
            return set(nodes) >= set(self.node_names) and all(
                nodes[n]["state"] == "idle" and not nodes[n].get("state_flags")
                for n in self.node_names
            )

        try:
            self.wait_for("all nodes idle", idle, timeout)
        except TimeoutError as exc:
            state = self.run("sinfo", "-N", "-o", "%N %T %E", check=False)
            raise SlurmStartError(f"{exc}\n{state}\n{self._log('slurmctld')}") from None

    def reset(self) -> None:
        """Back to a clean cluster between tests: no jobs, every node resumed and idle."""
        if self._ctld is None or self._ctld.poll() is not None:
            self.start_controller()
        self.run("scancel", "--full", "--user", "root", check=False)
        self.wait_for("no live jobs", lambda: not self._live_jobs(), timeout=30)
        for name, node in self.sinfo().items():
            flags = node.get("state_flags") or []
            if "DRAIN" in flags or node["state"] in ("down", "drained"):
                self.run("scontrol", "update", f"NodeName={name}", "State=RESUME", check=False)
        self.wait_until_idle()

    def stop(self) -> None:
        """Cancel the jobs, then stop every daemon and whatever they left running."""
        if self._ctld is not None and self._ctld.poll() is None:
            with contextlib.suppress(Exception):
                self.run("scancel", "--full", "--user", "root", check=False, timeout=10)
                self.wait_for("no live jobs", lambda: not self._live_jobs(), timeout=10)
        procs = [*self._slurmds.values(), self._ctld, self._munged]
        for p in procs:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in procs:
            if p is not None:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        self._slurmds.clear()
        self._ctld = self._munged = None
        self._kill_leftover_steps()

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- internals ------------------------------------------------------------------------------

    def _live_jobs(self) -> list[dict]:
        done = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"}  # fmt: skip
        try:
            return [j for j in self.squeue() if j["job_state"] not in done]
        except (RuntimeError, ValueError):
            return [{"unknown": True}]

    def _write_files(self) -> None:
        self.ctld_port = free_port()
        partitions: dict[str, list[str]] = {}
        for name, partition, _, _ in self.nodes:
            partitions.setdefault(partition, []).append(name)
            (self.root / "spool" / name).mkdir(parents=True, exist_ok=True)  # SlurmdSpoolDir/%n
        lines = [
            "# Written by tests/slurm_cluster.py: a private test cluster on loopback.",
            "ClusterName=fleetops-test",
            f"SlurmctldHost={self.hostname}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={free_port()}",  # default only: every node has its own Port=
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool' / '%n'}",
            f"SlurmctldPidFile={self.root / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'run' / 'slurmd.%n.pid'}",
            f"SlurmctldLogFile={self.log_dir / 'slurmctld.log'}",
            f"SlurmdLogFile={self.log_dir / 'slurmd.%n.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "SlurmdParameters=config_overrides",  # nodes claim more CPUs/memory than we have
            "SlurmdTimeout=6",  # also how often slurmctld pings nodes (a third of it)
            "SlurmctldTimeout=10",
            "MessageTimeout=3",  # clients retry a stopped controller this many seconds
            "ReturnToService=2",
            "MailProg=/bin/true",
            "ProctrackType=proctrack/linuxproc",  # no cgroups/systemd in test containers
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",  # no memory accounting: jobs would take it all
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=1",
            "GresTypes=gpu",
            "JobRequeue=1",
            "MinJobAge=60",
            "KillWait=1",
            "InactiveLimit=0",
        ]
        for name, _, gtype, count in self.nodes:
            lines.append(
                f"NodeName={name} NodeAddr=127.0.0.1 NodeHostname={self.hostname} "
                f"Port={free_port()} CPUs={NODE_CPUS} "
                f"RealMemory={NODE_MEMORY_MIB} Gres=gpu:{gtype}:{count} State=UNKNOWN"
            )
        for partition, names in partitions.items():
            lines.append(
                f"PartitionName={partition} Nodes={','.join(names)} "
                "MaxTime=INFINITE State=UP OverSubscribe=NO"
            )
        self.conf.write_text("\n".join(lines) + "\n")
        gres = []
        for name, _, gtype, count in self.nodes:
            dev = self.root / "dev" / name
            dev.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                link = dev / f"nvidia{i}"
                if not link.is_symlink():
                    link.symlink_to("/dev/null")
            files = f"{dev}/nvidia[0-{count - 1}]" if count > 1 else f"{dev}/nvidia0"
            gres.append(f"NodeName={name} Name=gpu Type={gtype} File={files}")
        (self.root / "gres.conf").write_text("\n".join(gres) + "\n")

    def _start_munged(self) -> None:
        self.munge_socket.parent.mkdir(parents=True, exist_ok=True)
        self.munge_dir.chmod(0o700)
        self.munge_socket.parent.chmod(0o711)  # clients must reach the socket
        if not self.munge_key.exists():
            self.munge_key.write_bytes(os.urandom(1024))
            self.munge_key.chmod(0o400)
        self._munged = self._spawn(
            "munged",
            [
                "munged", "-F", "--force",
                f"--key-file={self.munge_key}",
                f"--socket={self.munge_socket}",
                f"--pid-file={self.munge_dir / 'munged.pid'}",
                f"--seed-file={self.munge_dir / 'munged.seed'}",
                f"--log-file={self.log_dir / 'munged.log'}",
            ],
        )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.munge_socket.exists():
            if self._munged.poll() is not None or time.monotonic() > deadline:
                raise SlurmStartError(f"munged did not come up:\n{self._log('munged')}")
            time.sleep(0.02)

    def _start_slurmd(self, name: str) -> None:
        self._slurmds[name] = self._spawn(
            f"slurmd.{name}", ["slurmd", "-D", "-N", name, "-f", str(self.conf)]
        )

    def _spawn(self, log_name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        argv = [_binary(argv[0]) or argv[0], *argv[1:]]
        out = (self.log_dir / f"{log_name}.stderr").open("ab")
        with out:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=self.env,
                cwd=self.root,
                start_new_session=True,  # a Ctrl-C in the terminal is for pytest
                preexec_fn=guard(),
            )

    def _log(self, name: str) -> str:
        parts = []
        for path in (self.log_dir / f"{name}.log", self.log_dir / f"{name}.stderr"):
            if path.exists():
                parts.append("".join(path.read_text(errors="replace").splitlines(True)[-30:]))
        return "\n".join(parts)

    def _kill_leftover_steps(self) -> None:
        """slurmstepd and job processes outlive slurmd (it double-forks them): kill the ones
        working in this cluster's directories, found by their cwd, by pid."""
        mine: list[int] = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if cwd == str(self.root) or cwd.startswith(str(self.root) + os.sep):
                mine.append(int(entry))
        for pid in mine:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)




@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A started SlurmCluster: gpu01-02 (h100 x8, partition gpu), npu01-02 (910b x8, npu)."""
    require_slurm()
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"), DEFAULT_NODES)
    try:
        cluster.start()
    except SlurmStartError as exc:
        pytest.fail(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster) -> SlurmCluster:
    """The module's cluster, reset: no jobs, every node resumed and idle."""
    slurm_cluster.reset()
    return slurm_cluster
