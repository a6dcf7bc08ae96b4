"""The audit log: who did what, when, why, with which plan and outcome. Append-only, in SQLite,
and tamper-evident.

- Triggers make UPDATE and DELETE abort, so no code path of the console rewrites history.
- Each entry carries the SHA-256 of its own content and of the entry before it (a hash chain,
  as in Certificate Transparency or git), and a one-row `head` table keeps the newest id and
  hash in the same transaction. Someone with the file and the sqlite3 shell can still change
  it, but not without `verify()` naming the first entry that no longer matches: an edited
  entry breaks its hash, a deleted one breaks the chain (and leaves a gap in the ids), a
  truncated or emptied log no longer reaches the head.
- Entries name the OS account of the process (identity.py), never what $USER claims.
- Free text goes through secrets.redact() first: no password or token lands here.
Export is JSON lines, one entry a line, oldest first, with the hashes, so a copy can be checked
elsewhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from console.model.secrets import redact, redact_all
from console.state.identity import Actor, current
from console.state.store import Store

GENESIS = "0" * 64
_COLUMNS = ("id", "ts", "user", "invoked_by", "uid", "host", "action", "targets", "reason",
            "plan", "outcome", "prev_hash", "hash")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    user TEXT NOT NULL,
    invoked_by TEXT,
    uid INTEGER,
    host TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    targets TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    plan TEXT,
    outcome TEXT NOT NULL DEFAULT '',
    prev_hash TEXT NOT NULL DEFAULT '',
    hash TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    last_id INTEGER NOT NULL,
    last_hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS head_no_delete BEFORE DELETE ON head
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS head_forward BEFORE UPDATE ON head WHEN NEW.last_id <= OLD.last_id
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""


def default_path() -> Path:
    """Where the audit log lives unless [console] says otherwise: beside the embedded jobs.db
    ($XDG_STATE_HOME/fleetops/audit.db)."""
    from console.model.inventory import default_db_path

    return default_db_path().with_name("audit.db")


class AuditError(Exception):
    """The audit log cannot be read or written; one line."""


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the entry's content and its predecessor's hash (canonical JSON)."""
    body = [entry[c] for c in _COLUMNS if c != "hash"]
    data = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """What verify() found: ok, or the first entry (id) that breaks, and why."""

    entries: int
    problem: str | None = None
    first_bad: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _row(row: tuple) -> dict[str, Any]:
    return dict(zip(_COLUMNS, row, strict=True))


def _public(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "targets": json.loads(raw["targets"]),
            "plan": None if raw["plan"] is None else json.loads(raw["plan"])}


