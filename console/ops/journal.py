"""The execution journal: every plan and the state of each of its steps, in its own SQLite file.

A step's row says `started` (committed, fsync'ed: synchronous=FULL) before the engine is
called and `done` after, so a console killed anywhere finds, on restart, exactly which step
may have been half done; engine calls are idempotent, so redoing it is harmless. The row also
keeps `before`, what the engine had before the step's first attempt, which is what a rollback
restores. Rollback steps are rows too (phase `undo`), so a rollback killed halfway resumes.

Plan status: open -> done, or open/done -> rolling-back -> rolled-back.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from console.ops.model import Placement
from console.ops.plan import Plan, Step
from console.ops.store import Store

StepState = Literal["pending", "started", "done", "failed", "skipped"]
PlanStatus = Literal["open", "done", "rolling-back", "rolled-back"]
Phase = Literal["run", "undo"]
STEP_STATES: tuple[str, ...] = ("pending", "started", "done", "failed", "skipped")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    user TEXT NOT NULL,
    kind TEXT NOT NULL,
    plan TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'done', 'rolling-back', 'rolled-back'))
);
CREATE TABLE IF NOT EXISTS steps (
    plan_id INTEGER NOT NULL REFERENCES plans(id),
    phase TEXT NOT NULL CHECK (phase IN ('run', 'undo')),
    n INTEGER NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'started', 'done', 'failed', 'skipped')),
    detail TEXT NOT NULL DEFAULT '',
    before TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (plan_id, phase, n)
);
"""


def default_path() -> Path:
    """Where the journal lives unless [console] says otherwise: beside the embedded jobs.db
    ($XDG_STATE_HOME/fleetops/journal.db)."""
    from console.core.inventory import default_db_path

    return default_db_path().with_name("journal.db")


class JournalError(Exception):
    """A journal call failed; one line."""


# -- plans as JSON --------------------------------------------------------------------------


def plan_to_json(plan: Plan) -> str:
    return json.dumps(dataclasses.asdict(plan), sort_keys=True)


def _placements(raw: list[dict[str, Any]]) -> tuple[Placement, ...]:
    return tuple(Placement(p["node"], tuple(p["devices"])) for p in raw)


def step_from_dict(raw: dict[str, Any]) -> Step:
    return Step(**{**raw, "source": _placements(raw.get("source", [])),
                   "target": _placements(raw.get("target", []))})


def plan_from_json(text: str) -> Plan:
    raw = json.loads(text)
    return Plan(
        kind=raw["kind"], targets=tuple(raw["targets"]),
        steps=tuple(step_from_dict(s) for s in raw["steps"]),
        reason=raw.get("reason", ""), notes=tuple(raw.get("notes", ())),
    )


# -- records --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepRecord:
    n: int  # index of the step in the plan (for undo rows: of the step being undone)
    step: Step
    state: StepState
    detail: str
    before: dict[str, Any] | None  # engine state before the first attempt; None: never started
    phase: Phase = "run"


@dataclass(frozen=True)
class JournaledPlan:
    id: int
    plan: Plan
    user: str
    created_at: float
    status: PlanStatus
    steps: tuple[StepRecord, ...]  # in plan order
    undo: tuple[StepRecord, ...] = ()  # in the order they run (reverse plan order)


