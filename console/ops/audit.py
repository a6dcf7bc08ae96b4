"""The audit log: who did what, when, why, with which plan and outcome. Append-only, in SQLite.

Triggers make UPDATE and DELETE abort, so no code path of the console can rewrite history
(someone with the file can still drop the table: this guards against mistakes, it is not a
tamper-proof ledger). Export is JSON lines, one entry a line, oldest first.

Secrets never land here: the executor passes plans, node names and job ids, never SSH
settings, and free text (reasons, outcomes, plan strings) goes through redact() first.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from console.ops.store import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    targets TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    plan TEXT,
    outcome TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A PEM private key block (or its start, when the text was cut before the END line).
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?"
                r"(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S), "[redacted private key]"),
    (re.compile(r"(?i)\b(password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key)"
                r"(\s*[=:]\s*)[^\s,;'\"]+"), r"\1\2[redacted]"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/-]+=*"), r"\1 [redacted]"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|xox[abprs]-[A-Za-z0-9-]{10,})"),
     "[redacted token]"),
    # SSH key files: where a key lives is nobody's business in an audit log.
    (re.compile(r"[^\s'\"]*\.ssh/[^\s'\",;]+|[^\s'\"]*\bid_(?:rsa|dsa|ecdsa|ed25519)\b[^\s'\",;]*"),
     "[redacted ssh path]"),
)


def redact(text: str) -> str:
    """`text` with private keys, key=value secrets, tokens and SSH key paths masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _redact_all(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_all(v) for v in value]
    return value


def default_path() -> Path:
    """Where the audit log lives unless [console] says otherwise: beside the embedded jobs.db
    ($XDG_STATE_HOME/fleetops/audit.db)."""
    from console.core.inventory import default_db_path

    return default_db_path().with_name("audit.db")


class AuditError(Exception):
    """The audit log cannot be read or written; one line."""


class Audit:
    """Thread-safe: one connection, a lock (the TUI records from a worker thread)."""

    def __init__(self, path: Path, timeout_s: float = 10.0):
        self.path = Path(path)
        self._store = Store(self.path, AuditError, "audit log", timeout_s=timeout_s)
        self._tx = self._store.tx
        self._store.create(_SCHEMA)  # IF NOT EXISTS throughout: safe to race

    def close(self) -> None:
        self._store.close()

    def record(self, action: str, targets: Sequence[str], reason: str = "",
               plan: Any = None, outcome: str = "", user: str | None = None) -> int:
        """Append one entry; returns its id. `plan`: a Plan (or any dataclass), a dict, None."""
        if dataclasses.is_dataclass(plan) and not isinstance(plan, type):
            plan = dataclasses.asdict(plan)
        plan_json = None if plan is None else json.dumps(_redact_all(plan), sort_keys=True)
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO entries (ts, user, action, targets, reason, plan, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), user or getpass.getuser(), action, json.dumps(list(targets)),
                 redact(reason), plan_json, redact(outcome)),
            )
            return int(cur.lastrowid or 0)

    def entries(self, since: float | None = None, limit: int | None = None) -> list[dict]:
        """Entries at or after `since` (epoch seconds), oldest first; `limit`: the latest N."""
        query = "SELECT id, ts, user, action, targets, reason, plan, outcome FROM entries"
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
        return [
            {"id": i, "ts": ts, "user": user, "action": action, "targets": json.loads(targets),
             "reason": reason, "outcome": outcome,
             "plan": None if plan is None else json.loads(plan)}
            for i, ts, user, action, targets, reason, plan, outcome in reversed(rows)
        ]

    def export_jsonl(self, fp: IO[str], since: float | None = None,
                     limit: int | None = None) -> int:
        """Write entries as JSON lines to `fp`; returns how many."""
        entries = self.entries(since=since, limit=limit)
        for entry in entries:
            fp.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
        return len(entries)