class Audit:
    """Thread-safe: one connection, a lock (the TUI records from a worker thread)."""

    def __init__(self, path: Path, timeout_s: float = 10.0, *, readonly: bool = False,
                 actor: Actor | None = None):
        self.path = Path(path)
        self.actor = actor or current()
        self._store = Store(self.path, AuditError, "audit log", _SCHEMA, timeout_s=timeout_s,
                            readonly=readonly)
        self._tx = self._store.tx
        if not readonly:
            self._adopt_unchained()

    def close(self) -> None:
        self._store.close()

    def _adopt_unchained(self) -> None:
        """A log written before entries were chained: add the columns and chain what is there
        (once, in one transaction; the triggers step aside for exactly that)."""
        with self._tx() as db:
            have = {r[1] for r in db.execute("PRAGMA table_info(entries)")}
            if "hash" in have:
                return
            for column, decl in (("invoked_by", "TEXT"), ("uid", "INTEGER"),
                                 ("host", "TEXT NOT NULL DEFAULT ''"),
                                 ("prev_hash", "TEXT NOT NULL DEFAULT ''"),
                                 ("hash", "TEXT NOT NULL DEFAULT ''")):
                if column not in have:
                    db.execute(f"ALTER TABLE entries ADD COLUMN {column} {decl}")
            db.execute("DROP TRIGGER entries_no_update")
            prev, last_id = GENESIS, 0
            for row in db.execute(f"SELECT {', '.join(_COLUMNS)} FROM entries ORDER BY id"
                                  ).fetchall():
                e = {**_row(row), "prev_hash": prev}
                e["hash"] = entry_hash(e)
                db.execute("UPDATE entries SET prev_hash = ?, hash = ? WHERE id = ?",
                           (prev, e["hash"], e["id"]))
                prev, last_id = e["hash"], e["id"]
            if last_id:
                db.execute("INSERT OR REPLACE INTO head VALUES (1, ?, ?)", (last_id, prev))
            db.execute("CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries"
                       " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END")

    def record(self, action: str, targets: Sequence[str], reason: str = "",
               plan: Any = None, outcome: str = "") -> int:
        """Append one entry as this process's account; returns its id. `plan`: a Plan (or
        any dataclass), a dict, None."""
        if dataclasses.is_dataclass(plan) and not isinstance(plan, type):
            plan = dataclasses.asdict(plan)
        a = self.actor
        entry: dict[str, Any] = {
            "ts": time.time(), "user": a.user, "invoked_by": a.invoked_by, "uid": a.uid,
            "host": a.host, "action": action,
            "targets": json.dumps(list(targets), ensure_ascii=False),
            "reason": redact(reason),
            "plan": None if plan is None else json.dumps(redact_all(plan), sort_keys=True),
            "outcome": redact(outcome),
        }
        with self._tx() as db:
            head = db.execute("SELECT last_id, last_hash FROM head").fetchone()
            last = db.execute("SELECT id, hash FROM entries ORDER BY id DESC LIMIT 1").fetchone()
            # Chain from the head, not from what the table holds now: after a truncation the
            # next entry still points at the lost one, and the gap stays visible.
            last_id = max(head[0] if head else 0, last[0] if last else 0)
            prev = head[1] if head else (last[1] if last else GENESIS)
            entry.update(id=last_id + 1, prev_hash=prev)
            entry["hash"] = entry_hash(entry)
            db.execute(f"INSERT INTO entries ({', '.join(_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(_COLUMNS))})", [entry[c] for c in _COLUMNS])
            db.execute("INSERT INTO head VALUES (1, ?, ?) ON CONFLICT(one) DO UPDATE SET"
                       " last_id = excluded.last_id, last_hash = excluded.last_hash",
                       (entry["id"], entry["hash"]))
        return int(entry["id"])

    # -- reading --------------------------------------------------------------------------

    def entries(self, since: float | None = None, limit: int | None = None) -> list[dict]:
        """Entries at or after `since` (epoch seconds), oldest first; `limit`: the latest N."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM entries"
        args: list[Any] = []
        if since is not None:
            query += " WHERE ts >= ?"
            args.append(since)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        with self._tx(write=False) as db:
            rows = db.execute(query, args).fetchall()
        return [_public(_row(r)) for r in reversed(rows)]

    def check_head(self) -> str | None:
        """Cheap check for every read: does the newest entry still match the head? A
        sentence when it does not (truncated, emptied), else None. verify() checks it all."""
        with self._tx(write=False) as db:
            head = db.execute("SELECT last_id, last_hash FROM head").fetchone()
            last = db.execute("SELECT id, hash FROM entries ORDER BY id DESC LIMIT 1").fetchone()
        if head is None:
            return None if last is None else "the log has entries but no head"
        if last is None:
            return f"the log is empty but its head says {head[0]} entries were written"
        if tuple(last) != tuple(head):
            return (f"the newest entry is {last[0]} but the head says {head[0]}: the log was "
                    "truncated or rewritten")
        return None

    def verify(self) -> Verdict:
        """Walk the whole chain: every id in order, every hash, the head."""
        with self._tx(write=False) as db:
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM entries ORDER BY id").fetchall()
            head = db.execute("SELECT last_id, last_hash FROM head").fetchone()
        prev, count = GENESIS, 0
        for row in rows:
            e = _row(row)
            count += 1
            if e["id"] != count:
                missing = f"{count}" if e["id"] == count + 1 else f"{count}-{e['id'] - 1}"
                return Verdict(count, f"entry {missing} is missing (deleted)", count)
            if e["prev_hash"] != prev:
                return Verdict(count, f"entry {e['id']} does not follow entry {e['id'] - 1} "
                                      "(the chain is broken)", e["id"])
            if entry_hash(e) != e["hash"]:
                return Verdict(count, f"entry {e['id']} was changed after it was written "
                                      "(its hash does not match)", e["id"])
            prev = e["hash"]
        if head is None:
            return Verdict(count) if count == 0 else Verdict(
                count, "the head is missing", count)
        if head[0] != count or head[1] != prev:
            return Verdict(count, f"the log ends at entry {count} but the head says "
                                  f"{head[0]} entries were written (truncated)", count + 1)
        return Verdict(count)

    def export_jsonl(self, fp: IO[str], since: float | None = None,
                     limit: int | None = None) -> int:
        """Write entries as JSON lines to `fp`; returns how many."""
        entries = self.entries(since=since, limit=limit)
        for entry in entries:
            fp.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
        return len(entries)
