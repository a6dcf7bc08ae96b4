"""SSH fan-in: one asyncssh connection per node, running its agent's stream command.

Each node gets a task that connects (bounded concurrent handshakes), runs the node's
`command`, feeds what arrives to its Intake, and on any failure records why (auth-failed,
host-key-mismatch, agent-missing, down...) and reconnects with exponential backoff and jitter.
One host's failure never touches another's. Keys and known_hosts files are read once per
path, not per connection (asyncssh would re-read them on every connect).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from console.model.fleet import FleetState
from console.model.inventory import Node
from console.model.text import clean
from console.telemetry.intake import Intake

log = logging.getLogger("fleetops.ssh")

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 60.0
# A node stale this many intervals is reconnected: its session may hang without closing.
RECONNECT_AFTER_STALE_INTERVALS = 10
STDERR_KEEP = 2048


@dataclass
class FanInOptions:
    max_handshakes: int = 64
    accept_new_hosts: bool = False  # never the default: an unknown key is refused
    reconnect: bool = True


class _Session(asyncssh.SSHClientSession):
    """Raw bytes in; lines are split by the Intake (bounded), stderr kept for the error."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.stderr = bytearray()

    def data_received(self, data, datatype) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            if len(self.stderr) < STDERR_KEEP:
                self.stderr += data[: STDERR_KEEP - len(self.stderr)]
        else:
            self.intake.feed(data)


class _Credentials:
    """known_hosts and client keys, loaded once per path and shared by every node."""

    def __init__(self) -> None:
        self._known: dict[Path, asyncssh.SSHKnownHosts] = {}
        self._keys: dict[Path, list] = {}

    def known_hosts(self, path: Path | None):
        if path is None:
            return ()  # asyncssh's default: ~/.ssh/known_hosts (an empty one refuses all)
        if path not in self._known:
            self._known[path] = asyncssh.read_known_hosts(str(path)) if path.exists() \
                else asyncssh.import_known_hosts("")
        return self._known[path]

    def forget_known_hosts(self, path: Path | None) -> None:
        if path is not None:
            self._known.pop(path, None)

    def client_keys(self, path: Path | None):
        if path is None:
            return ()  # asyncssh's default keys (~/.ssh/id_*) and agent
        if path not in self._keys:
            self._keys[path] = [asyncssh.read_private_key(str(path))]
        return self._keys[path]


