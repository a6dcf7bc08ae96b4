"""One SQLite database file as the operations layer uses it (engine, journal, audit).

A single connection shared by threads under a lock (the TUI calls from a worker thread),
autocommit with explicit `BEGIN IMMEDIATE` transactions (the write lock is taken up front: no
read-then-upgrade deadlock between two consoles, and busy_timeout covers the whole
transaction), WAL, and `synchronous=FULL` so a commit is on disk when it returns: the journal's
crash safety rests on that. sqlite3 errors become the caller's own one-line error type.

The files hold who did what and every unfinished plan, so:
- a new database and its directory are created private (0600, 0700); SQLite gives the -wal
  and -shm files the database file's mode;
- a database is created whole: the schema is written under a temporary name and linked into
  place, so a second process never sees a half-made file, and an existing zero-length file is
  an error naming it (a truncated database must not turn into a fresh, empty start);
- `readonly=True` (the read commands) writes nothing, so a database that is read-only to this
  user, or write-locked by a running plan, still answers.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote


class Store:
    def __init__(self, path: Path, error: type[Exception], label: str, schema: str, *,
                 timeout_s: float = 10.0, foreign_keys: bool = False,
                 readonly: bool = False) -> None:
        self.path = Path(path)
        self.error = error
        self.label = label  # "journal", "audit log", "embedded engine": starts error lines
        self.readonly = readonly
        self._lock = threading.RLock()
        db = None
        try:
            if readonly and not self.path.exists():
                # Nothing recorded yet: answer as an empty database would, creating nothing.
                self._check_not_empty()
                db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                db.executescript(schema)
            elif readonly:
                db = self._open_readonly(timeout_s)
            else:
                self._create(schema)
                db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None,
                                     check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            if foreign_keys:
                db.execute("PRAGMA foreign_keys=ON")
            if not readonly:
                db.executescript(schema)  # CREATE ... IF NOT EXISTS: what later versions add
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                db.close()  # e.g. "file is not a database": do not leak the handle
            raise error(f"{label}: cannot open {self.path}: {exc}") from None
        self.db = db

    # -- opening --------------------------------------------------------------------------

    def _check_not_empty(self) -> None:
        if self.path.exists() and self.path.stat().st_size == 0:
            raise self.error(
                f"{self.label}: {self.path} is empty (0 bytes) where a database is expected; "
                "it may have been truncated. Restore it from a backup, or remove it to start "
                "afresh (whatever it held is then gone)")

    def _create(self, schema: str) -> None:
        """Make the database if there is none: private, and whole before anyone can see it."""
        self._check_not_empty()
        if self.path.exists():
            return
        parent = self.path.parent
        if not parent.exists():
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                os.chmod(parent, 0o700)  # mkdir's mode is filtered by the umask
        tmp = parent / f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.new"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        try:
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                db.executescript(schema)
            finally:
                db.close()
            # Atomic, and never replaces someone else's file: if another process made it
            # first, use theirs.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _open_readonly(self, timeout_s: float) -> sqlite3.Connection:
        self._check_not_empty()
        uri = "file:" + quote(str(self.path.absolute()))
        db = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=timeout_s,
                             isolation_level=None, check_same_thread=False)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if "readonly" not in str(exc):
                raise
        # A WAL database whose -shm this user cannot create (a read-only directory). With no
        # writer there is no WAL content either (the last writer checkpoints and removes it),
        # so reading the main file as immutable sees every commit.
        return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, timeout=timeout_s,
                               isolation_level=None, check_same_thread=False)

    # -- using ----------------------------------------------------------------------------

    @contextmanager
    def tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction; `write=False` for reads, which then do not take the write lock (a
        running plan in another console does not block `plan list`, `audit` or the TUI)."""
        if write and self.readonly:
            raise self.error(f"{self.label} {self.path}: opened read-only")
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

    def close(self) -> None:
        with self._lock:
            self.db.close()
