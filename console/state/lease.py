"""Plan leases: one runner per plan, across processes, hosts and operators.

Running, resuming and rolling back a plan all take its lease first (journal.acquire, in one
transaction with the check). A lease names its holder (user, host, pid) and is renewed while the
plan runs (Heartbeat); it is dead, and may be taken over, once its holder stops renewing it for
LEASE_TTL_S, or at once when the holder was a process on this host that no longer exists (its
pid is gone, or reused by another process: the start time recorded beside the pid differs), so
a plan whose console was killed can be resumed right away.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from console.state.identity import Actor

LEASE_TTL_S = 30.0
RENEW_EVERY_S = LEASE_TTL_S / 3


def _process_start(pid: int) -> str:
    """The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat, see
    proc(5)); '' where there is no /proc. With the pid it names one process, whatever reuses
    the number later."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else ""


@dataclass(frozen=True)
class Owner:
    """Who takes a lease: this process, with a token of its own for this run."""

    user: str
    host: str
    pid: int
    pid_start: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def of(cls, actor: Actor) -> Owner:
        return cls(actor.label, actor.host, os.getpid(), _process_start(os.getpid()))


@dataclass(frozen=True)
class Lease:
    plan_id: int
    token: str
    user: str
    host: str
    pid: int
    pid_start: str
    since: float
    renewed: float

    def alive(self, now: float, *, host: str | None = None) -> bool:
        if now - self.renewed > LEASE_TTL_S:
            return False
        if self.host == (host or socket.gethostname()):
            # A holder on this host is checked for real: a killed console frees its plan now.
            start = _process_start(self.pid)
            return bool(start) and (not self.pid_start or start == self.pid_start)
        return True

    def describe(self, now: float) -> str:
        ago = now - self.since
        when = time.strftime("%H:%M:%S", time.localtime(self.since))
        span = f"{ago:.0f}s" if ago < 120 else f"{ago / 60:.0f} min"
        return (f"plan {self.plan_id} is held by {self.user} on {self.host} (pid {self.pid}) "
                f"since {when} ({span} ago)")


class LeaseHeld(Exception):
    """Someone else runs this plan now; the message says who, where and since when."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        now = time.time()
        super().__init__(f"{lease.describe(now)}; wait for it to finish (its lease lapses "
                         f"{LEASE_TTL_S:.0f}s after its holder stops)")


class Heartbeat:
    """Renews a lease every RENEW_EVERY_S on a thread of its own while a plan runs (an engine
    call may block far longer than the lease lives). `lost` is set once the lease is no
    longer ours; the executor stops before its next step."""

    def __init__(self, renew: Callable[[], bool], every_s: float = RENEW_EVERY_S) -> None:
        self._renew = renew
        self._every = every_s
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleetops-lease", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if not self._renew():
                    self.lost.set()
                    return
            except Exception:  # the journal is unreachable: keep trying until the lease lapses
                continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join()
