"""One SQLite database file as the operations layer uses it (engine, journal, audit).

A single connection shared by threads under a lock (the TUI calls from a worker thread),
autocommit with explicit `BEGIN IMMEDIATE` transactions (the write lock is taken up front: no
read-then-upgrade deadlock between two consoles, and busy_timeout covers the whole
transaction), WAL, and `synchronous=FULL` so a commit is on disk when it returns: the journal's
crash safety rests on that. sqlite3 errors become the caller's own one-line error type.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Store:
    def __init__(self, path: Path, error: type[Exception], label: str, *,
                 timeout_s: float = 10.0, foreign_keys: bool = False) -> None:
        self.path = Path(path)
        self.error = error
        self.label = label  # "journal", "audit log", "embedded engine": starts error lines
        self._lock = threading.RLock()
        db = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            if foreign_keys:
                db.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                db.close()  # e.g. "file is not a database": do not leak the handle
            raise error(f"{label}: cannot open {self.path}: {exc}") from None
        self.db = db

    @contextmanager
    def tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction; `write=False` for reads, which then do not take the write lock (a
        running plan in another console does not block `plan list`, `audit` or the TUI)."""
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
                try:
                    yield self.db
                    self.db.execute("COMMIT")
                except BaseException:
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self.error(f"{self.label} {self.path}: {exc}") from None

    def create(self, schema: str) -> None:
        """Run a schema script (CREATE ... IF NOT EXISTS throughout, so racing is safe).

        executescript, not a split on ';': trigger bodies contain semicolons.
        """
        with self._lock:
            try:
                self.db.executescript(schema)
            except sqlite3.Error as exc:
                raise self.error(f"{self.label} {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self.db.close()