class Journal:
    """Thread-safe like the engine: one connection, a lock, WAL, IMMEDIATE transactions."""

    def __init__(self, path: Path, timeout_s: float = 10.0):
        self.path = Path(path)
        self._store = Store(self.path, JournalError, "journal", timeout_s=timeout_s)
        self._tx = self._store.tx
        self._store.create(_SCHEMA)
        with self._tx() as db:
            if db.execute("SELECT version FROM schema_version").fetchone() is None:
                db.execute("INSERT INTO schema_version VALUES (1)")

    def close(self) -> None:
        self._store.close()

    def begin(self, plan: Plan, user: str) -> int:
        """Store the plan, every step pending; returns the plan id."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO plans (created_at, updated_at, user, kind, plan, status)"
                " VALUES (?, ?, ?, ?, ?, 'open')",
                (now, now, user, plan.kind, plan_to_json(plan)),
            )
            plan_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO steps (plan_id, phase, n, action, state, updated_at)"
                " VALUES (?, 'run', ?, ?, 'pending', ?)",
                [(plan_id, n, s.action, now) for n, s in enumerate(plan.steps)],
            )
        return plan_id

    def mark(self, plan_id: int, n: int, state: StepState, detail: str = "", *,
             before: dict[str, Any] | None = None, phase: Phase = "run") -> None:
        """Set step `n`'s state. `before` is kept from the first attempt only: a step redone
        after a crash must not record the state its own first attempt left behind."""
        if state not in STEP_STATES:
            raise JournalError(f"journal: unknown step state {state!r}")
        with self._tx() as db:
            cur = db.execute(
                "UPDATE steps SET state = ?, detail = ?, updated_at = ?,"
                " before = COALESCE(before, ?) WHERE plan_id = ? AND phase = ? AND n = ?",
                (state, detail, time.time(), None if before is None else json.dumps(before),
                 plan_id, phase, n),
            )
            if cur.rowcount != 1:
                raise JournalError(f"journal: plan {plan_id} has no {phase} step {n}")

    def set_status(self, plan_id: int, status: PlanStatus) -> None:
        with self._tx() as db:
            db.execute("UPDATE plans SET status = ?, updated_at = ? WHERE id = ?",
                       (status, time.time(), plan_id))

    def begin_undo(self, plan_id: int) -> None:
        """Start a rollback, in one transaction: an undo row for every step that was started
        (it may have taken effect), the steps never started skipped, status rolling-back.
        Calling it again (a rollback resumed) changes nothing."""
        now = time.time()
        with self._tx() as db:
            status = db.execute("SELECT status FROM plans WHERE id = ?", (plan_id,)).fetchone()
            if status is None:
                raise JournalError(f"journal: no plan {plan_id}")
            if status[0] in ("rolling-back", "rolled-back"):
                return
            db.execute(
                "INSERT INTO steps (plan_id, phase, n, action, state, before, updated_at)"
                " SELECT plan_id, 'undo', n, action, 'pending', before, ? FROM steps"
                " WHERE plan_id = ? AND phase = 'run' AND before IS NOT NULL",
                (now, plan_id),
            )
            db.execute(
                "UPDATE steps SET state = 'skipped', updated_at = ?"
                " WHERE plan_id = ? AND phase = 'run' AND state = 'pending'",
                (now, plan_id),
            )
            db.execute("UPDATE plans SET status = 'rolling-back', updated_at = ? WHERE id = ?",
                       (now, plan_id))

    def unfinished(self) -> list[int]:
        """Plans a killed console left open or half rolled back, oldest first."""
        with self._tx(write=False) as db:
            rows = db.execute(
                "SELECT id FROM plans WHERE status IN ('open', 'rolling-back') ORDER BY id"
            ).fetchall()
        return [r[0] for r in rows]

    def recent(self, limit: int = 20) -> list[tuple[int, float, str, str, PlanStatus]]:
        """(id, created_at, user, kind, status) of the latest plans, newest first."""
        with self._tx(write=False) as db:
            return db.execute(
                "SELECT id, created_at, user, kind, status FROM plans ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()

    def load(self, plan_id: int) -> JournaledPlan:
        with self._tx(write=False) as db:
            row = db.execute(
                "SELECT plan, user, created_at, status FROM plans WHERE id = ?", (plan_id,)
            ).fetchone()
            if row is None:
                raise JournalError(f"journal: no plan {plan_id}")
            rows = db.execute(
                "SELECT phase, n, state, detail, before FROM steps WHERE plan_id = ?"
                " ORDER BY phase = 'undo', CASE phase WHEN 'run' THEN n ELSE -n END",
                (plan_id,),
            ).fetchall()
        plan = plan_from_json(row[0])
        records = [
            StepRecord(n, plan.steps[n], state, detail,
                       None if before is None else json.loads(before), phase)
            for phase, n, state, detail, before in rows
        ]
        return JournaledPlan(
            plan_id, plan, row[1], row[2], row[3],
            tuple(r for r in records if r.phase == "run"),
            tuple(r for r in records if r.phase == "undo"),
        )
