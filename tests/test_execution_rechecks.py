"""Execution re-checks what planning assumed, on the crash driver's fixture fleet with a
static world (telemetry): a target drained or taken after planning, a closed node refused by
the engine in the middle of a step, a job that lands on a draining node, a resume after a
conflict, a fleet that keeps changing, a reopen over someone's drain, guardrails with a plan
in flight. Every case ends with the same invariant: no job placed twice, none lost."""

from __future__ import annotations

import dataclasses

import pytest
from test_journal import PLANS, assert_placed_once, drv

from console.engines.embedded import EmbeddedEngine
from console.model.jobs import NodeView, Placement, Policy, RuntimeMatrix
from console.ops.executor import Executor
from console.ops.session import node_plan
from console.planning.guardrails import Limits
from console.planning.plan import Plan, Step
from console.planning.planner import Planner

MODELS = {"nv-a": "H100", "nv-b": "H100", "nv-c": "H100", "nv-d": "H100", "dm-ppu": "PPU",
          "dm-910b": "910B"}


class StaticWorld:
    """Telemetry that says every node is live and healthy; admin states from the engine."""

    def __init__(self, claimed_admin: dict[str, str] | None = None) -> None:
        # What the telemetry-side planner believes of admin states (a stale view, to make a
        # planner that keeps proposing a closed node); None: the engine's.
        self.claimed_admin = claimed_admin

    def _view(self, name: str, admin: str) -> NodeView:
        pool = "nvidia" if name.startswith("nv") else "domestic"
        return NodeView(name, "hz", "cn-east", pool, MODELS[name], 8, 81920, admin=admin)

    def views(self, admin: dict[str, str]) -> list[NodeView]:
        return [self._view(n, admin.get(n, "active")) for n in MODELS]

    def telemetry(self, name: str) -> NodeView | None:
        return self._view(name, "active") if name in MODELS else None

    def planner(self, engine) -> Planner:
        admin = self.claimed_admin if self.claimed_admin is not None else engine.admin_states()
        return Planner(self.views(admin), engine.jobs(), Policy(), RuntimeMatrix.default())


OFF = Limits(max_out_of_service_share=None, max_nodes_per_window=None)
OURS = ("j-1", "j-2", "j-3")  # what the drain of nv-a moves


def setup(tmp_path, world=None, engine_cls=EmbeddedEngine, **kw):
    kw.setdefault("limits", OFF)  # these cases close most of a small fleet on purpose
    engine = engine_cls(tmp_path / "engine.db")
    engine.submit_many(drv.FIXTURE)
    journal = drv.Journal(tmp_path / "journal.db")
    audit = drv.Audit(tmp_path / "audit.db", actor=drv.ACTOR)
    return engine, journal, audit, Executor(engine, journal, audit,
                                            world=world or StaticWorld(), **kw)


def jobs_on(engine, node: str, only: tuple[str, ...] | None = None) -> list[str]:
    return [j.id for j, _ in engine.jobs_on(node) if only is None or j.id in only]


def test_a_target_drained_after_planning_is_replanned_elsewhere(tmp_path):
    engine, journal, _, ex = setup(tmp_path)
    engine.drain("nv-b", "RMA, do not use")  # another operator, after the plan was made
    out = ex.run(PLANS["drain"])
    assert out.status == "done", out.account()
    assert next((r.n, r.detail) for r in out.replanned) == (1, "nv-b is draining now")
    assert jobs_on(engine, "nv-b", OURS) == [] and jobs_on(engine, "nv-a") == []
    assert engine.admin_states() == {"nv-a": "drained", "nv-b": "draining"}  # j-5 still there
    jp = journal.load(out.plan_id)
    assert jp.steps[1].state == "skipped" and "re-planned as step" in jp.steps[1].detail
    assert len(jp.plan.steps) > len(PLANS["drain"].steps)  # what replaced them is journaled
    assert_placed_once(engine)
    assert "re-planned 2/" in "\n".join(out.account())


def test_a_target_device_taken_after_planning_is_replanned(tmp_path):
    engine, _, _, ex = setup(tmp_path)
    engine.move("j-6", (Placement("nv-b", (0, 1, 2, 3, 4, 5)),), "nvidia")  # takes j-1's room
    out = ex.run(PLANS["drain"])
    assert out.status == "done", out.account()
    assert out.replanned[0].detail == "device 0 of nv-b is held by j-6 now"
    assert jobs_on(engine, "nv-a") == []
    assert_placed_once(engine)


class ClosingEngine(EmbeddedEngine):
    """Another operator drains nv-b between the executor's check and its move: only the
    engine's own check, in the move's transaction, can catch that."""

    def move(self, job_id, target, pool):
        if job_id == "j-1" and self.admin_states().get("nv-b", "active") == "active":
            self.drain("nv-b", "RMA, do not use")
        super().move(job_id, target, pool)


def test_the_engine_refusing_a_closed_target_mid_step_is_a_replan_not_a_failure(tmp_path):
    engine, _, _, ex = setup(tmp_path, engine_cls=ClosingEngine)
    out = ex.run(PLANS["drain"])
    assert out.status == "done" and not out.failed, out.account()
    assert "nv-b is draining (by" in out.replanned[0].detail
    assert jobs_on(engine, "nv-b", OURS) == [] and jobs_on(engine, "nv-a") == []
    assert_placed_once(engine)