class FanIn:
    def __init__(self, fleet: FleetState, nodes: list[Node], options: FanInOptions | None = None,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.fleet = fleet
        self.nodes = {n.name: n for n in nodes}
        self.options = options or FanInOptions()
        self.clock = clock
        self._handshakes = asyncio.Semaphore(self.options.max_handshakes)
        self._creds = _Credentials()
        self._tasks: dict[str, asyncio.Task] = {}
        self._channels: dict[str, asyncssh.SSHClientChannel] = {}
        self._dropped: dict[str, str] = {}  # node -> why the console dropped its session
        self._watchdog: asyncio.Task | None = None

    async def start(self) -> None:
        for name in self.nodes:
            self._tasks[name] = asyncio.create_task(self._run(name), name=f"ssh:{name}")
        self._watchdog = asyncio.create_task(self._watch(), name="ssh:watchdog")

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *([self._watchdog] if self._watchdog else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def __aenter__(self) -> FanIn:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -- per node -----------------------------------------------------------------------

    async def _run(self, name: str) -> None:
        node = self.nodes[name]
        backoff = BACKOFF_START_S
        while True:
            started = self.clock()
            try:
                await self._session(node)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is a state, never the end of the fan-in
                link, message = classify(exc, node)
                self.fleet.set_link(name, link, message)
            if not self.options.reconnect:
                return
            if self.clock() - started > 30:
                backoff = BACKOFF_START_S  # it was up a while: retry quickly
            delay = backoff * random.uniform(0.5, 1.0)  # jitter: no thundering herd
            backoff = min(backoff * 2, BACKOFF_MAX_S)
            await asyncio.sleep(delay)

    async def _session(self, node: Node) -> None:
        ssh = node.ssh
        if self.fleet.nodes[node.name].link not in ("connecting",):
            self.fleet.set_link(node.name, "connecting")
        async with self._handshakes:
            conn = await asyncio.wait_for(self._connect(node), ssh.connect_timeout_s)
        async with conn:
            intake = Intake(self.fleet, node.name, interval_s=node.interval_s, clock=self.clock)
            chan, session = await conn.create_session(
                lambda: _Session(intake), ssh.command, encoding=None)
            self._channels[node.name] = chan
            try:
                await chan.wait_closed()
            finally:
                self._channels.pop(node.name, None)
            dropped = self._dropped.pop(node.name, None)
            if dropped is not None:
                self.fleet.set_link(node.name, "down", dropped)
                return
            status = chan.get_exit_status()
            stderr = clean(bytes(session.stderr).decode("utf-8", "replace").strip(), 300)
            if status in (126, 127):
                self.fleet.set_link(node.name, "agent-missing",
                                    f"agent command not found on {node.host}: "
                                    f"{stderr or ssh.command}")
            else:
                detail = stderr or f"agent exited with status {status}"
                self.fleet.set_link(node.name, "down", f"stream ended: {detail}")

    async def _connect(self, node: Node) -> asyncssh.SSHClientConnection:
        ssh = node.ssh
        kwargs = dict(
            port=ssh.port or (), username=ssh.user or (),
            client_keys=self._creds.client_keys(ssh.identity_file),
            known_hosts=self._creds.known_hosts(ssh.known_hosts),
            tunnel=ssh.proxy_jump or (),
            keepalive_interval=ssh.keepalive_s or None, keepalive_count_max=3,
            connect_timeout=ssh.connect_timeout_s,
        )
        try:
            return await asyncssh.connect(node.host, **kwargs)
        except asyncssh.HostKeyNotVerifiable:
            if not self.options.accept_new_hosts or ssh.known_hosts is None:
                raise
            if _has_entry(self._creds.known_hosts(ssh.known_hosts), node.host, ssh.port):
                raise  # a changed key is never accepted, whatever the option says
            await _learn_host_key(node, kwargs)
            self._creds.forget_known_hosts(ssh.known_hosts)
            kwargs["known_hosts"] = self._creds.known_hosts(ssh.known_hosts)
            return await asyncssh.connect(node.host, **kwargs)

    async def _watch(self) -> None:
        """Mark silent nodes stale; reconnect those that stay silent (hung sessions).

        Ticks at half the shortest interval (between 0.1 and 1 s), so "stale after 3 silent
        intervals" holds to within half an interval.
        """
        shortest = min((n.interval_s for n in self.nodes.values()), default=1.0)
        period = min(1.0, max(0.1, shortest / 2))
        while True:
            await asyncio.sleep(period)
            now = self.clock()
            self.fleet.mark_stale(now)
            for name in list(self._channels):
                node = self.fleet.nodes[name]
                if (node.link == "stale" and node.last_seen is not None and
                        now - node.last_seen > RECONNECT_AFTER_STALE_INTERVALS * node.interval_s):
                    silent = now - node.last_seen
                    log.info("%s: silent for %.0fs, reconnecting", name, silent)
                    self.kick(name, f"no frame for {silent:.0f}s: session dropped, reconnecting")

    def kick(self, name: str, why: str = "session dropped by the console") -> None:
        """Drop a node's session now (it reconnects through the usual backoff).

        The whole connection is aborted: aborting only the channel leaves OpenSSH holding it
        open until the remote command writes or exits, which a hung agent never does.
        """
        chan = self._channels.get(name)
        if chan is not None:
            self._dropped[name] = why
            conn = chan.get_extra_info("connection")
            (conn or chan).abort()


def _has_entry(known, host: str, port: int | None) -> bool:
    """Whether known_hosts says anything about this host (then a new key is a *change*)."""
    try:
        return any(known.match(host, "", port)[:3])
    except (AttributeError, ValueError):
        return False


async def _learn_host_key(node: Node, kwargs: dict) -> None:
    """--accept-new-hosts: record an unknown host's key in its known_hosts, then trust it."""
    probe = dict(kwargs, known_hosts=None)
    async with await asyncssh.connect(node.host, **probe) as conn:
        key = conn.get_server_host_key()
    if key is None:
        raise asyncssh.HostKeyNotVerifiable("server sent no host key")
    port = node.ssh.port
    pattern = f"[{node.host}]:{port}" if port and port != 22 else node.host
    path = node.ssh.known_hosts
    assert path is not None
    with path.open("ab") as f:
        f.write(pattern.encode() + b" " + key.export_public_key("openssh").strip() + b"\n")
    log.warning("%s: accepted new host key for %s", node.name, pattern)


def classify(exc: BaseException, node: Node) -> tuple[str, str]:
    """An exception from connecting or streaming -> (link state, one-line reason)."""
    where = node.host if not node.ssh.port else f"{node.host}:{node.ssh.port}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return "host-key-mismatch", (
            f"host key of {where} not trusted ({clean(exc.reason, 120)}); check known_hosts "
            f"({node.ssh.known_hosts or '~/.ssh/known_hosts'})")
    if isinstance(exc, asyncssh.PermissionDenied):
        return "auth-failed", f"permission denied (publickey) as {node.ssh.user or 'default user'}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "down", f"connect to {where} timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "down", f"connection refused by {where}"
    if isinstance(exc, asyncssh.Error):
        return "down", f"ssh: {clean(exc.reason, 200)}"
    if isinstance(exc, OSError):
        return "down", f"{where}: {clean(exc.strerror or exc, 200)}"
    return "down", f"{type(exc).__name__}: {clean(exc, 200)}"
