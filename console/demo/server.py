"""The demo fleet: an SSH server on loopback whose sessions are simulated node agents.

`fleetops demo` runs the console against it over real SSH (keys, known_hosts, exec'd
`fleetops-agent stream`), so the demo exercises the same code paths as a real fleet. Each SSH
user name is one node; its sessions are served in-process by one `Sampler(SimCollector)` per
node, shared by every session of that node the way agents/daemon.py shares one sampler among
its readers. No process per session: one server carries a thousand console sessions.

The runtime of a node outlives its sessions so scheduled faults keep their timeline across
reconnects; it only ticks while a session is attached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import asyncssh
import msgspec

from agents.collectors.base import CollectorOptions
from agents.collectors.sim import SimCollector, SimProcess
from agents.sampler import Sampler
from agents.wire import Event, Frame, Hello, Report, encode_frame
from console.demo.fleet import DemoNode, DemoSpec, fleet_dcs, plan_fleet
from console.engines.base import EngineError
from console.engines.embedded import EmbeddedEngine, seed_demo, workload_for

__all__ = ["DemoNode", "DemoServer", "DemoSpec", "plan_fleet", "serve_forever"]

log = logging.getLogger("fleetops.demo")

AGENT = "fleetops-agent"
SESSION_QUEUE = 64  # frames past asyncssh's write buffer; a reader further behind is dropped
LISTEN_BACKLOG = 4096
JOBS_REFRESH_S = 2.0
RECENT_EVENTS = 50  # how soon a drained or moved job shows on the simulated devices
NOT_FOUND = 127  # a shell's "command not found"
USAGE = 2  # argparse's exit status for a bad option, as the real agent would return


class CommandError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_command(command: str | None, default_interval_s: float) -> tuple[float, int | None]:
    """(interval_s, count) of `fleetops-agent stream [--interval S] [--count N]`."""
    try:
        argv = shlex.split(command or "")
    except ValueError:
        argv = []
    prog = argv[0] if argv else ""
    is_agent = prog == AGENT or (prog.startswith("/") and prog.rsplit("/", 1)[1] == AGENT)
    if not is_agent or argv[1:2] != ["stream"]:
        raise CommandError(NOT_FOUND, f"demo: command not found: {command or '(shell)'}")
    interval, count = default_interval_s, None
    args = iter(argv[2:])
    for arg in args:
        name, eq, value = arg.partition("=")
        if name == "--local":  # the real agent's "don't relay a daemon": nothing to do here
            continue
        if name not in ("--interval", "--count"):
            raise CommandError(USAGE, f"demo: {AGENT} stream: unsupported option {arg}")
        if not eq:
            value = next(args, "")
        try:
            if name == "--interval":
                interval = float(value)
                ok = 0 < interval <= 3600
            else:
                count = int(value)
                ok = count >= 1
        except ValueError:
            ok = False
        if not ok:
            raise CommandError(USAGE, f"demo: {AGENT} stream: bad value for {name}: {value!r}")
    return interval, count


class _Session(asyncssh.SSHServerSession):
    """One exec'd `fleetops-agent stream`: what an agent process is to a real sshd."""

    def __init__(self, server: DemoServer, node: str) -> None:
        self._server = server
        self.node = node
        self._chan: asyncssh.SSHServerChannel | None = None
        self._command: str | None = None
        self._runtime: _NodeRuntime | None = None
        self.interval_s = server.spec.interval_s
        self._count: int | None = None
        self.started = False  # hello sent
        self._seq = 0
        self._reports = 0
        self._due = 0.0  # earliest report ts this session wants next
        self._paused_writes: int | None = None  # frames written since pause_writing()

    # -- asyncssh callbacks -------------------------------------------------------------

    def connection_made(self, chan: asyncssh.SSHServerChannel) -> None:
        self._chan = chan

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def shell_requested(self) -> bool:
        return True  # refused in session_started, with the same message a shell would give

    def eof_received(self) -> bool:
        return True  # the agent never reads stdin: `ssh node cmd </dev/null` keeps streaming

    def session_started(self) -> None:
        assert self._chan is not None
        try:
            self.interval_s, self._count = parse_command(self._command, self.interval_s)
        except CommandError as exc:
            self._chan.write_stderr(f"{exc}\n".encode())
            self._chan.exit(exc.status)
            return
        self._runtime = self._server._runtime(self.node)
        self._runtime.attach(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._runtime is not None:
            self._runtime.detach(self)

    def pause_writing(self) -> None:
        self._paused_writes = 0

    def resume_writing(self) -> None:
        self._paused_writes = None

    # -- driven by the node runtime ---------------------------------------------------

    def start(self, hello: Hello, recent: Iterable[Event] = ()) -> None:
        """hello, then the node's recent events, like a daemon serves a late reader."""
        self.started = True
        self._send(msgspec.structs.replace(hello, ts=time.time(), interval_s=self.interval_s))
        for event in recent:
            if self._runtime is None:
                return
            self._send(event)

    def deliver(self, frame: Frame, slack_s: float) -> None:
        if self._runtime is None:  # ended earlier in this tick (--count, dropped)
            return
        if isinstance(frame, Report):
            # The runtime ticks at its fastest session's interval; slower sessions skip
            # reports until theirs is due (events always go through).
            if frame.ts + slack_s < self._due:
                return
            self._due = frame.ts + self.interval_s
        self._send(frame)
        if isinstance(frame, Report):
            self._reports += 1
            if self._count is not None and self._reports >= self._count:
                self.end(0)

    def end(self, status: int | None = None, *, signal_name: str | None = None) -> None:
        """Detach and close: exit `status`, killed by `signal_name`, or aborted (neither)."""
        if self._runtime is not None:
            self._runtime.detach(self)
            self._runtime = None
        chan = self._chan
        if chan is None or chan.is_closing():
            return
        if signal_name is not None:
            chan.exit_with_signal(signal_name)
        elif status is not None:
            chan.exit(status)
        else:
            chan.abort()

    def _send(self, frame: Frame) -> None:
        assert self._chan is not None
        self._seq += 1  # each session is its own stream: seq strictly increasing within it
        try:
            self._chan.write(encode_frame(msgspec.structs.replace(frame, seq=self._seq)))
        except OSError:  # closing under us; connection_lost will follow
            self.end()
            return
        if self._paused_writes is not None:
            self._paused_writes += 1
            if self._paused_writes > SESSION_QUEUE:
                log.warning("%s: dropping a session %d frames behind", self.node, SESSION_QUEUE)
                self.end()


class _NodeRuntime:
    """One simulated node: its sampler and the sessions reading it."""

    def __init__(self, node: DemoNode, interval_s: float) -> None:
        self.node = node
        self.collector = SimCollector(CollectorOptions(
            sim_devices=node.devices, sim_model=node.model, sim_seed=node.seed,
            sim_faults=list(node.faults)))
        self.sampler = Sampler(self.collector, node=node.name, interval_s=interval_s)
        # The frames say the node's name, not the demo host's.
        self.hello = msgspec.structs.replace(self.sampler.hello(), hostname=node.name)
        self.sessions: dict[_Session, None] = {}  # insertion-ordered set
        self.recent: deque[Event] = deque(maxlen=RECENT_EVENTS)  # replayed to new sessions
        self.paused = False
        self.tick_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def attach(self, session: _Session) -> None:
        self.sessions[session] = None
        if not self.paused:
            session.start(self.hello, self.recent)
            if session not in self.sessions:  # its channel closed under the hello
                return
        if self._task is None or session.interval_s < self.tick_s:
            # Restart rather than wait out the current (slower) sleep: the new reader gets
            # its first report now, and the others skip it until theirs is due.
            self.stop()
            self.tick_s = min(s.interval_s for s in self.sessions)
            self._task = asyncio.get_running_loop().create_task(
                self._tick_forever(), name=f"demo-{self.node.name}")

    def detach(self, session: _Session) -> None:
        if session not in self.sessions:
            return
        del self.sessions[session]
        if not self.sessions:
            self.stop()  # nobody reads: stop sampling, keep the state (and fault timeline)
        else:
            self.tick_s = min(s.interval_s for s in self.sessions)  # read by the next sleep

    def stop(self) -> asyncio.Task[None] | None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        for s in list(self.sessions):
            if not s.started:
                s.start(self.hello, self.recent)

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            # The sampler keeps ticking while paused so the node's timeline (and its
            # faults) go on; a hung agent's frames are simply never seen.
            frames = self.sampler.tick()
            if not self.paused:
                slack = self.tick_s / 4  # tolerates loop jitter in the per-session schedule
                self.recent.extend(f for f in frames if isinstance(f, Event))
                for frame in frames:
                    for s in list(self.sessions):
                        if not s.started:
                            continue
                        try:
                            s.deliver(frame, slack)
                        except Exception:  # one broken session must not starve the others
                            log.exception("%s: session failed", self.node.name)
                            s.end()
            deadline = max(deadline + self.tick_s, loop.time())
            await asyncio.sleep(deadline - loop.time())


class _SshServer(asyncssh.SSHServer):
    """Per connection: public-key auth as a node name with the demo's client key."""

    def __init__(self, demo: DemoServer) -> None:
        self._demo = demo
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._demo._conns.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self._demo._conns.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate; unknown users fail below like a wrong key

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        demo = self._demo
        return username in demo._by_name and key.public_data == demo._client_public

    def session_requested(self) -> _Session:
        assert self._conn is not None
        return _Session(self._demo, self._conn.get_extra_info("username"))


class DemoServer:
    """The demo fleet's SSH server. `async with DemoServer(spec) as demo: ...`"""

    def __init__(self, spec: DemoSpec, workdir: Path | None = None) -> None:
        self.spec = spec
        self._nodes = plan_fleet(spec)
        self._by_name = {n.name: n for n in self._nodes}
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else None
        self._runtimes: dict[str, _NodeRuntime] = {}
        self._conns: set[asyncssh.SSHServerConnection] = set()
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._client_public = b""
        self._port = 0
        self._engine: EmbeddedEngine | None = None
        self._workload_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DemoServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- properties ---------------------------------------------------------------------

    @property
    def nodes(self) -> list[DemoNode]:
        return list(self._nodes)

    @property
    def port(self) -> int:
        return self._port

    @property
    def inventory_path(self) -> Path:
        return self._dir / "inventory.toml"

    @property
    def known_hosts_path(self) -> Path:
        return self._dir / "known_hosts"

    @property
    def client_key_path(self) -> Path:
        return self._dir / "id_ed25519"

    @property
    def _dir(self) -> Path:
        if self.workdir is None:
            raise RuntimeError("demo server not started")
        return self.workdir

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="fleetops-demo-"))  # mode 0700
        self.workdir.mkdir(parents=True, exist_ok=True)
        host_key = asyncssh.generate_private_key("ssh-ed25519", comment="fleetops-demo-host")
        client_key = asyncssh.generate_private_key("ssh-ed25519", comment="fleetops-demo")
        self._client_public = client_key.public_data
        _write_private(self.client_key_path, client_key.export_private_key())
        self.client_key_path.with_suffix(".pub").write_bytes(client_key.export_public_key())
        self._acceptor = await asyncssh.create_server(
            lambda: _SshServer(self), self.spec.host, self.spec.port,
            # A console connects to every node at once; asyncssh's default backlog of 100
            # drops SYNs from a 1,000-node burst into seconds of TCP retransmit backoff.
            backlog=LISTEN_BACKLOG,
            server_host_keys=[host_key], encoding=None, gss_host=None,
            agent_forwarding=False, x11_forwarding=False, rdns_lookup=False,
        )
        self._port = self._acceptor.get_port()
        # Only now is the port known, and known_hosts names it: [host]:port key.
        public = host_key.export_public_key().decode().split()[:2]
        self.known_hosts_path.write_text(f"[{self.spec.host}]:{self._port} {' '.join(public)}\n")
        self.inventory_path.write_text(self.inventory_toml())
        # The demo's scheduler: a seeded job mix in the embedded engine, which the simulated
        # agents show as load and processes (and which drains and moves then change).
        self._engine = EmbeddedEngine(self._dir / "jobs.db", user="demo")
        seed_demo(self._engine, [(n.name, n.dc, n.pool, n.model, n.devices) for n in self._nodes],
                  self.spec.seed)
        self._workload_task = asyncio.get_running_loop().create_task(self._follow_jobs())
        log.info("demo fleet of %d nodes on %s:%d", len(self._nodes), self.spec.host, self._port)

    async def stop(self) -> None:
        tasks = [t for r in self._runtimes.values() if (t := r.stop()) is not None]
        if self._workload_task is not None:
            self._workload_task.cancel()
            tasks.append(self._workload_task)
            self._workload_task = None
        if self._acceptor is not None:
            self._acceptor.close()
        conns = list(self._conns)
        for conn in conns:
            conn.close()
        if conns:
            await asyncio.wait([asyncio.ensure_future(c.wait_closed()) for c in conns],
                               timeout=5)
        if self._acceptor is not None:
            await self._acceptor.wait_closed()
            self._acceptor = None
        await asyncio.gather(*tasks, return_exceptions=True)
        for runtime in self._runtimes.values():
            runtime.collector.close()
        self._runtimes.clear()
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- test hooks ---------------------------------------------------------------------

    async def kill_sessions(self, node: str) -> int:
        """Close every session of `node` as if its agent were SIGKILLed; how many there were."""
        runtime = self._runtime(node)
        sessions = list(runtime.sessions)
        for s in sessions:
            s.end(signal_name="KILL")
        await asyncio.sleep(0)  # let the close packets go out
        return len(sessions)

    def pause(self, node: str) -> None:
        """Hang `node`'s agent: sessions stay open but get no frames until resume()."""
        self._runtime(node).pause()

    def resume(self, node: str) -> None:
        self._runtime(node).resume()

    def set_workload(self, node: str, index: int, processes: list[SimProcess]) -> None:
        """What runs on device `index` of `node` from its next sample on."""
        self._runtime(node).collector.set_workload(index, processes)

    def _runtime(self, node: str) -> _NodeRuntime:
        runtime = self._runtimes.get(node)
        if runtime is None:
            runtime = self._runtimes[node] = _NodeRuntime(self._by_name[node],
                                                          self.spec.interval_s)
            self._apply_jobs(node, runtime)
        return runtime

    def _apply_jobs(self, node: str, runtime: _NodeRuntime) -> None:
        """Make the node's simulated devices run what the engine placed there."""
        if self._engine is None:
            return
        try:
            work = workload_for(self._engine, node)
        except EngineError as exc:  # a locked database for a moment: try again next round
            log.debug("demo: jobs of %s not read: %s", node, exc)
            return
        for index in range(runtime.node.devices):
            runtime.collector.set_workload(index, [
                SimProcess(pid, name, mem, util) for pid, name, mem, util in work.get(index, ())])

    async def _follow_jobs(self) -> None:
        """Every few seconds, follow placements changed by drains and moves."""
        while True:
            await asyncio.sleep(JOBS_REFRESH_S)
            for node, runtime in list(self._runtimes.items()):
                if runtime.sessions:
                    self._apply_jobs(node, runtime)

    # -- inventory ----------------------------------------------------------------------

    def inventory_toml(self) -> str:
        spec, q = self.spec, json.dumps  # a JSON string is a valid TOML basic string
        lines = [
            "# fleetops demo fleet: generated by `fleetops demo`, valid while it runs.",
            "[defaults]",
            f"identity_file = {q(str(self.client_key_path))}",
            f"known_hosts = {q(str(self.known_hosts_path))}",
            f"port = {self._port}",
            f"command = {q(f'{AGENT} stream --interval {spec.interval_s:g}')}",
            f"interval_s = {spec.interval_s!r}",
        ]
        for dc in fleet_dcs(spec):
            lines += ["", "[[dc]]", f"name = {q(dc.name)}", f"region = {q(dc.region)}",
                      f"country = {q(dc.country)}"]
            if dc.domestic_target is not None:
                lines.append(f"domestic_target = {dc.domestic_target!r}")
            for n in (n for n in self._nodes if n.dc == dc.name):
                lines += ["", "[[dc.node]]", f"name = {q(n.name)}", f"host = {q(spec.host)}",
                          f"pool = {q(n.pool)}", f"user = {q(n.name)}",
                          f'labels = {{ model = {q(n.model)}, demo = "true" }}']
        lines += ["", "[engine]", 'kind = "embedded"',
                  f"db_path = {q(str(self._dir / 'jobs.db'))}",
                  "", "[console]",
                  f"journal_path = {q(str(self._dir / 'journal.db'))}",
                  f"audit_path = {q(str(self._dir / 'audit.db'))}", ""]
        return "\n".join(lines)


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 rather than chmod-ed after: the key is never readable by others.
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


async def serve_forever(spec: DemoSpec, out: TextIO = sys.stdout, *,
                        workdir: Path | None = None) -> None:
    """`fleetops demo --serve`: inventory path on `out`'s first line, then run until
    cancelled, SIGINT or SIGTERM; the workdir is removed afterwards unless one was given."""
    server = DemoServer(spec, workdir)
    await server.start()
    try:
        print(server.inventory_path, file=out, flush=True)
        faults = [f"{n.name} {f}" for n in server.nodes for f in n.faults]
        if len(faults) > 8:
            faults[8:] = [f"and {len(faults) - 8} more"]
        print(f"demo: {len(server.nodes)} nodes x {spec.devices} devices in "
              f"{len(fleet_dcs(spec))} data centers, SSH on {spec.host}:{server.port}\n"
              f"demo: scheduled faults: {', '.join(faults) or 'none'}\n"
              f"demo: fleetops --inventory {server.inventory_path}; Ctrl-C stops",
              file=sys.stderr, flush=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stopped.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass
        try:
            await stopped.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
    finally:
        await server.stop()
