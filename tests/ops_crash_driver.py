"""Crash-test driver: run a fixed plan against an embedded engine, dying by SIGKILL on demand.

    python tests/ops_crash_driver.py DIR PLAN [--resume | --rollback]

DIR holds engine.db, journal.db and audit.db (the engine is seeded with FIXTURE on first
use); PLAN is one of PLANS. FLEETOPS_CRASH_AT=<n>:<before|after>[:undo] SIGKILLs the process
once the journal says step n started (before) or once its engine call returned (after), in
the run or (with :undo) in a rollback. FLEETOPS_PAUSE_AT (same form) with FLEETOPS_PAUSE_FILE=F
pauses there instead: it creates F.reached, then waits until F exists (the concurrency tests
hold a plan's lease that way while another process tries it). --resume resumes and --rollback
rolls back every unfinished plan (--plan ID: only that one). Prints each outcome's account;
exits with the last exit code (2 with the message when the plan's lease is held).

The kill comes from a subclass overriding Executor._checkpoint, so production code reads no
environment variable. The test module imports this file for FIXTURE, PLANS and snapshot().
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

from console.engines.embedded import EmbeddedEngine
from console.model.jobs import Job, Placement
from console.ops.executor import Executor
from console.planning.plan import Plan, Step
from console.state.audit import Audit
from console.state.identity import Actor
from console.state.journal import Journal
from console.state.lease import LeaseHeld


def _job(jid: str, pool: str, runtime: str, dpn: int, *placement: tuple[str, tuple[int, ...]],
         mem: int = 40_000) -> Job:
    return Job(jid, f"job-{jid}", "alice", pool, len(placement), dpn, mem, runtime,  # type: ignore[arg-type]
               state="running", placement=tuple(Placement(n, d) for n, d in placement))


# nv-a (H100) is drained; j-4 and j-5 move from the Nvidia pool to PPU and 910B nodes.
FIXTURE: tuple[Job, ...] = (
    _job("j-1", "nvidia", "cuda", 4, ("nv-a", (0, 1, 2, 3))),
    _job("j-2", "nvidia", "cuda", 2, ("nv-a", (4, 5))),
    _job("j-3", "nvidia", "portable", 1, ("nv-a", (6,))),
    _job("j-4", "nvidia", "cuda-compatible", 4, ("nv-c", (4, 5, 6, 7))),
    _job("j-5", "nvidia", "portable", 2, ("nv-b", (6, 7)), ("nv-c", (2, 3))),
    _job("j-6", "domestic", "cann", 6, ("dm-910b", (2, 3, 4, 5, 6, 7)), mem=60_000),
)


def _move(job: str, source: tuple[Placement, ...], target: tuple[Placement, ...],
          pool: str | None = None) -> Step:
    return Step("move", f"room for {job}", job=job, source=source, target=target,
                target_pool=pool)


def _p(*parts: tuple[str, tuple[int, ...]]) -> tuple[Placement, ...]:
    return tuple(Placement(n, d) for n, d in parts)


PLANS: dict[str, Plan] = {
    "drain": Plan("drain", ("nv-a",), (
        Step("drain", "operator request", node="nv-a"),
        _move("j-1", _p(("nv-a", (0, 1, 2, 3))), _p(("nv-b", (0, 1, 2, 3)))),
        _move("j-2", _p(("nv-a", (4, 5))), _p(("nv-b", (4, 5)))),
        _move("j-3", _p(("nv-a", (6,))), _p(("nv-c", (0,)))),
    ), reason="replace a fan on nv-a"),
    "cross": Plan("move", ("j-4", "j-5"), (
        _move("j-4", _p(("nv-c", (4, 5, 6, 7))), _p(("dm-ppu", (0, 1, 2, 3))), "domestic"),
        _move("j-5", _p(("nv-b", (6, 7)), ("nv-c", (2, 3))),
              _p(("dm-910b", (0, 1)), ("dm-ppu", (4, 5))), "domestic"),
    ), reason="free Nvidia capacity for a training run"),
}


def snapshot(engine: EmbeddedEngine) -> dict:
    """Everything a plan can change: each job's pool, state and devices; node admin states."""
    jobs = {j.id: (j.pool, j.state, frozenset((p.node, d) for p in j.placement for d in p.devices))
            for j in engine.jobs()}
    nodes = {n: s for n, s in engine.admin_states().items() if s != "active"}
    return {"jobs": jobs, "nodes": nodes}


ACTOR = Actor("ops", 1000, None, socket.gethostname(), 0)


class CrashingExecutor(Executor):
    def __init__(self, *args: object, crash_at: str | None, pause_at: str | None = None,
                 pause_file: str | None = None) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.crash_at = crash_at
        self.pause_at = pause_at
        self.pause_file = pause_file

    def _checkpoint(self, phase: str, n: int, when: str) -> None:
        here = f"{n}:{when}" + (":undo" if phase == "undo" else "")
        if here == self.crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if here == self.pause_at and self.pause_file:
            Path(self.pause_file + ".reached").touch()
            while not Path(self.pause_file).exists():  # the test says when to go on
                time.sleep(0.02)


def open_all(root: Path) -> tuple[EmbeddedEngine, Journal, Audit]:
    engine = EmbeddedEngine(root / "engine.db")
    return engine, Journal(root / "journal.db"), Audit(root / "audit.db", actor=ACTOR)


def main(argv: list[str]) -> int:
    root, plan_name, *flags = argv
    engine, journal, audit = open_all(Path(root))
    if not engine.jobs():
        engine.submit_many(FIXTURE)
    ex = CrashingExecutor(engine, journal, audit, crash_at=os.environ.get("FLEETOPS_CRASH_AT"),
                          pause_at=os.environ.get("FLEETOPS_PAUSE_AT"),
                          pause_file=os.environ.get("FLEETOPS_PAUSE_FILE"))
    ids = [int(flags[flags.index("--plan") + 1])] if "--plan" in flags else journal.unfinished()
    code = 0
    try:
        for pid in ids if ("--resume" in flags or "--rollback" in flags) else [None]:
            if "--resume" in flags:
                outcome = ex.resume(pid)
            elif "--rollback" in flags:
                outcome = ex.rollback(pid, "crash test")
            else:
                outcome = ex.run(PLANS[plan_name])
            print("\n".join(outcome.account()), flush=True)
            code = outcome.exit_code
    except LeaseHeld as exc:
        print(f"lease held: {exc}", flush=True)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
