"""FleetState: pure, tested without sockets."""

from __future__ import annotations

import pytest

from agents.collectors.base import CollectorOptions
from agents.collectors.sim import SimCollector
from agents.sampler import Sampler
from agents.wire import DeviceSample, Event, Hello, Report
from console.model.fleet import FleetState
from console.model.history import NodeHistory
from console.model.inventory import parse_inventory

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
pool = "domestic"

[[dc]]
name = "xining"
region = "cn-northwest"
country = "CN"
domestic_target = 0.72
[[dc.node]]
name = "xn-1"
host = "127.0.0.4"
pool = "domestic"
"""


def fleet() -> FleetState:
    return FleetState(parse_inventory(INVENTORY))


def sampler(node: str, model: str = "H100", devices: int = 2, **kw) -> Sampler:
    t = [1000.0]
    c = SimCollector(CollectorOptions(sim_model=model, sim_devices=devices, **kw))
    s = Sampler(c, node=node, clock=lambda: t[0])
    s.t = t  # type: ignore[attr-defined]
    return s


def feed(state: FleetState, name: str, s: Sampler, ticks: int, now: float = 1000.0) -> float:
    state.apply(name, s.hello(), now)
    for _ in range(ticks):
        for f in s.tick():
            state.apply(name, f, now)
        now += 1.0
        s.t[0] += 1.0  # type: ignore[attr-defined]
    return now


def test_inventory_builds_dcs_pools_and_connecting_nodes():
    st = fleet()
    assert set(st.nodes) == {"hz-1", "hz-2", "xn-1"}
    assert st.totals("hangzhou").nodes["connecting"] == 2
    assert st.dc_meta["xining"]["domestic_target"] == 0.72


def test_report_goes_live_and_updates_totals():
    st = fleet()
    feed(st, "hz-1", sampler("hz-1"), 3)
    node = st.nodes["hz-1"]
    assert node.link == "live" and len(node.samples) == 2
    t = st.totals("hangzhou", "nvidia")
    assert t.devices == 2 and t.nodes["live"] == 1 and t.models["H100"] == 2
    assert t.power_w == pytest.approx(sum(d.power_w for d in node.samples))
    assert st.totals().devices == 2


def test_totals_move_by_difference_not_accumulate():
    st = fleet()
    feed(st, "hz-1", sampler("hz-1", devices=4), 50)
    t = st.totals("hangzhou", "nvidia")
    assert t.devices == 4 and t.ok + t.warn + t.crit == 4


def test_domestic_share_per_dc():
    st = fleet()
    feed(st, "hz-1", sampler("hz-1", devices=6), 1)
    feed(st, "hz-2", sampler("hz-2", model="910B", devices=2), 1)
    assert st.domestic_share("hangzhou") == pytest.approx(0.25)
    assert st.domestic_share("xining") is None  # nothing reported yet


def test_seq_going_backwards_is_counted_and_ignored():
    st = fleet()
    s = sampler("hz-1")
    feed(st, "hz-1", s, 2)
    frames = s.tick()
    report = frames[-1]
    st.apply("hz-1", report, 2000)
    old = Report(1, "hz-1", 1, 1.0, devices=[])
    st.apply("hz-1", old, 2001)
    assert st.nodes["hz-1"].rejects["seq"] == 1
    assert len(st.nodes["hz-1"].samples) == 2


def test_a_new_hello_starts_a_new_sequence():
    st = fleet()
    feed(st, "hz-1", sampler("hz-1"), 5)
    feed(st, "hz-1", sampler("hz-1"), 1)  # reconnected agent, seq from 1 again
    assert st.nodes["hz-1"].rejects["seq"] == 0


def test_frames_are_attributed_to_the_connection_not_the_claimed_name():
    st = fleet()
    feed(st, "hz-2", sampler("impostor-claims-hz-1", model="910B"), 1)
    assert st.nodes["hz-2"].reported_name == "impostor-claims-hz-1"
    assert st.nodes["hz-1"].link == "connecting"


def test_events_reach_the_fleet_log_and_the_node():
    st = fleet()
    feed(st, "hz-1", sampler("hz-1", sim_faults=["xid79:0:0"]), 2)
    kinds = [e.event for _, e in st.events]
    assert "xid" in kinds and "device-lost" in kinds
    assert st.nodes["hz-1"].health == "crit"
    assert st.totals("hangzhou").crit == 1


def test_changes_name_only_what_changed():
    st = fleet()
    st.take_changes()
    feed(st, "xn-1", sampler("xn-1", model="PPU"), 1)
    ch = st.take_changes()
    assert ch.nodes == {"xn-1"} and ch.dcs == {"xining"}
    assert st.take_changes().nodes == set()


def test_stale_after_three_silent_intervals_then_live_again():
    st = fleet()
    s = sampler("hz-1")
    now = feed(st, "hz-1", s, 1) - 1.0  # when the last frame arrived
    assert st.mark_stale(now + 2.5) == []
    assert st.mark_stale(now + 3.5) == ["hz-1"]
    assert st.nodes["hz-1"].link == "stale" and "no frame" in st.nodes["hz-1"].error
    assert st.totals("hangzhou").nodes["stale"] == 1
    for f in s.tick():
        st.apply("hz-1", f, now + 4)
    assert st.nodes["hz-1"].link == "live" and st.nodes["hz-1"].error is None


def test_link_states_and_errors():
    st = fleet()
    st.set_link("hz-1", "auth-failed", "permission denied (publickey)")
    n = st.nodes["hz-1"]
    assert (n.link, n.error) == ("auth-failed", "permission denied (publickey)")
    assert st.totals("hangzhou").nodes["auth-failed"] == 1
    assert st.totals("hangzhou").nodes["connecting"] == 1


def test_rejects_are_counted_per_node():
    st = fleet()
    st.reject("hz-1", "invalid-json")
    st.reject("hz-1", "invalid-json")
    assert st.nodes["hz-1"].rejects == {"invalid-json": 2}


def _sample(**kw) -> DeviceSample:
    return DeviceSample(uuid="u", index=0, vendor="nvidia", model="H100", pool="nvidia", **kw)


def test_history_ring_quantises_and_wraps():
    h = NodeHistory(devices=1, capacity=3)
    for i in range(5):
        h.append(float(i), [_sample(util_pct=10.0 * i, mem_used_mib=40.0, mem_total_mib=80.0,
                                    temp_c=50.4 + i, power_w=None, power_limit_w=700.0)])
    assert h.series(0, "util") == [20.0, 30.0, 40.0]
    assert h.series(0, "mem") == [50.0, 50.0, 50.0]
    assert h.series(0, "temp") == [52.0, 53.0, 54.0]
    assert h.series(0, "power") == [None, None, None]
    assert h.timestamps() == [2.0, 3.0, 4.0]


def test_history_costs_well_under_16_bytes_per_device_sample():
    h = NodeHistory(devices=8, capacity=300)
    assert h.nbytes / (8 * 300) <= 16


def test_unknown_event_order_hello_missing_still_applies_reports():
    st = fleet()
    st.apply("hz-1", Report(1, "x", 1, 1.0, devices=[_sample(util_pct=5.0)]), 10.0)
    assert st.nodes["hz-1"].link == "live" and st.nodes["hz-1"].samples[0].util_pct == 5.0
    st.apply("hz-1", Event(1, "x", 2, 1.0, event="health", severity="warn", message="m"), 11.0)
    assert len(st.events) == 1


def test_hello_replaces_model_counts():
    st = fleet()
    hello = sampler("hz-1", devices=3).hello()
    st.apply("hz-1", hello, 1.0)
    st.apply("hz-1", Hello(1, "hz-1", 1, 2.0, agent_version="1", hostname="h",
                           collectors=["sim"], interval_s=1.0, devices=hello.devices[:1]), 2.0)
    assert st.totals("hangzhou").models == {"H100": 1}


def test_changes_carry_events_with_their_node():
    st = fleet()
    st.take_changes()
    feed(st, "hz-1", sampler("hz-1", sim_faults=["xid79:0:0"]), 1)
    events = st.take_changes().events
    assert events and all(name == "hz-1" for name, _ in events)


def test_admin_states_are_counted_per_pool():
    st = fleet()
    st.set_admin("hz-1", "cordoned")
    st.set_admin("hz-1", "draining")
    t = st.totals("hangzhou")
    assert t.admin["draining"] == 1 and t.admin["active"] == 1 and t.admin["cordoned"] == 0


def test_a_tiny_total_from_a_hostile_node_cannot_overflow_the_history():
    st = fleet()
    report = Report(1, "x", 1, 1.0, devices=(_sample(
        mem_used_mib=1e6, mem_total_mib=1e-310, power_w=500.0, power_limit_w=1e-310),))
    st.apply("hz-1", report, 10.0)
    assert st.nodes["hz-1"].history.series(0, "mem") == [127.0]
    assert st.nodes["hz-1"].history.series(0, "power") == [127.0]
