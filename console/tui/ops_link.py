"""The one thread that talks to the operations engine, its journal and its audit log.

Engine, journal and audit are SQLite connections (or Slurm commands over SSH): they block,
and a connection belongs to the thread that opened it. So every call runs here, on one
dedicated thread that opens Ops itself on first use; the event loop only awaits the result.
One thread also means calls never overlap: a jobs refresh waits for the step in progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from textual.message import Message

if TYPE_CHECKING:
    from console.model.jobs import Job
    from console.ops.session import Ops

T = TypeVar("T")


class OpsLink:
    def __init__(self, factory: Callable[[], Ops]) -> None:
        self._factory = factory
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetops-ops")
        self._ops: Ops | None = None

    def _run(self, fn: Callable[[Ops], T]) -> T:
        if self._ops is None:
            self._ops = self._factory()  # a failure here is retried by the next call
        return fn(self._ops)

    async def call(self, fn: Callable[[Ops], T]) -> T:
        """`fn(ops)` on the ops thread; its exception is raised here."""
        return await asyncio.wrap_future(self._pool.submit(self._run, fn))

    def close(self) -> None:
        """Close Ops on its own thread once the work queued before has run; do not wait for
        it (a plan in progress finishes its step; the journal covers the rest)."""
        def close() -> None:
            if self._ops is not None:
                self._ops.close()
                self._ops = None

        self._pool.submit(close)
        self._pool.shutdown(wait=False)


@dataclass(frozen=True)
class JobsSnapshot:
    jobs: list[Job]
    admin: dict[str, str]


def read_jobs(ops: Ops) -> JobsSnapshot:
    """On the ops thread: what the jobs index and the admin states are refreshed from."""
    return JobsSnapshot(ops.engine.jobs(), dict(ops.engine.admin_states()))


class JobsLoaded(Message):
    """Posted to the app from the ops thread while a plan runs (the periodic refresh waits)."""

    def __init__(self, snapshot: JobsSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


def error_line(exc: BaseException) -> str:
    """One line for the operator: the message of errors meant for people, else the type too."""
    from console.engines.base import EngineError
    from console.state.audit import AuditError
    from console.state.journal import JournalError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, EngineError | AuditError | JournalError | ValueError | KeyError |
                  OSError) and text:
        return text.strip("'\"") if isinstance(exc, KeyError) else text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
