"""Journaled execution: happy path, a scheduler failing halfway, rollback, and SIGKILL of the
console at every journal step of a drain and a cross-pool move, then resume or rollback."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from console.engines.base import EngineError
from console.engines.embedded import EmbeddedEngine
from console.model.jobs import Job, Placement
from console.ops.executor import Executor, describe, fmt_placement
from console.planning.plan import Plan, Step
from console.state.journal import Journal, JournalError, plan_from_json, plan_to_json

REPO = Path(__file__).parents[1]
DRIVER = Path(__file__).with_name("ops_crash_driver.py")
_spec = importlib.util.spec_from_file_location("ops_crash_driver", DRIVER)
assert _spec and _spec.loader
drv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drv)
PLANS: dict[str, Plan] = drv.PLANS


def setup(root: Path, engine_cls: type[EmbeddedEngine] = EmbeddedEngine):
    engine = engine_cls(root / "engine.db")
    engine.submit_many(drv.FIXTURE)
    journal = drv.Journal(root / "journal.db")
    audit = drv.Audit(root / "audit.db", actor=drv.ACTOR)
    return engine, journal, audit, Executor(engine, journal, audit)


def assert_placed_once(engine: EmbeddedEngine) -> None:
    """No job lost, each on exactly its size in devices, no device held twice."""
    jobs = engine.jobs()
    assert sorted(j.id for j in jobs) == sorted(j.id for j in drv.FIXTURE)
    held = Counter((p.node, d) for j in jobs for p in j.placement for d in p.devices)
    assert all(c == 1 for c in held.values())
    for j in jobs:
        assert sum(len(p.devices) for p in j.placement) == j.nodes * j.devices_per_node, j
        assert len({p.node for p in j.placement}) == j.nodes


# -- journal --------------------------------------------------------------------------------


def test_plan_json_round_trip():
    for plan in PLANS.values():
        assert plan_from_json(plan_to_json(plan)) == plan


def test_journal_states_and_before_kept_from_first_attempt(tmp_path):
    j = Journal(tmp_path / "j.db")
    pid = j.begin(PLANS["drain"], "ops")
    assert j.unfinished() == [pid]
    j.mark(pid, 0, "started", before={"admin": "active"})
    j.mark(pid, 0, "started", before={"admin": "draining"})  # a redo after a crash
    j.mark(pid, 0, "done", "ok")
    jp = j.load(pid)
    assert (jp.steps[0].state, jp.steps[0].before, jp.steps[0].detail) == (
        "done", {"admin": "active"}, "ok")
    assert [r.state for r in jp.steps[1:]] == ["pending"] * 3
    assert jp.plan == PLANS["drain"] and jp.user == "ops" and jp.status == "open"
    with pytest.raises(JournalError):
        j.mark(pid, 9, "done")
    with pytest.raises(JournalError):
        j.mark(pid, 1, "bogus")  # type: ignore[arg-type]
    j.set_status(pid, "done")
    assert j.unfinished() == []
    # a second connection (another console) sees every commit
    assert Journal(tmp_path / "j.db").load(pid).steps[0].state == "done"


# -- executor -------------------------------------------------------------------------------


def test_happy_path_journal_audit_progress(tmp_path):
    engine, journal, audit, ex = setup(tmp_path)
    seen: list[tuple[int, int, str]] = []
    out = ex.run(PLANS["drain"], progress=lambda n, t, s, st: seen.append((n, t, st)))
    assert out.status == "done" and out.exit_code == 0
    assert [r.n for r in out.done] == [0, 1, 2, 3] and not out.failed and not out.pending
    assert seen == [(n, 4, st) for n in range(4) for st in ("started", "done")]
    assert engine.admin_states() == {"nv-a": "drained"}
    assert engine.jobs_on("nv-a") == []
    assert_placed_once(engine)
    jp = journal.load(out.plan_id)
    assert jp.status == "done" and all(r.state == "done" for r in jp.steps)
    assert jp.plan.reason == "replace a fan on nv-a"
    entries = audit.entries()
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("drain", "started"), ("drain", "done: 4 done")]
    assert entries[0]["targets"] == ["nv-a"] and entries[0]["user"] == "ops"
    assert entries[0]["reason"] == "replace a fan on nv-a"
    assert entries[0]["plan"]["id"] == out.plan_id and len(entries[0]["plan"]["steps"]) == 4
    # re-running the same plan is harmless: every step is already true
    again = ex.run(PLANS["drain"])
    assert again.status == "done" and again.plan_id != out.plan_id
    assert_placed_once(engine)


def test_reason_required_and_refusals_block_the_whole_plan(tmp_path):
    engine, journal, audit, ex = setup(tmp_path)
    with pytest.raises(ValueError, match="reason is required"):
        ex.run(dataclasses.replace(PLANS["drain"], reason=""))
    refused = Step("refuse", "j-4 needs 78 GiB per device; a 910B has 64 GiB", job="j-4")
    plan = dataclasses.replace(PLANS["cross"], steps=(*PLANS["cross"].steps, refused))
    before = drv.snapshot(engine)
    out = ex.run(plan)
    assert out.status == "impossible" and out.exit_code == 1 and out.plan_id is None
    assert [r.n for r in out.refused] == [2] and len(out.pending) == 2
    assert drv.snapshot(engine) == before and journal.recent() == []
    text = "\n".join(out.account())
    assert "refused" in text and "64 GiB" in text and "Nothing was done" in text
    assert audit.entries()[-1]["outcome"] == "impossible: 1 refused, nothing done"


class FlakyEngine(EmbeddedEngine):
    """The scheduler fails once, on the move of j-2."""

    failed = False

    def move(self, job_id, target, pool):
        if job_id == "j-2" and not FlakyEngine.failed:
            FlakyEngine.failed = True
            raise EngineError("move j-2: slurmctld not responding")
        super().move(job_id, target, pool)


def test_engine_fails_halfway_partial_account_then_resume(tmp_path):
    FlakyEngine.failed = False
    engine, journal, audit, ex = setup(tmp_path, FlakyEngine)
    out = ex.run(PLANS["drain"])
    assert out.status == "partial" and out.exit_code == 3
    assert [r.n for r in out.done] == [0, 1]
    assert [(r.n, r.detail) for r in out.failed] == [(2, "move j-2: slurmctld not responding")]
    assert [r.n for r in out.pending] == [3]
    text = "\n".join(out.account())
    assert "FAILED     3/4 move j-2 nv-a[4-5] -> nv-b[4-5]: move j-2: slurmctld" in text
    assert "not done   4/4 move j-3" in text and "Nothing is lost" in text
    assert_placed_once(engine)
    assert engine.job("j-2").placement == (Placement("nv-a", (4, 5)),)
    assert journal.unfinished() == [out.plan_id]
    assert [r.state for r in journal.load(out.plan_id).steps] == [
        "done", "done", "failed", "pending"]
    assert audit.entries()[-1]["outcome"].startswith("partial: 2 done, step 3 failed")

    resumed = ex.resume(out.plan_id)
    assert resumed.status == "done" and journal.unfinished() == []
    assert_placed_once(engine)
    assert engine.admin_states() == {"nv-a": "drained"}
    assert [e["action"] for e in audit.entries()][-2:] == ["resume-plan", "resume-plan"]


def test_rollback_restores_placements_and_admin_state(tmp_path):
    engine, journal, audit, ex = setup(tmp_path)
    engine.cordon("nv-a", "flaky fan")  # rollback must restore cordoned, not active
    initial = drv.snapshot(engine)
    out = ex.run(PLANS["drain"])
    assert out.status == "done"
    back = ex.rollback(out.plan_id, "wrong node")
    assert back.status == "rolled-back" and back.exit_code == 0
    assert [r.n for r in back.done] == [3, 2, 1, 0]
    assert drv.snapshot(engine) == initial
    assert journal.load(out.plan_id).status == "rolled-back"
    assert ex.rollback(out.plan_id).status == "rolled-back"  # again: harmless
    assert drv.snapshot(engine) == initial
    assert audit.entries()[-1]["action"] == "rollback"


def test_rollback_leaves_a_job_whose_old_devices_are_taken_where_it_runs(tmp_path):
    engine, _, _, ex = setup(tmp_path)
    out = ex.run(PLANS["cross"])
    moved = engine.job("j-4").placement
    engine.submit(Job("j-9", "squatter", "bob", "nvidia", 1, 2, 1000, "cuda", state="running",
                      placement=(Placement("nv-c", (4, 5)),)))
    back = ex.rollback(out.plan_id)
    assert back.status == "rolled-back"
    assert {r.step.job: r.detail for r in back.done} == {
        "j-5": "j-5 back on nv-b[6-7] + nv-c[2-3]"}
    assert {r.step.job: r.detail for r in back.skipped} == {
        "j-4": f"j-4: left on {fmt_placement(moved)}: device 4 of nv-c is held by j-9 now"}
    assert engine.job("j-4").placement == moved and engine.job("j-4").state == "running"
    assert "left       " in "\n".join(back.account())


def test_stale_plan_is_not_executed_over_someone_elses_move(tmp_path):
    engine, _, _, ex = setup(tmp_path)
    engine.move("j-3", (Placement("nv-c", (1,)),), "nvidia")  # moved after planning
    out = ex.run(PLANS["drain"])
    # Without the fleet's telemetry there is nothing to re-plan on: the step is refused, the
    # others run.
    assert out.status == "partial" and not out.failed
    assert [(r.n, r.detail) for r in out.conflicts] == [
        (3, "j-3 moved since the plan was made (now on nv-c[1])")]
    assert [r.n for r in out.done] == [0, 1, 2]
    assert engine.job("j-3").placement == (Placement("nv-c", (1,)),)


def test_describe_and_fmt():
    assert fmt_placement((Placement("n1", (0, 1, 2, 3, 6)), Placement("n2", (7,)))) == \
        "n1[0-3,6] + n2[7]"
    assert describe(Step("drain", "x", node="n1")) == "drain n1"
    assert fmt_placement(()) == "nowhere"


# -- SIGKILL at every journal step ----------------------------------------------------------

POINTS = [(name, n, when) for name, plan in PLANS.items()
          for n in range(len(plan.steps)) for when in ("before", "after")]
IDS = [f"{name}-step{n}-{when}" for name, n, when in POINTS]


def drive(root: Path, plan: str, *flags: str, crash: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "FLEETOPS_CRASH_AT"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if crash:
        env["FLEETOPS_CRASH_AT"] = crash
    return subprocess.run([sys.executable, str(DRIVER), str(root), plan, *flags], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[tuple[str, int], dict]:
    """Engine snapshots of uninterrupted runs: (plan, k) -> state after its first k steps."""
    out = {}
    for name, plan in PLANS.items():
        for k in range(len(plan.steps) + 1):
            engine, _, _, ex = setup(tmp_path_factory.mktemp(f"{name}{k}"))
            assert ex.run(dataclasses.replace(plan, steps=plan.steps[:k])).status == "done"
            out[name, k] = drv.snapshot(engine)
    return out


def killed(root: Path, name: str, n: int, when: str, reference) -> tuple[EmbeddedEngine, int]:
    died = drive(root, name, crash=f"{n}:{when}")
    assert died.returncode == -signal.SIGKILL, died.stdout + died.stderr
    engine, journal = EmbeddedEngine(root / "engine.db"), Journal(root / "journal.db")
    [pid] = journal.unfinished()
    assert journal.load(pid).steps[n].state == "started"
    # the journal said "started" before the engine call: the engine is before or after it
    assert drv.snapshot(engine) == reference[name, n + (when == "after")]
    assert_placed_once(engine)
    return engine, pid


@pytest.mark.parametrize(("name", "n", "when"), POINTS, ids=IDS)
def test_killed_then_resumed(tmp_path, reference, name, n, when):
    engine, pid = killed(tmp_path, name, n, when, reference)
    resumed = drive(tmp_path, name, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    jp = Journal(tmp_path / "journal.db").load(pid)
    assert jp.status == "done" and [r.state for r in jp.steps] == ["done"] * len(jp.steps)
    assert drv.snapshot(engine) == reference[name, len(PLANS[name].steps)]
    assert_placed_once(engine)
    assert drive(tmp_path, name, "--resume").returncode == 0  # nothing left: harmless
    assert drv.snapshot(engine) == reference[name, len(PLANS[name].steps)]


@pytest.mark.parametrize(("name", "n", "when"), POINTS, ids=IDS)
def test_killed_then_rolled_back(tmp_path, reference, name, n, when):
    engine, pid = killed(tmp_path, name, n, when, reference)
    back = drive(tmp_path, name, "--rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert drv.snapshot(engine) == reference[name, 0]
    jp = Journal(tmp_path / "journal.db").load(pid)
    assert jp.status == "rolled-back" and all(r.state == "done" for r in jp.undo)
    assert [r.n for r in jp.undo] == list(range(n, -1, -1))
    assert_placed_once(engine)


UNDO = [(n, when) for n in range(len(PLANS["drain"].steps)) for when in ("before", "after")]


@pytest.mark.parametrize(("n", "when"), UNDO, ids=[f"undo{n}-{w}" for n, w in UNDO])
def test_rollback_killed_then_rolled_back_again(tmp_path, reference, n, when):
    last = len(PLANS["drain"].steps) - 1
    engine, _ = killed(tmp_path, "drain", last, "after", reference)
    died = drive(tmp_path, "drain", "--rollback", crash=f"{n}:{when}:undo")
    assert died.returncode == -signal.SIGKILL, died.stdout + died.stderr
    assert_placed_once(engine)
    again = drive(tmp_path, "drain", "--rollback")
    assert again.returncode == 0, again.stdout + again.stderr
    assert drv.snapshot(engine) == reference["drain", 0]
    assert_placed_once(engine)


def test_resuming_a_done_plan_or_rolling_back_twice_says_so_and_audits_nothing(tmp_path):
    engine, _journal, audit, ex = setup(tmp_path)
    out = ex.run(PLANS["drain"])
    entries = len(audit.entries())
    again = ex.resume(out.plan_id)
    assert again.status == "done" and again.summary() == "already done: nothing to do"
    assert len(audit.entries()) == entries
    assert ex.rollback(out.plan_id).status == "rolled-back"
    entries = len(audit.entries())
    twice = ex.rollback(out.plan_id)
    assert twice.summary() == "already rolled-back: nothing to do"
    assert len(audit.entries()) == entries
    assert_placed_once(engine)
