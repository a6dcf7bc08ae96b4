"""Bytes from a node's channel -> frames into the fleet state.

Everything a node sends is untrusted. `Intake` splits the byte stream into lines itself (so a
line without an end cannot grow without bound), drops lines beyond a rate budget (a node
flooding us costs a counter, not a core), decodes the rest with the wire protocol and counts
each rejected line by reason on the node. Nothing here raises on bad input.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agents.wire import MAX_LINE_BYTES, FrameError, decode_frame
from console.model.fleet import FleetState
from console.model.text import clean

# A node sends one report per interval plus the odd event; allow generous bursts.
MIN_LINES_PER_S = 50.0
BURST_S = 4.0
# This many bad lines in a row, with no good one between, and the node is in protocol error.
PROTOCOL_ERROR_AFTER = 5


class Intake:
    __slots__ = ("_bad_run", "_buf", "_discarding", "_last", "_tokens", "clock", "fleet",
                 "name", "rate")

    def __init__(self, fleet: FleetState, name: str, *, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.fleet = fleet
        self.name = name
        self.clock = clock
        self.rate = max(MIN_LINES_PER_S, 20.0 / interval_s)
        self._tokens = self.rate * BURST_S
        self._last = clock()
        self._buf = bytearray()
        self._discarding = False
        self._bad_run = 0

    def feed(self, data: bytes) -> None:
        """A chunk of the node's stdout, as it came off the channel."""
        # Lines are handed to the decoder as views into the chunk: no copy of each line.
        view = memoryview(data)
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            if self._discarding:
                self._discarding = False
            elif self._buf:
                self._buf += view[start:nl]
                line = bytes(self._buf)
                self._buf.clear()
                self._line(line)
            else:
                self._line(view[start:nl])
            start = nl + 1
        if start < len(data) and not self._discarding:
            self._buf += data[start:]
            if len(self._buf) >= MAX_LINE_BYTES:  # no room left for its newline
                # Drop the partial line now and everything up to its end: memory stays bounded
                # whatever the node sends.
                self._buf.clear()
                self._discarding = True
                self._bad("too-long", f"line over {MAX_LINE_BYTES} bytes")

    def _line(self, line: bytes | memoryview) -> None:
        if not line or (bytes(line[:1]).isspace() and not bytes(line).strip()):
            return  # blank lines are not frames (the cheap first-byte test avoids a copy)
        now = self.clock()
        self._tokens = min(self.rate * BURST_S, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            self.fleet.reject(self.name, "flood")
            return
        self._tokens -= 1.0
        try:
            frame = decode_frame(line)
        except FrameError as exc:
            self._bad(exc.reason, exc.detail)
            return
        self._bad_run = 0
        self.fleet.apply(self.name, frame, now)

    def _bad(self, reason: str, detail: str) -> None:
        self.fleet.reject(self.name, reason)
        self._bad_run += 1
        if reason == "version" or self._bad_run >= PROTOCOL_ERROR_AFTER:
            self.fleet.set_link(self.name, "protocol-error", clean(f"{reason}: {detail}", 200))
