"""The guardrails as a table: shares of a pool's and a data center's devices out of service,
nodes out per window, what counts (already out, other open plans, this plan), what never
trips (a plan that closes nothing, a single node)."""

from __future__ import annotations

import pytest

from console.model.jobs import NodeView
from console.planning.guardrails import Limits, refusals
from console.planning.plan import Plan, Step


def node(name: str, dc: str, pool: str, admin: str = "active", devices: int = 8) -> NodeView:
    return NodeView(name, dc, "r", pool, "H100" if pool == "nvidia" else "910B", devices,
                    65536, admin=admin)


FLEET = [node("a1", "a", "nvidia"), node("a2", "a", "nvidia"), node("a3", "a", "nvidia"),
         node("a4", "a", "domestic"), node("b1", "b", "nvidia"), node("b2", "b", "nvidia"),
         node("b3", "b", "domestic"), node("b4", "b", "domestic")]


def drain(*nodes: str) -> Plan:
    return Plan("drain", nodes, tuple(Step("drain", "x", node=n) for n in nodes), "x")


def with_admin(**states: str) -> list[NodeView]:
    return [node(v.name, v.dc, v.pool, states.get(v.name, "active")) for v in FLEET]


SHARE = Limits(max_out_of_service_share=0.5, max_nodes_per_window=None)


@pytest.mark.parametrize(("plan", "fleet", "in_flight", "expected"), [
    pytest.param(drain("a1"), FLEET, {}, [], id="one-node-is-never-a-share"),
    pytest.param(drain("a1", "a2"), FLEET, {}, [], id="half-of-dc-a-is-the-limit-not-over"),
    pytest.param(drain("a1", "a2", "a3"), FLEET, {},
                 ["of data center a's devices out of service (24 of 32; nodes: 3 in this plan)"],
                 id="three-quarters-of-dc-a"),
    pytest.param(drain("a1", "a2"), with_admin(b1="drained"), {},
                 ["of pool nvidia's devices"], id="pool-share-counts-what-is-already-out"),
    pytest.param(drain("a1", "a2"), FLEET, {"a3": 7},
                 ["1 in other open plans"], id="plans-in-flight-count"),
    pytest.param(drain("a3"), with_admin(a1="cordoned", a2="draining"), {},
                 ["2 already out, 1 in this plan"], id="already-out-plus-this-one"),
    pytest.param(drain("a1", "a2", "a3"), with_admin(a1="drained", a2="drained", a3="drained"),
                 {}, [], id="closing-what-is-closed-changes-nothing"),
    pytest.param(Plan("resume", ("a1",), (Step("resume", "x", node="a1"),)),
                 with_admin(a1="drained", a2="drained", a3="drained"), {}, [],
                 id="reopening-never-trips"),
])
def test_share_limit(plan, fleet, in_flight, expected):
    said = refusals(plan, fleet, in_flight, {}, SHARE)
    for fragment in expected:
        assert any(fragment in s for s in said), (fragment, said)
    if not expected:
        assert said == []


def test_share_names_the_limit_and_its_setting():
    pool, dc = refusals(drain("a1", "a2", "a3"), FLEET, {}, {}, SHARE)
    assert pool.startswith("guardrail: drain a1, a2, a3 would take 60% of pool nvidia's")
    said = dc
    assert said.startswith("guardrail: drain a1, a2, a3 would take 75% of data center a's")
    assert said.endswith("the limit is 50% ([policy] max_out_of_service_share)")


RATE = Limits(max_out_of_service_share=None, max_nodes_per_window=3, window_s=600)


@pytest.mark.parametrize(("plan", "recent", "trips"), [
    pytest.param(drain("a1"), {"b1": 1.0, "b2": 2.0}, False, id="third-in-window-ok"),
    pytest.param(drain("a1", "a2"), {"b1": 1.0, "b2": 2.0}, True, id="fourth-trips"),
    pytest.param(drain("b1"), {"b1": 1.0, "b2": 2.0, "b3": 3.0}, False,
                 id="a-node-counted-once"),
])
def test_nodes_per_window(plan, recent, trips):
    fleet = with_admin()
    said = refusals(plan, fleet, {}, recent, RATE)
    assert bool(said) == trips, said
    if trips:
        assert "would make 4 nodes taken out of service within 10 min (2 already, 2 in this " \
               "plan); the limit is 3" in said[0]


def test_limits_switched_off():
    off = Limits(max_out_of_service_share=None, max_nodes_per_window=None)
    assert refusals(drain(*(v.name for v in FLEET)), FLEET, {}, {}, off) == []
