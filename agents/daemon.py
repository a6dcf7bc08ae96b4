"""`fleetops-agent daemon`: one sampler for every reader of this node.

It samples continuously, keeps the latest report and the last minutes of events, and serves:
- a Unix socket (agents/sockpath.py: where it lives, who may use it), at most `max_clients`
  at a time: each client gets a fresh `hello`, then the recent events, then the latest
  report, then live frames (with its own strictly increasing `seq`); `fleetops-agent stream`
  relays it, so ten consoles cost one sampler;
- optionally Prometheus metrics under dcgm-exporter's names (agents/metrics.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import deque

import msgspec

from agents import sockpath
from agents.sampler import Sampler
from agents.wire import Event, Frame, Report, encode_frame

log = logging.getLogger("fleetops.agent.daemon")

CLIENT_QUEUE = 256  # frames; a client this far behind is dropped, it can reconnect
MAX_CLIENTS = 32  # consoles per node; with CLIENT_QUEUE this bounds the daemon's memory


class History:
    """What the daemon serves a new client: the latest report, and the events of the last
    `keep_s` seconds (at most `max_events`). Older reports are never served, so not kept."""

    def __init__(self, keep_s: float, max_events: int = 1000) -> None:
        self.keep_s = keep_s
        self.latest: Report | None = None
        self.events: deque[Event] = deque(maxlen=max_events)

    def add(self, frame: Frame) -> None:
        if isinstance(frame, Report):
            self.latest = frame
        elif isinstance(frame, Event):
            self.events.append(frame)
        else:
            return
        # Pruned on every frame, so events age out even when no new one comes.
        while self.events and self.events[0].ts < frame.ts - self.keep_s:
            self.events.popleft()


class Daemon:
    def __init__(self, sampler: Sampler, socket_path: str, *, keep_s: float = 300,
                 max_clients: int = MAX_CLIENTS) -> None:
        self.sampler = sampler
        self.socket_path = socket_path
        self.max_clients = max_clients
        self.history = History(keep_s)
        self.hello = sampler.hello()
        self.listener: sockpath.Listener | None = None
        self._clients: set[asyncio.Queue[Frame | None]] = set()
        self._full_logged = False
        self._stop = asyncio.Event()

    def claim(self) -> None:
        """Bind the socket (sockpath.SocketError if it is not ours to take)."""
        if self.listener is None:
            self.listener = sockpath.claim(self.socket_path)

    async def run(self) -> None:
        self.claim()
        assert self.listener is not None
        # Our own bound socket, not path=: asyncio's create_unix_server removes whatever
        # socket already has the name, live or not.
        server = await asyncio.start_unix_server(self._serve, sock=self.listener.sock)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stop.set)
        log.info("sampling %d device(s) every %gs; serving %s", len(self.hello.devices),
                 self.sampler.interval_s, self.socket_path)
        sampler_task = asyncio.create_task(self._sample_forever())
        try:
            await self._stop.wait()
        finally:
            sampler_task.cancel()
            server.close()
            for q in list(self._clients):
                q.put_nowait(None)
            self.listener.close()
            self.sampler.collector.close()

    def stop(self) -> None:
        self._stop.set()

    async def _sample_forever(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            # SMI collectors run subprocesses: keep them off the loop.
            frames = await asyncio.to_thread(self.sampler.tick)
            self._publish(frames)
            deadline = max(deadline + self.sampler.interval_s, loop.time())
            while (remaining := deadline - loop.time()) > 0:
                await asyncio.sleep(min(remaining, 0.25))
                self._publish(self.sampler.drain_events())

    def _publish(self, frames: list[Frame]) -> None:
        for frame in frames:
            self.history.add(frame)
            for q in list(self._clients):
                try:
                    q.put_nowait(frame)
                except asyncio.QueueFull:
                    log.warning("dropping a client that fell %d frames behind", CLIENT_QUEUE)
                    self._clients.discard(q)
                    q.get_nowait()
                    q.put_nowait(None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= self.max_clients:
            if not self._full_logged:  # once while full, not once per refused connection
                log.warning("%d clients already: closing new connections at once until one "
                            "leaves (--max-clients)", self.max_clients)
                self._full_logged = True
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        self._full_logged = False
        queue: asyncio.Queue[Frame | None] = asyncio.Queue(CLIENT_QUEUE)
        backlog: list[Frame] = [self.hello, *self.history.events]
        if self.history.latest is not None:
            backlog.append(self.history.latest)
        self._clients.add(queue)
        seq = 0

        def stamp(frame: Frame) -> bytes:
            # Each client is its own stream: restamp seq so it is strictly increasing.
            nonlocal seq
            seq += 1
            return encode_frame(msgspec.structs.replace(frame, seq=seq))

        try:
            writer.write(b"".join(stamp(f) for f in backlog))
            await writer.drain()
            while (frame := await queue.get()) is not None:
                writer.write(stamp(frame))
                await writer.drain()
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            self._clients.discard(queue)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