class ArrivingExecutor(Executor):
    """Right before the drain step runs, another operator places a new job, j-9, on nv-a."""

    def _checkpoint(self, phase, n, when):
        if (phase, n, when) == ("run", 0, "before"):
            self.engine.submit(dataclasses.replace(drv.FIXTURE[2], id="j-9",
                                                   placement=(Placement("nv-a", (7,)),)))


def test_a_job_that_lands_on_the_node_while_it_drains_is_planned_away(tmp_path):
    engine = EmbeddedEngine(tmp_path / "engine.db")
    engine.submit_many(drv.FIXTURE)
    ex = ArrivingExecutor(engine, drv.Journal(tmp_path / "journal.db"),
                          drv.Audit(tmp_path / "audit.db", actor=drv.ACTOR), world=StaticWorld())
    out = ex.run(PLANS["drain"])
    assert out.status == "done", out.account()
    assert jobs_on(engine, "nv-a") == [] and engine.admin_states()["nv-a"] == "drained"
    arrived = [r for r in out.done if r.step.job == "j-9"]
    assert arrived and "arrived since the plan was made" in arrived[0].step.reason


def test_resume_after_a_conflict_replans_instead_of_looping(tmp_path):
    engine, journal, audit, ex = setup(tmp_path)
    blind = Executor(engine, journal, audit)  # no telemetry: it can only refuse
    engine.drain("nv-b", "RMA")
    out = blind.run(PLANS["drain"])
    assert out.status == "partial" and out.conflicts[0].detail == "nv-b is draining now"
    assert jobs_on(engine, "nv-b", OURS) == []
    again = ex.resume(out.plan_id)  # with telemetry: the rest is planned from the fleet now
    assert again.status == "done", again.account()
    assert jobs_on(engine, "nv-a") == [] and jobs_on(engine, "nv-b", OURS) == []
    assert ex.resume(out.plan_id).already  # and a resume of a done plan does nothing
    assert_placed_once(engine)


def test_a_fleet_that_keeps_changing_stops_the_plan_after_a_few_replans(tmp_path):
    # The telemetry-side view keeps saying nv-b is open while the engine has it drained: every
    # re-plan proposes nv-b again. It stops, partial, instead of chasing it forever.
    engine, _journal, _, ex = setup(tmp_path, world=StaticWorld(claimed_admin={}))
    engine.drain("nv-b", "RMA")
    engine.drain("nv-c", "RMA")
    out = ex.run(PLANS["drain"])
    assert out.status == "partial" and len(out.replanned) >= 1
    assert out.conflicts and all("is draining now" in r.detail for r in out.conflicts)
    assert jobs_on(engine, "nv-b", OURS) == [] and jobs_on(engine, "nv-c", OURS) == []
    assert_placed_once(engine)


def test_reopening_a_node_someone_drained_since_is_refused(tmp_path):
    engine, _, _, ex = setup(tmp_path)
    engine.cordon("nv-d", "flaky fan")
    plan = node_plan("uncordon", ["nv-d"], "fan replaced", engine.admin_states())
    engine.resume("nv-d")
    engine.drain("nv-d", "RMA, do not use")  # meanwhile, someone drains it
    out = ex.run(plan)
    assert out.status == "partial"
    assert out.conflicts[0].detail == ("nv-d was cordoned when planned and is drained now: "
                                       "someone closed it since; not reopened")
    assert engine.admin_states()["nv-d"] == "drained"


def test_guardrails_count_a_plan_in_flight_and_force_is_audited(tmp_path):
    engine, journal, audit, ex = setup(
        tmp_path, limits=Limits(max_out_of_service_share=0.5, max_nodes_per_window=None))
    # Someone's drain of nv-b and nv-c is journaled and not run yet: in flight.
    journal.begin(Plan("drain", ("nv-b", "nv-c"), (Step("drain", "x", node="nv-b"),
                                                  Step("drain", "x", node="nv-c"))), "bob")
    plan = node_plan("cordon", ["nv-d"], "fan", engine.admin_states())
    out = ex.run(plan)
    assert out.status == "refused" and out.exit_code == 2
    assert "2 in other open plans, 1 in this plan" in out.notes[0]
    assert engine.admin_states().get("nv-d", "active") == "active"
    forced = ex.run(plan, force="planned maintenance window")
    assert forced.status == "done" and engine.admin_states()["nv-d"] == "cordoned"
    actions = [(e["action"], e["outcome"].split(":")[0]) for e in audit.entries()]
    assert actions == [("cordon", "refused"), ("override", "guardrails overridden"),
                       ("cordon", "started"), ("cordon", "done")]


def test_dry_run_executes_nothing_and_says_so(tmp_path):
    engine, journal, audit, ex = setup(tmp_path, dry_run=True)
    before = drv.snapshot(engine)
    out = ex.run(PLANS["drain"])
    assert out.status == "dry-run" and out.exit_code == 0 and out.plan_id is None
    assert drv.snapshot(engine) == before and journal.recent() == []
    assert audit.entries()[-1]["outcome"] == "dry-run: 4 step(s) planned, nothing executed"


@pytest.mark.parametrize("verb", ["drift", "fresh"])
def test_a_plan_not_yet_run_says_what_changed(tmp_path, verb):
    engine, _, _, ex = setup(tmp_path)
    engine.drain("nv-b", "RMA")
    if verb == "drift":
        assert ex.drift(PLANS["drain"]) == ["nv-b is draining now", "nv-b is draining now"]
    else:
        fresh = ex.fresh(PLANS["drain"])
        assert fresh is not None
        assert "nv-b" not in {p.node for s in fresh.steps for p in s.target}
