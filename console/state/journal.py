"""The execution journal: every plan and the state of each of its steps, in its own SQLite file.

A step's row says `started` (committed, fsync'ed: synchronous=FULL) before the engine is
called and `done` after, so a console killed anywhere finds, on restart, exactly which step
may have been half done; engine calls are idempotent, so redoing it is harmless. The row also
keeps `before`, what the engine had before the step's first attempt, which is what a rollback
restores. Rollback steps are rows too (phase `undo`), so a rollback killed halfway resumes.

Steps are never rewritten: a step re-planned at execution (the fleet changed under the plan)
is marked skipped with the number of its successor, and the new steps are appended to the
plan, so the journal tells what was planned, what was re-planned and why.

One runner per plan: a plan is run, resumed or rolled back only under its lease (lease.py),
taken in the same transaction that checks nobody else holds it.

Plan status: open -> done, or open/done -> rolling-back -> rolled-back.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from console.model.jobs import Placement
from console.planning.plan import CLOSING, Plan, Step
from console.state.lease import Lease, LeaseHeld, Owner
from console.state.store import Store

StepState = Literal["pending", "started", "done", "failed", "skipped"]
PlanStatus = Literal["open", "done", "rolling-back", "rolled-back"]
Phase = Literal["run", "undo"]
STEP_STATES: tuple[str, ...] = ("pending", "started", "done", "failed", "skipped")
SCHEMA_VERSION = 2

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
    subject TEXT,
    PRIMARY KEY (plan_id, phase, n)
);
CREATE TABLE IF NOT EXISTS leases (
    plan_id INTEGER PRIMARY KEY REFERENCES plans(id),
    token TEXT NOT NULL,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_start TEXT NOT NULL DEFAULT '',
    since REAL NOT NULL,
    renewed REAL NOT NULL
);
"""
_INDEXES = "CREATE INDEX IF NOT EXISTS steps_subject ON steps(subject, updated_at);"


def default_path() -> Path:
    """Where the journal lives unless [console] says otherwise: beside the embedded jobs.db
    ($XDG_STATE_HOME/fleetops/journal.db)."""
    from console.model.inventory import default_db_path

    return default_db_path().with_name("journal.db")


class JournalError(Exception):
    """A journal call failed; one line."""


class GuardrailTripped(Exception):
    """begin(guard=...) found the plan over a guardrail; nothing was stored."""

    def __init__(self, sentences: list[str]) -> None:
        super().__init__("; ".join(sentences))
        self.sentences = sentences


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
        pool=raw.get("pool"), made_at=raw.get("made_at", 0.0),
        guardrails=tuple(raw.get("guardrails", ())),
    )


def subject(step: Step) -> str | None:
    return step.node if step.node is not None else step.job


# -- records --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepRecord:
    n: int  # index of the step in the plan (for undo rows: of the step being undone)
    step: Step
    state: StepState
    detail: str
    before: dict[str, Any] | None  # engine state before the first attempt; None: never started
    phase: Phase = "run"
    updated_at: float = 0.0


@dataclass(frozen=True)
class JournaledPlan:
    id: int
    plan: Plan
    user: str
    created_at: float
    status: PlanStatus
    steps: tuple[StepRecord, ...]  # in plan order
    undo: tuple[StepRecord, ...] = ()  # in the order they run (reverse plan order)


@dataclass(frozen=True)
class Touch:
    """A done step of another plan on a node or job (what rollback must not override)."""

    plan_id: int
    action: str
    at: float


