"""The planner: pure, table-driven, built from NodeViews and Jobs directly (no sockets)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from agents import catalog
from agents.collectors.base import CollectorOptions
from agents.collectors.sim import SimCollector
from agents.sampler import Sampler
from console.model.fleet import FleetState
from console.model.inventory import parse_inventory
from console.model.jobs import DcPolicy, Job, NodeView, Placement, Policy, RuntimeMatrix
from console.planning.fleet_views import node_views, policy_from
from console.planning.plan import Plan, Step
from console.planning.planner import Planner

REGION = {"hangzhou": "cn-east", "shanghai": "cn-east", "xining": "cn-northwest",
          "beijing": "cn-north"}
GIB = 1024


def node(name: str, model: str | None = "H100", dc: str = "hangzhou", devices: int = 8,
         **kw) -> NodeView:
    spec = catalog.spec(model or "H100")
    return NodeView(name=name, dc=dc, region=REGION[dc], pool=kw.pop("pool", spec.pool),
                    model=model, devices=devices, mem_per_device_mib=spec.mem_mib, **kw)


def at(name: str, *devices: int) -> Placement:
    return Placement(name, tuple(devices))


def job(jid: str, *placement: Placement, pool: str = "nvidia", devices: int | None = None,
        mem_gib: int = 40, runtime: str = "cuda", **kw) -> Job:
    per_node = devices if devices is not None else len(placement[0].devices) if placement else 1
    return Job(id=jid, name=f"train-{jid}", owner="ana", pool=pool,  # type: ignore[arg-type]
               nodes=kw.pop("nodes", max(1, len(placement))), devices_per_node=per_node,
               mem_per_device_mib=mem_gib * GIB, runtime=runtime, state="running",
               placement=placement, **kw)


def planner(nodes: list[NodeView], jobs: list[Job], policy: Policy | None = None) -> Planner:
    return Planner(nodes, jobs, policy or Policy(), RuntimeMatrix.default())


def job_step(plan: Plan, jid: str) -> Step:
    return next(s for s in plan.steps if s.job == jid)


def busy(name: str, *devices: int, jid: str | None = None, pool: str = "nvidia") -> Job:
    """A job holding `devices` of `name` (to leave less free there)."""
    return job(jid or f"busy-{name}", at(name, *devices), pool=pool, runtime="portable")


ALL8 = tuple(range(8))
NO_H20_IN_XINING = Policy({"xining": DcPolicy("xining", "cn-northwest", frozenset({"PPU"}))})


# -- every refusal reason ------------------------------------------------------------------------

def _drain_hz1(*others: NodeView, policy: Policy | None = None, **job_kw) -> tuple[Plan, Step]:
    """Drain hz-1 holding job 812 (one H100 device, cuda unless given) with `others` around."""
    j = job("812", at("hz-1", 0), **job_kw)
    plan = planner([node("hz-1"), *others], [j], policy).drain(["hz-1"], "xid 79")
    return plan, job_step(plan, "812")


def _move_812(target: list[NodeView], extra_jobs: tuple[Job, ...] = (), **job_kw) -> Step:
    j = job("812", at("hz-1", *ALL8), **job_kw)
    plan = planner([node("hz-1"), *target], [j, *extra_jobs]).move(["812"], "domestic", "h20")
    assert not plan.possible
    return job_step(plan, "812")


REFUSALS: list = [
    pytest.param(lambda: _move_812([node("xn-1", "910B", "xining")], runtime="portable",
                                   mem_gib=80),
                 "job 812 needs 80 GiB per device; 910B has 64 GiB", id="memory"),
    pytest.param(lambda: _move_812([node("xn-1", "910B", "xining")], runtime="cuda"),
                 "job 812 runs cuda, which does not run on 910B", id="runtime"),
    pytest.param(lambda: _move_812([node("xn-1", "PPU", "xining")], runtime="cuda-compatible",
                                   allowed_regions=("cn-east",)),
                 "job 812 may run only in cn-east; no capacity there", id="region"),
    pytest.param(lambda: _drain_hz1(node("xn-1", "H20", "xining"),
                                    policy=NO_H20_IN_XINING)[1].reason,
                 "xining does not allow H20 (policy)", id="policy-allowed-model"),
    pytest.param(lambda: _move_812([node("xn-910b-02", "910B", "xining")], runtime="portable",
                                   extra_jobs=(busy("xn-910b-02", 0, 1, 2, 3, pool="domestic"),)),
                 "no schedulable node of pool domestic has 8 free devices "
                 "(most free: 4 on xn-910b-02)", id="capacity"),
    pytest.param(lambda: _drain_hz1(node("hz-h100-02", admin="cordoned"))[1].reason,
                 "hz-h100-02 is cordoned", id="cordoned"),
    pytest.param(lambda: _drain_hz1(node("hz-h100-03", admin="draining"))[1].reason,
                 "hz-h100-03 is draining", id="draining"),
    pytest.param(lambda: _drain_hz1(node("hz-h100-04", link="stale"))[1].reason,
                 "hz-h100-04 is stale", id="stale"),
    pytest.param(lambda: _drain_hz1(node("hz-h100-05", link="down"))[1].reason,
                 "hz-h100-05 is down", id="down"),
    pytest.param(lambda: _drain_hz1(node("hz-h100-06", link="connecting"))[1].reason,
                 "hz-h100-06 is not live (connecting)", id="connecting"),
    pytest.param(lambda: _drain_hz1(node("hz-h100-07", health="crit",
                                         unhealthy_devices=frozenset({3})))[1].reason,
                 "hz-h100-07 has a critical device", id="unhealthy-crit-device"),
    pytest.param(lambda: _drain_hz1(node("hz-h100-08", model=None))[1].reason,
                 "hz-h100-08 has not reported its devices yet", id="no-hello"),
    pytest.param(lambda: _move_812([], pool="domestic", runtime="portable"),
                 "job 812 is already in pool domestic", id="already-in-pool"),
]


@pytest.mark.parametrize(("make", "sentence"), REFUSALS)
def test_every_refusal_is_explained_in_a_sentence(make: Callable, sentence: str):
    reason = make()
    reason = reason.reason if isinstance(reason, Step) else reason
    assert sentence in reason


@pytest.mark.parametrize(("make", "message"), [
    pytest.param(lambda p: p.drain(["hz-9"], "x"), "unknown node 'hz-9'", id="unknown-node"),
    pytest.param(lambda p: p.move(["999"], "domestic", "x"), "unknown job '999'",
                 id="unknown-job"),
    pytest.param(lambda p: p.move(["812"], "amd", "x"), "unknown pool 'amd'", id="unknown-pool"),
    pytest.param(lambda p: p.evacuate("hangzho", None, "x"), "unknown data center 'hangzho'",
                 id="unknown-dc"),
])
def test_unknown_names_raise_value_error(make: Callable, message: str):
    p = planner([node("hz-1"), node("hz-2")], [job("812", at("hz-1", 0))])
    with pytest.raises(ValueError, match=message):
        make(p)


def test_unknown_node_suggests_close_names():
    with pytest.raises(ValueError, match="did you mean hz-1"):
        planner([node("hz-1")], []).drain(["hz-l"], "x")


def test_the_drained_node_itself_is_never_a_target():
    _plan, step = _drain_hz1()
    assert step.action == "requeue"
    assert "no schedulable node of pool nvidia has 1 free device" in step.reason


def test_a_refusal_names_the_closest_miss_among_many():
    nodes = [node("xn-1", "PPU", "xining"), node("xn-2", "PPU", "xining"),
             node("xn-3", "PPU", "xining")]
    extra = (busy("xn-1", *range(6), pool="domestic"), busy("xn-2", *range(3), pool="domestic"),
             busy("xn-3", *range(7), pool="domestic"))
    step = _move_812(nodes, extra, runtime="cuda-compatible")
    assert "(most free: 5 on xn-2)" in step.reason


def test_requeue_lists_every_deciding_check_for_both_pools():
    plan, step = _drain_hz1(node("xn-1", "910B", "xining"), node("hz-2", admin="cordoned"),
                            mem_gib=70, runtime="cuda")
    assert step.action == "requeue" and plan.possible  # a requeue is a plan, not a refusal
    assert "Pool nvidia:" in step.reason and "Pool domestic:" in step.reason
    assert "hz-2 is cordoned" in step.reason
    assert "job 812 runs cuda, which does not run on 910B" in step.reason


def test_memory_gap_hidden_by_rounding_is_given_in_mib():
    nodes = [node("hz-1"), node("hz-2")]
    plan = planner(nodes, [job("812", at("hz-1", 0), mem_gib=80)]).drain(["hz-1"], "x")
    assert "job 812 needs 81920 MiB per device; H100 has 81559 MiB" in plan.steps[1].reason


# -- where jobs go -------------------------------------------------------------------------------

def test_a_node_with_no_jobs_gives_just_the_drain_step():
    plan = planner([node("hz-1"), node("hz-2")], []).drain(["hz-1"], "xid 79")
    assert plan.steps == (Step("drain", "xid 79", node="hz-1", seen="active"),)
    assert plan.kind == "drain" and plan.targets == ("hz-1",) and plan.possible


def test_drain_steps_come_first_and_jobs_by_priority_then_id():
    jobs = [job("b", at("hz-1", 0)), job("a", at("hz-2", 0)), job("c", at("hz-1", 1), priority=5)]
    plan = planner([node("hz-1"), node("hz-2"), node("hz-3")], jobs).drain(["hz-2", "hz-1"], "x")
    assert [(s.action, s.node or s.job) for s in plan.steps] == [
        ("drain", "hz-1"), ("drain", "hz-2"), ("move", "c"), ("move", "a"), ("move", "b")]


def test_same_pool_is_preferred_over_a_compatible_other_pool():
    _plan, step = _drain_hz1(node("xn-1", "PPU", "xining"), node("bj-1", "A100", "beijing"),
                            runtime="cuda-compatible")
    assert step.action == "move" and step.target == (at("bj-1", 0),)
    assert step.target_pool is None and "in pool nvidia" in step.reason


def test_same_dc_then_same_region_then_elsewhere():
    nodes = [node("hz-1"), node("hz-2"), node("sh-1", dc="shanghai"), node("bj-1", dc="beijing")]
    hz2_full = busy("hz-2", *range(7))  # one free device left on hz-2
    jobs = [job("1", at("hz-1", 0), priority=3), job("2", at("hz-1", 1), priority=2),
            hz2_full]
    plan = planner(nodes, jobs).drain(["hz-1"], "x")
    assert job_step(plan, "1").target == (at("hz-2", 7),)  # same dc, though least free
    assert job_step(plan, "2").target == (at("sh-1", 0),)  # then the same region
    assert "same region" in job_step(plan, "2").reason
    plan = planner([*nodes[:1], nodes[3]], [job("1", at("hz-1", 0))]).drain(["hz-1"], "x")
    assert job_step(plan, "1").target == (at("bj-1", 0),)


def test_within_a_dc_most_free_devices_then_name():
    nodes = [node("hz-1"), node("hz-2"), node("hz-3"), node("hz-4")]
    jobs = [job("1", at("hz-1", 0)), busy("hz-2", 0, 1), busy("hz-3", 0)]
    assert job_step(planner(nodes, jobs).drain(["hz-1"], "x"), "1").target == (at("hz-4", 0),)
    jobs.append(busy("hz-4", 0))
    assert job_step(planner(nodes, jobs).drain(["hz-1"], "x"), "1").target == (at("hz-3", 1),)


def test_other_pool_when_the_runtime_is_compatible():
    _plan, step = _drain_hz1(node("xn-ppu-1", "PPU", "xining"), node("xn-910b-1", "910B", "xining"),
                            runtime="cuda-compatible")
    assert step.action == "move" and step.target_pool == "domestic"
    assert step.target == (at("xn-ppu-1", 0),)
    assert "changes pool nvidia -> domestic" in step.reason
    assert "runtime cuda-compatible runs on PPU" in step.reason


def test_requeue_when_nothing_fits():
    _plan, step = _drain_hz1(node("xn-1", "PPU", "xining"), runtime="cuda")
    assert step.action == "requeue" and step.target == () and step.source == (at("hz-1", 0),)


def test_no_two_jobs_get_the_same_devices_in_one_plan():
    nodes = [node("hz-1"), node("hz-2"), node("hz-3")]
    jobs = [job("a", at("hz-1", 0, 1, 2, 3)), job("b", at("hz-1", 4, 5, 6, 7)),
            busy("hz-2", 0, 1, 2), busy("hz-3", 0, 1)]
    plan = planner(nodes, jobs).drain(["hz-1"], "x")
    a, b = job_step(plan, "a"), job_step(plan, "b")
    assert a.target == (at("hz-3", 2, 3, 4, 5),) and b.target == (at("hz-2", 3, 4, 5, 6),)
    # One gap of 4 devices left: the higher priority job gets it, the other is requeued.
    jobs = [job("a", at("hz-1", 0, 1, 2, 3)), job("b", at("hz-1", 4, 5, 6, 7), priority=1),
            busy("hz-2", *range(8)), busy("hz-3", 0, 1, 2, 3)]
    plan = planner(nodes, jobs).drain(["hz-1"], "x")
    assert job_step(plan, "b").target == (at("hz-3", 4, 5, 6, 7),)
    assert job_step(plan, "a").action == "requeue"
    assert "(most free: 0" not in job_step(plan, "a").reason


def test_capacity_is_restored_after_each_plan():
    nodes = [node("hz-1"), node("hz-2", devices=1)]
    p = planner(nodes, [job("a", at("hz-1", 0))])
    first = p.drain(["hz-1"], "x")
    assert first == p.drain(["hz-1"], "x") and job_step(first, "a").target == (at("hz-2", 0),)


def test_unhealthy_devices_are_not_free():
    nodes = [node("hz-1"), node("hz-2", devices=2, unhealthy_devices=frozenset({0}))]
    plan = planner(nodes, [job("a", at("hz-1", 0))]).drain(["hz-1"], "x")
    assert job_step(plan, "a").target == (at("hz-2", 1),)


def test_multi_node_job_keeps_its_other_nodes_and_never_doubles_one():
    nodes = [node("hz-1"), node("hz-2"), node("hz-3"), node("hz-4", link="stale")]
    j = job("m", at("hz-1", 0, 1, 2, 3), at("hz-2", 0, 1, 2, 3), nodes=2)
    plan = planner(nodes, [j]).drain(["hz-1"], "x")
    # hz-2 has 4 free devices but already holds a part of the job: the part goes to hz-3.
    assert job_step(plan, "m").target == (at("hz-2", 0, 1, 2, 3), at("hz-3", 0, 1, 2, 3))
    # A part on a node that is not schedulable any more moves too.
    j = job("m", at("hz-1", 0, 1, 2, 3), at("hz-4", 0, 1, 2, 3), nodes=2)
    plan = planner(nodes, [j]).drain(["hz-1"], "x")
    assert job_step(plan, "m").target == (at("hz-2", 0, 1, 2, 3), at("hz-3", 0, 1, 2, 3))


def test_the_parts_of_a_job_run_on_one_model():
    nodes = [node("hz-1"), node("hz-2"), node("hz-3"), node("hz-a100-1", "A100")]
    j = job("m", at("hz-1", 0, 1, 2, 3), at("hz-2", 0, 1, 2, 3))
    jobs = [j, busy("hz-3", *ALL8)]
    # No other H100 has room for the leaving part, and the whole job needs two A100 nodes.
    step = job_step(planner(nodes, jobs).drain(["hz-1"], "x"), "m")
    assert step.action == "requeue"
    assert ("job m needs 2 nodes of one model with 4 free devices; pool nvidia has A100: 1, "
            "H100: 1") in step.reason
    nodes.append(node("hz-a100-2", "A100"))
    step = job_step(planner(nodes, jobs).drain(["hz-1"], "x"), "m")
    assert step.target == (at("hz-a100-1", 0, 1, 2, 3), at("hz-a100-2", 0, 1, 2, 3))


def test_models_are_tried_in_the_order_of_their_best_node():
    nodes = [node("hz-1"), node("hz-2"), node("xn-a", "PPU", "xining"),
             node("xn-b", "910B", "xining"), node("xn-c", "910B", "xining")]
    j = job("m", at("hz-1", *ALL8), at("hz-2", *ALL8), runtime="portable", mem_gib=32)
    step = job_step(planner(nodes, [j]).move(["m"], "domestic", "x"), "m")
    assert step.target == (at("xn-b", *ALL8), at("xn-c", *ALL8))


def test_multi_node_job_moves_whole_to_the_other_pool():
    nodes = [node("hz-1"), node("hz-2"), node("xn-1", "PPU", "xining"),
             node("xn-2", "PPU", "xining")]
    j = job("m", at("hz-1", *ALL8), at("hz-2", *ALL8), runtime="cuda-compatible")
    plan = planner(nodes, [j]).drain(["hz-1"], "x")
    step = job_step(plan, "m")
    assert step.target_pool == "domestic"
    assert step.target == (at("xn-1", *ALL8), at("xn-2", *ALL8))


def test_move_takes_whole_jobs_to_the_pool():
    nodes = [node("hz-1"), node("hz-2"), node("xn-1", "PPU", "xining"),
             node("xn-2", "PPU", "xining"), node("xn-3", "910B", "xining")]
    jobs = [job("m", at("hz-1", 0, 1), at("hz-2", 0, 1), runtime="cuda-compatible"),
            job("c", at("hz-1", 2), runtime="cuda")]
    plan = planner(nodes, jobs).move(["c", "m"], "domestic", "h20 supply frozen")
    m, c = job_step(plan, "m"), job_step(plan, "c")
    assert m.action == "move" and m.target_pool == "domestic"
    assert m.target == (at("xn-1", 0, 1), at("xn-2", 0, 1))
    assert c.action == "refuse" and not plan.possible
    assert plan.targets == ("c", "m") and plan.reason == "h20 supply frozen"


# -- evacuation ----------------------------------------------------------------------------------

def test_evacuate_a_dc_cordons_first_and_moves_jobs_out():
    nodes = [node("hz-1"), node("hz-2", admin="draining"), node("hz-3"),
             node("hz-ppu", "PPU"), node("sh-1", dc="shanghai"),
             node("xn-1", "PPU", "xining")]
    jobs = [job("a", at("hz-1", 0, 1), priority=2),
            job("b", at("hz-3", *ALL8), runtime="cuda-compatible", priority=1),
            job("c", at("hz-3", 0), allowed_regions=("cn-north",))]
    plan = planner(nodes, jobs).evacuate("hangzhou", "nvidia", "power work")
    assert [s.node for s in plan.steps if s.action == "cordon"] == ["hz-1", "hz-3"]
    assert plan.steps[0].action == "cordon" and plan.targets == ("hangzhou", "nvidia")
    assert job_step(plan, "a").target == (at("sh-1", 0, 1),)
    b = job_step(plan, "b")  # sh-1 has 6 left: other pool, out of the dc (not hz-ppu)
    assert b.target == (at("xn-1", *ALL8),) and b.target_pool == "domestic"
    c = job_step(plan, "c")
    assert c.action == "requeue" and "may run only in cn-north" in c.reason


def test_evacuate_whole_dc_without_pool():
    nodes = [node("hz-1"), node("hz-ppu", "PPU"), node("xn-1", "PPU", "xining")]
    jobs = [job("d", at("hz-ppu", 0), pool="domestic", runtime="portable")]
    plan = planner(nodes, jobs).evacuate("hangzhou", None, "x")
    assert [s.node for s in plan.steps if s.action == "cordon"] == ["hz-1", "hz-ppu"]
    assert job_step(plan, "d").target == (at("xn-1", 0),)


# -- domestic share ------------------------------------------------------------------------------

def test_a_note_when_a_dc_moves_away_from_its_domestic_target():
    policy = Policy({"xining": DcPolicy("xining", "cn-northwest", None, 0.95)})
    nodes = [node("xn-ppu", "PPU", "xining"), node("xn-h20", "H20", "xining"),
             node("hz-1")]
    jobs = [job("d", at("xn-ppu", 0, 1, 2, 3), pool="domestic", runtime="cuda-compatible"),
            job("n", at("xn-h20", 0), runtime="cuda-compatible")]
    plan = planner(nodes, jobs, policy).move(["d"], "nvidia", "x")
    assert plan.possible and plan.notes == (
        "xining: domestic share of devices in use would go from 80% to 0% (target 95%)",)
    # Toward the target: no note (and a note never blocks).
    plan = planner(nodes, jobs, policy).move(["n"], "domestic", "x")
    assert plan.possible and plan.notes == ()


# -- determinism ---------------------------------------------------------------------------------

def _random_fleet(seed: int) -> tuple[list[NodeView], list[Job]]:
    rng = random.Random(seed)
    models = ["H100", "H20", "A100", "PPU", "910B", "MLU590"]
    dcs = list(REGION)
    nodes = [node(f"n{i:03d}", rng.choice(models), rng.choice(dcs),
                  admin=rng.choice(["active"] * 8 + ["cordoned", "draining"]),
                  link=rng.choice(["live"] * 9 + ["stale"])) for i in range(60)]
    jobs, free = [], {n.name: list(ALL8) for n in nodes}
    for i in range(150):
        n = rng.choice(nodes)
        k = rng.randint(1, 3)
        if len(free[n.name]) < k:
            continue
        devs, free[n.name] = free[n.name][:k], free[n.name][k:]
        runtime = rng.choice(["cuda", "cuda-compatible", "portable", "cann"])
        jobs.append(job(f"j{i:03d}", at(n.name, *devs), pool=n.pool, runtime=runtime,
                        mem_gib=rng.choice([16, 40, 70]), priority=rng.randint(0, 3)))
    return nodes, jobs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plans_are_deterministic_whatever_the_input_order(seed: int):
    nodes, jobs = _random_fleet(seed)
    draining = [n.name for n in nodes[:5]]
    ids = [j.id for j in jobs[:20]]

    def plans(ns: list[NodeView], js: list[Job]) -> list[Plan]:
        p = planner(ns, js)
        return [p.drain(draining, "x"), p.move(ids, "domestic", "x"),
                p.evacuate("hangzhou", None, "x")]

    first = plans(nodes, jobs)
    assert first == plans(nodes, jobs)
    rng = random.Random(seed)
    for _ in range(3):
        ns, js = nodes[:], jobs[:]
        rng.shuffle(ns)
        rng.shuffle(js)
        assert plans(ns, js) == first
    # Whatever it planned: no device given twice, and no target among the drained nodes.
    drain = first[0]
    seen = set()
    for s in drain.steps:
        for p in s.target:
            if s.action == "move" and p not in s.source:
                assert p.node not in draining
                for d in p.devices:
                    assert (p.node, d) not in seen
                    seen.add((p.node, d))


# -- from the live fleet -------------------------------------------------------------------------

INVENTORY = """
[[dc]]
name = "hangzhou"
region = "cn-east"
country = "CN"
[[dc.node]]
name = "hz-1"
host = "127.0.0.2"
pool = "nvidia"
[[dc.node]]
name = "hz-2"
host = "127.0.0.3"
pool = "nvidia"

