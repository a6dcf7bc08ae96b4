"""A real OpenSSH fleet for integration tests: private sshd processes on loopback addresses.

Each simulated host is its own loopback address (127.0.0.2, 127.0.0.3, ...; all of 127/8 is
loopback), so every node is a separate SSH connection exactly as in production. One sshd listens
on at most 16 addresses ("Too many listen sockets"), so larger fleets run several sshds.

Use from a test module (tests/ has no __init__.py, so pytest's default "prepend" import mode puts
tests/ on sys.path and this is a plain module):

    import sshd
    from sshd import SshdFleet

    sshd_fleet = sshd.sshd_fleet  # bound at module level so pytest finds the fixture

    @pytest.mark.sshd
    def test_x(sshd_fleet: SshdFleet) -> None: ...

    @pytest.mark.parametrize("sshd_fleet", [20], indirect=True)   # 20 hosts instead of 3

(`from sshd import sshd_fleet` also works for pytest, but ruff then reports each test argument
named sshd_fleet as a redefinition of the import, F811.)

When sshd is missing the fixture skips, or fails under CI=true (CI must prove these paths).
sshd processes get SIGTERM if the test process dies without teardown (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from child_guard import guard

__all__ = [
    "MAX_LISTEN_PER_SSHD",
    "SshdFleet",
    "SshdStartError",
    "require_sshd",
    "ssh_available",
    "sshd_fleet",
]

# sshd's compiled-in limit on listen sockets.
MAX_LISTEN_PER_SSHD = 16
FIRST_ADDRESS = ipaddress.IPv4Address("127.0.0.2")  # 127.0.0.1 stays the "real" localhost
READY_TIMEOUT_S = 10.0
IN_CI = os.environ.get("CI", "").lower() == "true"


def sshd_binary() -> str | None:
    found = shutil.which("sshd")
    if found:
        return os.path.abspath(found)  # sshd refuses to re-exec itself from a relative path
    return "/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None


def ssh_available() -> bool:
    """True when an OpenSSH server and ssh-keygen are installed."""
    return sshd_binary() is not None and shutil.which("ssh-keygen") is not None


def require_sshd() -> None:
    """Skip the calling test without OpenSSH; under CI=true fail instead of skipping."""
    if ssh_available():
        return
    message = "OpenSSH server is not available: apt-get install openssh-server"
    if IN_CI:
        pytest.fail(f"CI=true and {message} (scripts/setup.sh --system installs it)")
    pytest.skip(message)


def agent_path() -> Path:
    """Absolute path of the venv's fleetops-agent (remote commands run through a login shell)."""
    # Not resolved: the venv's python is a symlink out of the venv.
    beside = Path(os.path.abspath(sys.executable)).parent / "fleetops-agent"
    if beside.exists():
        return beside
    found = shutil.which("fleetops-agent")
    if found:
        return Path(os.path.abspath(found))
    return Path(__file__).resolve().parent.parent / ".venv" / "bin" / "fleetops-agent"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> Path:
    for p in (path, path.with_suffix(".pub")):
        p.unlink(missing_ok=True)  # ssh-keygen asks before overwriting
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleetops-test", "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def _public(key: Path) -> str:
    """'ssh-ed25519 AAAA...' of a key pair, without the comment."""
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def _openssh_version(sshd: str) -> tuple[int, int]:
    out = subprocess.run([sshd, "-V"], capture_output=True, text=True, timeout=10)
    m = re.search(r"OpenSSH_(\d+)\.(\d+)", out.stderr + out.stdout)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


Proc = tuple[int, str]  # (pid, start time in clock ticks): names a process despite pid reuse


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _alive(proc: Proc) -> bool:
    # A zombie counts as gone: it waits only for whoever reaps orphans.
    fields = _stat(proc[0])
    return fields is not None and fields[0] != "Z" and fields[19] == proc[1]