class _Reader:
    """The queries the guardrails need, on a connection inside a transaction."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def closed_since(self, since: float) -> dict[str, float]:
        marks = ", ".join("?" * len(CLOSING))
        rows = self._db.execute(
            f"SELECT subject, MAX(updated_at) FROM steps WHERE phase = 'run' AND state ="
            f" 'done' AND action IN ({marks}) AND updated_at >= ? GROUP BY subject",
            (*CLOSING, since)).fetchall()
        return {r[0]: r[1] for r in rows if r[0] is not None}

    def closing_in_flight(self) -> dict[str, int]:
        marks = ", ".join("?" * len(CLOSING))
        rows = self._db.execute(
            f"SELECT s.subject, s.plan_id FROM steps s JOIN plans p ON p.id = s.plan_id"
            f" WHERE p.status = 'open' AND s.phase = 'run' AND s.action IN ({marks})"
            f" AND s.state IN ('pending', 'started', 'failed')", CLOSING).fetchall()
        return {r[0]: r[1] for r in rows if r[0] is not None}


class Journal:
    """Thread-safe like the engine: one connection, a lock, WAL, IMMEDIATE transactions."""

    def __init__(self, path: Path, timeout_s: float = 10.0, *, readonly: bool = False):
        self.path = Path(path)
        self._store = Store(self.path, JournalError, "journal", _SCHEMA, timeout_s=timeout_s,
                            readonly=readonly)
        self._tx = self._store.tx
        if not readonly:
            self._migrate()

    def _migrate(self) -> None:
        with self._tx() as db:
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is not None and row[0] > SCHEMA_VERSION:
                raise JournalError(f"journal: {self.path} has schema version {row[0]}, this "
                                   f"console knows up to {SCHEMA_VERSION}")
            if "subject" not in {r[1] for r in db.execute("PRAGMA table_info(steps)")}:
                db.execute("ALTER TABLE steps ADD COLUMN subject TEXT")
                for pid, text in db.execute("SELECT id, plan FROM plans").fetchall():
                    for n, s in enumerate(plan_from_json(text).steps):
                        db.execute("UPDATE steps SET subject = ? WHERE plan_id = ? AND n = ?",
                                   (subject(s), pid, n))
            db.execute(_INDEXES)
            if row is None:
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] < SCHEMA_VERSION:
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def close(self) -> None:
        self._store.close()

    # -- plans ----------------------------------------------------------------------------

    def begin(self, plan: Plan, user: str, owner: Owner | None = None,
              guard: Callable[[_Reader], list[str]] | None = None) -> int:
        """Store the plan, every step pending, and (with `owner`) its lease, in one
        transaction; returns the plan id. `guard` is asked first, inside the transaction
        (other plans wait), with a reader of plans in flight and recent closures; what it
        returns is raised as GuardrailTripped, and nothing is stored."""
        now = time.time()
        with self._tx() as db:
            if guard is not None and (tripped := guard(_Reader(db))):
                raise GuardrailTripped(tripped)
            cur = db.execute(
                "INSERT INTO plans (created_at, updated_at, user, kind, plan, status)"
                " VALUES (?, ?, ?, ?, ?, 'open')",
                (now, now, user, plan.kind, plan_to_json(plan)),
            )
            plan_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO steps (plan_id, phase, n, action, state, updated_at, subject)"
                " VALUES (?, 'run', ?, ?, 'pending', ?, ?)",
                [(plan_id, n, s.action, now, subject(s)) for n, s in enumerate(plan.steps)],
            )
            if owner is not None:
                self._take(db, plan_id, owner, now)
        return plan_id

    def append_steps(self, plan_id: int, superseded: list[int], steps: list[Step],
                     why: str) -> list[int]:
        """Re-planned at execution: the `superseded` steps are skipped (their detail names
        what replaced them) and `steps` are added at the end. Returns the new indices."""
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT plan FROM plans WHERE id = ?", (plan_id,)).fetchone()
            if row is None:
                raise JournalError(f"journal: no plan {plan_id}")
            plan = plan_from_json(row[0])
            first = len(plan.steps)
            new = list(range(first, first + len(steps)))
            plan = dataclasses.replace(plan, steps=(*plan.steps, *steps))
            db.execute("UPDATE plans SET plan = ?, updated_at = ? WHERE id = ?",
                       (plan_to_json(plan), now, plan_id))
            db.executemany(
                "INSERT INTO steps (plan_id, phase, n, action, state, updated_at, subject)"
                " VALUES (?, 'run', ?, ?, 'pending', ?, ?)",
                [(plan_id, n, s.action, now, subject(s)) for n, s in zip(new, steps, strict=True)])
            where = (f"re-planned as step{'s' if len(new) > 1 else ''} "
                     f"{', '.join(str(n + 1) for n in new)}" if new else "re-planned: no longer "
                     "needed")
            db.executemany(
                "UPDATE steps SET state = 'skipped', detail = ?, updated_at = ?"
                " WHERE plan_id = ? AND phase = 'run' AND n = ? AND state != 'done'",
                [(f"{why}; {where}", now, plan_id, n) for n in superseded])
        return new

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
                "INSERT INTO steps (plan_id, phase, n, action, state, before, updated_at,"
                " subject) SELECT plan_id, 'undo', n, action, 'pending', before, ?, subject"
                " FROM steps WHERE plan_id = ? AND phase = 'run' AND before IS NOT NULL",
                (now, plan_id),
            )
            db.execute(
                "UPDATE steps SET state = 'skipped', updated_at = ?"
                " WHERE plan_id = ? AND phase = 'run' AND state = 'pending'",
                (now, plan_id),
            )
            db.execute("UPDATE plans SET status = 'rolling-back', updated_at = ? WHERE id = ?",
                       (now, plan_id))

    # -- leases ---------------------------------------------------------------------------

    def _take(self, db: Any, plan_id: int, owner: Owner, now: float) -> None:
        row = db.execute("SELECT token, user, host, pid, pid_start, since, renewed FROM leases"
                         " WHERE plan_id = ?", (plan_id,)).fetchone()
        if row is not None:
            held = Lease(plan_id, *row)
            if held.token != owner.token and held.alive(now):
                raise LeaseHeld(held)
        db.execute(
            "INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(plan_id) DO UPDATE"
            " SET token = excluded.token, user = excluded.user, host = excluded.host,"
            " pid = excluded.pid, pid_start = excluded.pid_start, since = excluded.since,"
            " renewed = excluded.renewed",
            (plan_id, owner.token, owner.user, owner.host, owner.pid, owner.pid_start, now, now))

    def acquire(self, plan_id: int, owner: Owner) -> None:
        """Take the plan's lease; LeaseHeld (who, where, since when) if someone alive has it."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM plans WHERE id = ?", (plan_id,)).fetchone() is None:
                raise JournalError(f"journal: no plan {plan_id}")
            self._take(db, plan_id, owner, time.time())

    def renew(self, plan_id: int, owner: Owner) -> bool:
        """Extend our lease; False if it is no longer ours (it expired and someone took it)."""
        with self._tx() as db:
            cur = db.execute("UPDATE leases SET renewed = ? WHERE plan_id = ? AND token = ?",
                             (time.time(), plan_id, owner.token))
            return cur.rowcount == 1

    def release(self, plan_id: int, owner: Owner) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE plan_id = ? AND token = ?",
                       (plan_id, owner.token))

    def lease(self, plan_id: int) -> Lease | None:
        with self._tx(write=False) as db:
            row = db.execute("SELECT token, user, host, pid, pid_start, since, renewed FROM"
                             " leases WHERE plan_id = ?", (plan_id,)).fetchone()
        return None if row is None else Lease(plan_id, *row)

    # -- what other plans did -------------------------------------------------------------

    def touches(self, subject_name: str, after: float, exclude: int) -> list[Touch]:
        """Done steps of other plans on `subject_name` (a node or a job) after `after`,
        oldest first; plans rolled back since do not count (their work was undone)."""
        with self._tx(write=False) as db:
            rows = db.execute(
                "SELECT s.plan_id, s.action, s.updated_at FROM steps s JOIN plans p"
                " ON p.id = s.plan_id WHERE s.subject = ? AND s.updated_at > ?"
                " AND s.plan_id != ? AND s.phase = 'run' AND s.state = 'done'"
                " AND p.status != 'rolled-back' ORDER BY s.updated_at",
                (subject_name, after, exclude)).fetchall()
        return [Touch(*r) for r in rows]

    def closed_since(self, since: float) -> dict[str, float]:
        """Nodes that a done cordon or drain step took out of service since `since` (epoch
        seconds), each with when: what the guardrails' time window counts."""
        with self._tx(write=False) as db:
            return _Reader(db).closed_since(since)

    def closing_in_flight(self) -> dict[str, int]:
        """Nodes that open plans are about to take out of service (cordon or drain steps not
        done yet), each with its plan id."""
        with self._tx(write=False) as db:
            return _Reader(db).closing_in_flight()

    # -- reading --------------------------------------------------------------------------

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
                "SELECT phase, n, state, detail, before, updated_at FROM steps WHERE plan_id = ?"
                " ORDER BY phase = 'undo', CASE phase WHEN 'run' THEN n ELSE -n END",
                (plan_id,),
            ).fetchall()
        plan = plan_from_json(row[0])
        records = [
            StepRecord(n, plan.steps[n], state, detail,
                       None if before is None else json.loads(before), phase, at)
            for phase, n, state, detail, before, at in rows
        ]
        return JournaledPlan(
            plan_id, plan, row[1], row[2], row[3],
            tuple(r for r in records if r.phase == "run"),
            tuple(r for r in records if r.phase == "undo"),
        )
