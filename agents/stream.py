"""`fleetops-agent stream`: frames on stdout, one per line, flushed per line.

Two ways to produce them: sample locally (a Sampler on this process's collector), or relay
a running daemon's socket (once agents/sockpath.py has checked who serves it), so that many
consoles cost one sampler. Either way stdout carries frames only; logs go to stderr. A reader
that goes away (SSH closed) ends the stream quietly.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import BinaryIO

from agents.sampler import Sampler
from agents.sockpath import SocketError
from agents.wire import Frame, encode_frame

# How often to look for events between reports: bounds the latency of an Xid reaching the
# console without waking the agent more than a few times a second.
EVENT_POLL_S = 0.25


class ReaderGone(Exception):
    """The process reading our stdout went away."""


def _write(out: BinaryIO, frames: list[Frame]) -> None:
    if not frames:
        return
    try:
        out.write(b"".join(encode_frame(f) for f in frames))
        out.flush()
    except (BrokenPipeError, ConnectionResetError, ValueError) as exc:
        raise ReaderGone from exc


def run_local(sampler: Sampler, out: BinaryIO, *, count: int | None = None,
              monotonic=time.monotonic, sleep=time.sleep) -> int:
    """hello, then a report every interval (events as they come) until `count` reports."""
    try:
        _write(out, [sampler.hello()])
        sent = 0
        deadline = monotonic()
        while True:
            _write(out, sampler.tick())
            sent += 1
            if count is not None and sent >= count:
                return 0
            deadline += sampler.interval_s
            now = monotonic()
            if deadline < now:  # fell behind (a slow SMI tool): don't burst to catch up
                deadline = now
            while (remaining := deadline - monotonic()) > 0:
                sleep(min(remaining, EVENT_POLL_S))
                _write(out, sampler.drain_events())
    except ReaderGone:
        _silence_stdout()
        return 0


def relay(sock: socket.socket, out: BinaryIO, *, count: int | None = None) -> int:
    """Copy a daemon's frames to `out` until the daemon or the reader goes away.

    `sock` comes from sockpath.connect(), which has checked who is on the other end.
    """
    reader = sock.makefile("rb")
    sent = 0
    received = False
    try:
        for line in reader:
            received = True
            out.write(line)
            out.flush()
            # msgspec writes the tag first, so a report line starts with this prefix.
            if count is not None and line.startswith(b'{"kind":"report"'):
                sent += 1
                if sent >= count:
                    return 0
    except (BrokenPipeError, ConnectionResetError):
        _silence_stdout()
        return 0
    if not received:
        # A daemon with --max-clients clients already closes new connections at once.
        raise SocketError("the daemon closed the connection before sending anything "
                          "(it may be serving its --max-clients)")
    return 0


def _silence_stdout() -> None:
    # Python flushes stdout at exit; with the reader gone that flush would raise and print a
    # traceback. Point fd 1 at /dev/null so the exit is quiet.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