def _descendants(pids: set[int]) -> list[Proc]:
    """Live processes below `pids` (sshd's per-connection children call setsid, so a process
    group kill misses them; their parent pid still links them to the listener)."""
    children: dict[int, list[Proc]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append((int(entry), fields[19]))
    found: list[Proc] = []
    seen = set(pids)  # guards against a bad parse ever turning the tree into a cycle
    todo = list(pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child[0] not in seen:
                seen.add(child[0])
                found.append(child)
                todo.append(child[0])
    return found


class SshdStartError(RuntimeError):
    """An sshd did not come up; the message holds its stderr."""


class _Sshd:
    """One sshd process serving up to 16 addresses on one port."""

    def __init__(self, index: int, addresses: list[str], port: int, root: Path) -> None:
        self.index = index
        self.addresses = addresses
        self.port = port
        self.config = root / f"sshd_config.{index}"
        self.pidfile = root / f"sshd.{index}.pid"
        self.log = root / f"sshd.{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None


class SshdFleet:
    """`count` SSH hosts on 127.0.0.2... served by private sshds with their own keys in `root`."""

    def __init__(self, root: Path, count: int = 3, per_sshd: int = MAX_LISTEN_PER_SSHD) -> None:
        if not 1 <= per_sshd <= MAX_LISTEN_PER_SSHD:
            raise ValueError(f"per_sshd must be 1..{MAX_LISTEN_PER_SSHD}, got {per_sshd}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        sshd = sshd_binary()
        if sshd is None:
            raise RuntimeError("sshd is not installed (apt-get install openssh-server)")
        self.sshd = sshd
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.user = getpass.getuser()
        self.agent_path = agent_path()
        self.host_key = self.root / "host_ed25519"
        self.client_key = self.root / "client_ed25519"
        self.authorized_keys = self.root / "authorized_keys"
        self.known_hosts = self.root / "known_hosts"
        self._version = _openssh_version(sshd)
        self._strays: list[Proc] = []  # sessions left behind by kill()
        addresses = [str(FIRST_ADDRESS + i) for i in range(count)]
        self._sshds = [
            _Sshd(i // per_sshd, addresses[i : i + per_sshd], 0, self.root)
            for i in range(0, count, per_sshd)
        ]

    # --- public view ----------------------------------------------------------------------------

    @property
    def hosts(self) -> list[tuple[str, int]]:
        return [(a, s.port) for s in self._sshds for a in s.addresses]

    @property
    def logs(self) -> list[Path]:
        return [s.log for s in self._sshds]

    def connect_options(self) -> dict[str, object]:
        """asyncssh.connect keyword arguments for any host of this fleet (add host and port)."""
        return {
            "username": self.user,
            "client_keys": [str(self.client_key)],
            "known_hosts": str(self.known_hosts),
            "config": [],  # ignore ~/.ssh/config: tests must not depend on the runner's setup
        }

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> SshdFleet:
        """Create keys and configs, start every sshd and wait until each accepts connections."""
        _keygen(self.host_key)
        _keygen(self.client_key)
        self.authorized_keys.write_text(_public(self.client_key) + "\n")
        # The compiled-in privilege-separation dir; sshd refuses to start without it.
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        for s in self._sshds:
            # The port is probed on 127.0.0.1, so another process may take it on our addresses
            # before sshd binds: retry with a fresh one.
            for attempt in range(3):
                s.port = free_port()
                self._write_config(s)
                try:
                    self._spawn(s)
                    break
                except SshdStartError as exc:
                    if attempt == 2 or "Address already in use" not in str(exc):
                        self.stop()
                        raise
        self._write_known_hosts(self.known_hosts, self.host_key)
        return self

    def stop(self) -> None:
        """SIGTERM every sshd of the fleet, open sessions included, and wait for them."""
        listeners = {s.proc.pid for s in self._sshds if s.proc and s.proc.poll() is None}
        sessions = [p for p in _descendants(listeners) + self._strays if _alive(p)]
        self._strays = []
        for s in self._sshds:
            if s.proc is not None:
                s.proc.terminate()
        for pid, _ in sessions:
            _signal(pid, signal.SIGTERM)
        for s in self._sshds:
            if s.proc is not None:
                try:
                    s.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    s.proc.kill()
                    s.proc.wait(timeout=5)
                s.proc = None
        deadline = time.monotonic() + 5
        while (sessions := [p for p in sessions if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.01)
        for pid, _ in sessions:
            _signal(pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the listening sshds, like a crash: new connections are refused, sessions
        already open survive (as with a real sshd); stop() still cleans those up."""
        listeners = {s.proc.pid for s in self._sshds if s.proc and s.proc.poll() is None}
        self._strays += _descendants(listeners)
        for s in self._sshds:
            if s.proc is not None:
                s.proc.kill()
                s.proc.wait(timeout=5)
                s.proc = None

    def restart(self) -> None:
        """Start again on the same addresses, ports and host key (known_hosts stays valid)."""
        self.stop()
        for s in self._sshds:
            self._spawn(s)

    def rotate_host_key(self) -> None:
        """A new host key and a restart, without touching known_hosts: clients see a mismatch."""
        self.stop()
        _keygen(self.host_key)
        for s in self._sshds:
            self._spawn(s)

    def wrong_known_hosts(self) -> Path:
        """A known_hosts naming every host of the fleet with a key the servers do not have."""
        other = self.root / "other_host_ed25519"
        if not other.exists():
            _keygen(other)
        path = self.root / "known_hosts.wrong"
        self._write_known_hosts(path, other)
        return path

    def unauthorized_client_key(self) -> Path:
        """A client key pair not in authorized_keys."""
        key = self.root / "unauthorized_ed25519"
        if not key.exists():
            _keygen(key)
        return key

    def __enter__(self) -> SshdFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- inventory ------------------------------------------------------------------------------

    def node_names(self) -> list[str]:
        return [f"node-{i + 1:02d}" for i in range(len(self.hosts))]

    def write_inventory(
        self,
        path: Path,
        nodes: list[tuple[str, str, str]] | None = None,
        command: str | None = None,
    ) -> Path:
        """Write an inventory TOML with one node per host, in host order.

        `nodes`: (name, pool, sim model) per host, at most one per host ("" model = the sim's
        default for nvidia, 910B for domestic); default node-01... with pools alternating
        nvidia/domestic. `command`: the agent command line before the per-node arguments
        (--node NAME, --sim-model M); default: the venv's agent streaming the sim collector.
        """
        hosts = self.hosts
        if nodes is None:
            pools = ("nvidia", "domestic")
            nodes = [(n, pools[i % 2], "") for i, n in enumerate(self.node_names())]
        if len(nodes) > len(hosts):
            raise ValueError(f"{len(nodes)} nodes but only {len(hosts)} hosts")
        base = command or f"{self.agent_path} stream --collector sim --sim-devices 2 --interval 0.2"
        lines = [
            "# Generated by tests/sshd.py for a private sshd fleet on loopback.",
            "[defaults]",
            f"user = {_toml(self.user)}",
            f"identity_file = {_toml(str(self.client_key))}",
            f"known_hosts = {_toml(str(self.known_hosts))}",
            f"command = {_toml(base)}",
            "connect_timeout_s = 10",
            "",
            "[[dc]]",
            'name = "testdc"',
            'region = "local"',
            'country = "XX"',
        ]
        for (name, pool, model), (address, port) in zip(nodes, hosts, strict=False):
            # --node: frames must carry the inventory name, not this machine's hostname.
            node_cmd = f"{base} --node {name}"
            model = model or ("910B" if pool == "domestic" else "")
            if model:
                node_cmd += f" --sim-model {model}"
            lines += [
                "",
                "[[dc.node]]",
                f"name = {_toml(name)}",
                f"host = {_toml(address)}",
                f"port = {port}",
                f"pool = {_toml(pool)}",
                f"command = {_toml(node_cmd)}",
            ]
        path = Path(path)
        path.write_text("\n".join(lines) + "\n")
        return path

    # --- internals ------------------------------------------------------------------------------

    def _write_config(self, s: _Sshd) -> None:
        path_env = f"{self.agent_path.parent}:/usr/bin:/bin"
        lines = [
            f"Port {s.port}",
            *(f"ListenAddress {a}" for a in s.addresses),
            f'HostKey "{self.host_key}"',
            f'AuthorizedKeysFile "{self.authorized_keys}"',
            f'PidFile "{s.pidfile}"',
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",  # tests run as root
            "StrictModes no",  # keys live in world-readable temp dirs
            # SHLVL=1 stops bash from sourcing ~/.bashrc for `ssh host cmd` (costly per session).
            f"SetEnv PATH={path_env} SHLVL=1",
            "LogLevel ERROR",
            "MaxStartups 100:30:200",  # fan-out tests open many connections at once
            "MaxSessions 100",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "UseDNS no",
        ]
        if self._version >= (9, 8):
            # Every test client comes from 127.0.0.1: one deliberate auth failure must not get
            # the whole suite penalised.
            lines.append("PerSourcePenalties no")
        s.config.write_text("\n".join(lines) + "\n")

    def _write_known_hosts(self, path: Path, key: Path) -> None:
        public = _public(key)
        path.write_text("".join(f"[{a}]:{p} {public}\n" for a, p in self.hosts))

    def _spawn(self, s: _Sshd) -> None:
        """Start one sshd and wait until it accepts on every address; on failure, raise with
        what sshd said and leave nothing running."""
        offset = s.log.stat().st_size if s.log.exists() else 0
        with s.log.open("ab") as log:
            s.proc = subprocess.Popen(
                [self.sshd, "-D", "-e", "-f", str(s.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C in the terminal is for pytest, not sshd
                preexec_fn=guard(),
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = list(s.addresses)
        problem = ""
        while pending and not problem:
            said = _read_from(s.log, offset)
            if s.proc.poll() is not None:
                problem = f"exited with {s.proc.returncode}"
            elif "Address already in use" in said:  # sshd keeps running on the other addresses
                problem = "could not bind every address"
            elif time.monotonic() > deadline:
                problem = f"not accepting on {pending[0]}:{s.port} after {READY_TIMEOUT_S} s"
            else:
                try:
                    with socket.create_connection((pending[0], s.port), timeout=0.5):
                        pending.pop(0)
                except OSError:
                    time.sleep(0.02)
        if problem:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(timeout=5)
            s.proc = None
            raise SshdStartError(f"sshd {s.config} {problem}:\n{_read_from(s.log, offset)}")


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")




def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


@pytest.fixture
def sshd_fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SshdFleet]:
    """A started SshdFleet of 3 hosts (or `request.param` hosts via indirect parametrize)."""
    require_sshd()
    count = int(getattr(request, "param", 3))
    fleet = SshdFleet(tmp_path / "sshd", count).start()
    try:
        yield fleet
    finally:
        fleet.stop()