[[dc]]
name = "xining"
region = "cn-northwest"
country = "CN"
domestic_target = 0.72
allowed_models = ["ppu", "910B"]
[[dc.node]]
name = "xn-1"
host = "127.0.0.4"
pool = "domestic"
[[dc.node]]
name = "xn-2"
host = "127.0.0.5"
pool = "domestic"
"""


def _feed(state: FleetState, name: str, model: str, ticks: int, faults: list[str]) -> None:
    t = [1000.0]
    opts = CollectorOptions(sim_model=model, sim_devices=4, sim_faults=faults)
    s = Sampler(SimCollector(opts), node=name, clock=lambda: t[0])
    state.apply(name, s.hello(), t[0])
    for _ in range(ticks):
        for frame in s.tick():
            state.apply(name, frame, t[0])
        t[0] += 1.0


def test_node_views_from_a_fleet_fed_by_sim_frames():
    inv = parse_inventory(INVENTORY)
    state = FleetState(inv)
    _feed(state, "hz-1", "H100", 3, [])
    _feed(state, "hz-2", "H100", 8, ["xid79:2:2"])  # device 2 falls off the bus: crit
    _feed(state, "xn-1", "PPU", 3, [])  # xn-2 never says hello
    views = {v.name: v for v in node_views(state, inv, {"hz-1": "cordoned"})}
    hz1, hz2, xn1, xn2 = views["hz-1"], views["hz-2"], views["xn-1"], views["xn-2"]
    assert (hz1.model, hz1.devices, hz1.mem_per_device_mib) == ("H100", 4, 81559)
    assert hz1.admin == "cordoned" and hz1.link == "live" and hz1.region == "cn-east"
    assert hz2.unhealthy_devices == frozenset({2}) and hz2.health == "crit"
    assert not hz2.schedulable and hz2.admin == "active"
    assert (xn1.model, xn1.pool, xn1.region) == ("PPU", "domestic", "cn-northwest")
    assert xn2.model is None and xn2.link == "connecting" and xn2.devices == 0
    policy = policy_from(inv)
    assert policy.dcs["xining"].allowed_models == frozenset({"PPU", "910B"})
    assert policy.dcs["xining"].domestic_target == 0.72 and policy.allows("hangzhou", "H20")

    j = job("812", at("hz-1", 0, 1), runtime="cuda-compatible")
    plan = Planner(list(views.values()), [j], policy, RuntimeMatrix.default()).drain(
        ["hz-1"], "xid 79")
    step = job_step(plan, "812")
    assert step.target == (at("xn-1", 0, 1),) and step.target_pool == "domestic"
    assert "hz-2 has a critical device" in step.reason
    with pytest.raises(ValueError, match="unknown admin state"):
        node_views(state, inv, {"hz-1": "paused"})
