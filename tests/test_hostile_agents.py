"""Hostile node agents behind real OpenSSH, beside honest ones; and hostile bytes without SSH.

A node's `command` can be any program. tests/hostile_agents.py plays one misbehaving agent per
node (oversize lines, invalid JSON, wrong shapes, other protocol versions, NaN and out-of-range
numbers, 10,000 devices, duplicate and backwards seq, clock skew, floods, silence after hello,
binary garbage, terminal escapes). For each, the read command still finishes in bounded time,
the node shows why it is unhealthy (its state, error and `rejects` counters), and the honest
nodes are untouched. The property tests at the end feed arbitrary byte streams straight into
the console's Intake.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import hostile_agents
import pytest
import sshd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sshd import SshdFleet

from agents.wire import (
    MAX_LINE_BYTES,
    DeviceInfo,
    DeviceSample,
    Event,
    Hello,
    Report,
    encode_frame,
)
from console.cli.views import events_json, nodes_json
from console.model.fleet import EVENT_BURST, FleetState
from console.model.inventory import load_inventory
from console.telemetry.intake import BURST_S, MIN_LINES_PER_S, Intake
from console.telemetry.ssh import FanIn

FLEETOPS = str(Path(sys.executable).parent / "fleetops")
HONEST = ("honest-1", "honest-2")
# One node per hostile mode; two clock-skew nodes (-1 a year behind, -2 a year ahead).
HOSTILE = ("oversize", "truncated", "invalid-json", "wrong-shape", "future-version", "nan",
           "negative", "huge", "devices-10000", "seq-dup", "seq-backwards", "clock-skew-1",
           "clock-skew-2", "flood", "silent-after-hello", "binary", "escapes")
NAMES = (*HONEST, *HOSTILE)
READ_TIMEOUT_S = 8
LIVENESS_LIMIT_S = 60  # the read command must come back well before this: liveness, not perf

# What each hostile node must show after `nodes --json`: its state, the rejects it must have
# counted (at least), and for protocol errors the reason the error starts with.
NEVER_ANSWER = ("truncated", "invalid-json", "wrong-shape", "future-version", "nan", "negative",
                "huge", "binary", "silent-after-hello")
EXPECT: dict[str, tuple[str | tuple[str, ...], dict[str, int], str | None]] = {
    "oversize": ("live", {"too-long": 1}, None),
    "truncated": ("protocol-error", {"invalid-json": 5}, "invalid-json"),
    "invalid-json": ("protocol-error", {"invalid-json": 5}, None),
    "wrong-shape": ("protocol-error", {"schema": 5}, "schema"),
    "future-version": ("protocol-error", {"version": 1}, "version: unsupported protocol version 2"),
    "nan": ("protocol-error", {"invalid-json": 5}, None),
    "negative": ("protocol-error", {"schema": 5}, None),
    "huge": ("protocol-error", {"schema": 5}, "schema"),
    "devices-10000": ("live", {"schema": 1}, None),
    "seq-dup": ("live", {"seq": 1}, None),
    # Its frames after the first report are all rejected: nothing fresh, so it goes stale, and
    # after 10 intervals the console drops the session (then it is down).
    "seq-backwards": (("stale", "down"), {"seq": 1}, None),
    "clock-skew-1": ("live", {}, None),
    "clock-skew-2": ("live", {}, None),
    "flood": ("live", {"flood": 1}, None),
    # Stale after 3 silent intervals; after 10 the console drops the session (then down).
    "silent-after-hello": (("stale", "down"), {}, None),
    "binary": ("protocol-error", {"invalid-json": 1}, "invalid-json"),
    "escapes": ("live", {}, None),
}
assert set(EXPECT) == set(HOSTILE)
assert {hostile_agents.mode_of(n) for n in NAMES} == set(hostile_agents.MODES)


@pytest.fixture(scope="module")
def hostile_fleet(tmp_path_factory):
    """(SshdFleet, inventory path) with every hostile mode and two honest nodes (2 sshds)."""
    sshd.require_sshd()
    root = tmp_path_factory.mktemp("hostile")
    fleet = SshdFleet(root / "sshd", len(NAMES)).start()
    try:
        yield fleet, hostile_agents.write_inventory(fleet, root / "inventory.toml", NAMES)
    finally:
        fleet.stop()


# -- the read command against the hostile fleet -------------------------------------------------


@pytest.fixture(scope="module")
def nodes_json_run(hostile_fleet):
    _, inv = hostile_fleet
    started = time.monotonic()
    r = subprocess.run([FLEETOPS, "--inventory", str(inv), "nodes", "--json", "--timeout",
                        str(READ_TIMEOUT_S)], capture_output=True, text=True,
                       timeout=LIVENESS_LIMIT_S)
    return r, time.monotonic() - started


@pytest.mark.sshd
def test_read_command_finishes_in_bounded_time_with_exit_3(nodes_json_run):
    r, took = nodes_json_run
    assert took < LIVENESS_LIMIT_S
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    # The nodes that never sent a valid report are named; the others answered.
    missing = r.stderr.split("did not answer: ", 1)[1].strip().split(", ")
    assert sorted(missing) == sorted(NEVER_ANSWER)
    assert f"{len(NEVER_ANSWER)} of {len(NAMES)} node(s)" in r.stderr


@pytest.mark.sshd
def test_honest_nodes_are_live_and_untouched(nodes_json_run):
    r, _ = nodes_json_run
    nodes = {n["name"]: n for n in json.loads(r.stdout)}
    assert list(nodes) == list(NAMES)
    for name in HONEST:
        n = nodes[name]
        assert n["state"] == "live" and n["error"] is None, n
        assert n["rejects"] == {}, n  # nothing a hostile node sent is counted here
        assert n["agent"]["node"] == name
        assert len(n["devices"]) == 2
        assert len({d["uuid"] for d in n["devices"]}) == 2
    assert {d["model"] for d in nodes["honest-2"]["devices"]} == {"910B"}


@pytest.mark.sshd
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_node_shows_why(nodes_json_run, name):
    r, _ = nodes_json_run
    node = next(n for n in json.loads(r.stdout) if n["name"] == name)
    state, rejects, reason = EXPECT[name]
    assert node["state"] in ((state,) if isinstance(state, str) else state), node
    for key, at_least in rejects.items():
        assert node["rejects"].get(key, 0) >= at_least, node["rejects"]
    if state == "protocol-error":
        assert node["error"], node
        if reason:
            assert node["error"].startswith(reason), node["error"]
    if state == "stale":
        assert node["error"].startswith(("no report within", "no frame for")), node["error"]
    if name not in NEVER_ANSWER:
        # A node that answered holds only what its valid frames said: 2 devices, never 10,000.
        assert len(node["devices"]) == 2, node["devices"][:3]
    else:
        assert node["devices"] == []
    assert set(node["rejects"]) <= {"too-long", "invalid-json", "schema", "version", "flood",
                                    "seq"}


@pytest.mark.sshd
def test_totals_hold_only_valid_devices(nodes_json_run):
    r, _ = nodes_json_run
    nodes = json.loads(r.stdout)
    assert sum(len(n["devices"]) for n in nodes) == 2 * (len(NAMES) - len(NEVER_ANSWER))


@pytest.mark.sshd
def test_clock_skew_is_shown(nodes_json_run):
    r, _ = nodes_json_run
    nodes = {n["name"]: n for n in json.loads(r.stdout)}
    for name in ("clock-skew-1", "clock-skew-2"):  # a year behind, a year ahead
        n = nodes[name]
        shown = abs(n.get("skew_s") or 0) > 300 * 86400 or "clock" in (n["error"] or "")
        assert shown, {k: v for k, v in n.items() if k != "devices"}


# -- the console's own fan-in against the hostile fleet ----------------------------------------


@pytest.mark.sshd
async def test_fan_in_keeps_honest_nodes_at_their_rate_while_others_misbehave(hostile_fleet):
    _, inv_path = hostile_fleet
    inv = load_inventory(inv_path)
    fleet = FleetState(inv)
    seen: dict[str, set[str]] = {n: set() for n in NAMES}
    lag = 0.0
    opened = time.monotonic()
    async with FanIn(fleet, list(inv.nodes)):
        deadline = time.monotonic() + 15
        while not all(fleet.nodes[n].reports for n in HONEST) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        before = {n: fleet.nodes[n].reports for n in HONEST}
        start = time.monotonic()
        while (now := time.monotonic()) - start < 5.0:
            await asyncio.sleep(0.05)
            lag = max(lag, time.monotonic() - now - 0.05)  # how late the loop woke us
            for n in NAMES:
                seen[n].add(fleet.nodes[n].link)
        window = time.monotonic() - start
        got = {n: fleet.nodes[n].reports - before[n] for n in HONEST}
        flood = fleet.nodes["flood"]
        # The flood node's lines beyond its budget were dropped, not decoded.
        assert flood.rejects["flood"] > 0
        assert flood.reports <= MIN_LINES_PER_S * (BURST_S + time.monotonic() - opened) + 1
    expected = window / hostile_agents.INTERVAL_S
    for name in HONEST:
        assert got[name] >= 0.5 * expected, (got, expected)
        assert seen[name] == {"live"}, seen[name]
        assert fleet.nodes[name].rejects == Counter()
    assert lag < 1.0, f"event loop stalled {lag:.2f}s under the flood"
    for name in ("truncated", "invalid-json", "wrong-shape", "future-version", "nan",
                 "negative", "huge", "binary"):
        assert "protocol-error" in seen[name], (name, seen[name])
        assert fleet.nodes[name].reports == 0
    assert "stale" in seen["silent-after-hello"], seen["silent-after-hello"]
    assert fleet.nodes["silent-after-hello"].reports == 0
    assert fleet.nodes["devices-10000"].rejects["schema"] >= 1
    assert all(len(fleet.nodes[n].samples) <= 2 for n in NAMES)


@pytest.mark.sshd
async def test_a_session_silent_after_hello_is_reconnected(hostile_fleet):
    _, inv_path = hostile_fleet
    inv = load_inventory(inv_path)
    fleet = FleetState(inv)
    silent = inv.node("silent-after-hello")
    async with FanIn(fleet, [silent]):
        node = fleet.nodes[silent.name]
        deadline = time.monotonic() + 10
        while node.frames < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert node.frames == 1  # its hello
        # Stale after 3 intervals of 0.2 s, dropped after 10, back within the first backoff.
        deadline = time.monotonic() + 8
        while node.frames < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert node.frames >= 2, f"no second hello: {node.link} {node.error}"


# -- hostile bytes straight into the Intake (no SSH) -------------------------------------------


class Clock:
    """A clock for the Intake: frozen (flood tests) or a second per call (no rate limit)."""

    def __init__(self, step: float = 1.0) -> None:
        self.now = 1_000_000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def two_node_fleet() -> FleetState:
    fleet = FleetState()
    fleet.add_dc("hostile-dc")
    fleet.add_dc("honest-dc")
    fleet.add_node("victim", "hostile-dc", "nvidia", interval_s=1.0)
    fleet.add_node("bystander", "honest-dc", "nvidia", interval_s=1.0)
    return fleet


def honest_bystander(fleet: FleetState) -> None:
    """Give the bystander some state a hostile node must not touch."""
    t = 1_000_000.0
    info = tuple(DeviceInfo(uuid=f"B-{i}", index=i, vendor="nvidia", model="H100", name="H100",
                            pool="nvidia") for i in range(2))
    fleet.apply("bystander", Hello(v=1, node="bystander", seq=1, ts=t, agent_version="1",
                                   hostname="b", collectors=("sim",), interval_s=1.0,
                                   devices=info), t)
    fleet.apply("bystander", Report(v=1, node="bystander", seq=2, ts=t, devices=tuple(
        DeviceSample(uuid=f"B-{i}", index=i, vendor="nvidia", model="H100", pool="nvidia",
                     util_pct=50.0, power_w=100.0) for i in range(2))), t)


def snapshot_of(fleet: FleetState, name: str) -> tuple:
    node = fleet.nodes[name]
    totals = fleet.totals(dc=node.dc)
    return (node.link, node.error, node.frames, node.reports, dict(node.rejects),
            [d.uuid for d in node.samples], node.last_seq, totals.devices, totals.power_w,
            dict(totals.nodes), [e for n, e in fleet.events if n == name])


def check_invariants(fleet: FleetState) -> None:
    for dc in fleet.dc_meta:
        t = fleet.totals(dc=dc)
        nodes = [n for n in fleet.nodes.values() if n.dc == dc]
        assert t.devices == sum(n.summary.devices for n in nodes)
        assert sum(t.nodes.values()) == len(nodes)
        assert all(v >= 0 for v in t.nodes.values())
        assert Counter(n.link for n in nodes) == +t.nodes


def expected_counted(stream: bytes) -> int:
    """Lines of `stream` the Intake must either apply or count: every complete line that is
    not blank (a line over the limit counts once, however it arrived), plus a pending partial
    line that already leaves no room for its newline (the limit counts the newline)."""
    *lines, pending = stream.split(b"\n")
    n = sum(1 for line in lines if len(line) >= MAX_LINE_BYTES or line.strip())
    return n + (len(pending) >= MAX_LINE_BYTES)


def accounted(fleet: FleetState, name: str) -> int:
    node = fleet.nodes[name]
    # `event-flood` counts applied events kept out of the fleet-wide log: not extra lines.
    return node.frames + sum(v for k, v in node.rejects.items() if k != "event-flood")


_ENV = {"v": 1, "node": "victim", "ts": 1_000_000.0}


def _valid(seq: int, kind: str, devices: int) -> bytes:
    env = dict(_ENV, seq=seq)
    if kind == "hello":
        frame = Hello(**env, agent_version="1", hostname="h", collectors=(), interval_s=1.0,
                      devices=tuple(DeviceInfo(uuid=f"V-{i}", index=i, vendor="nvidia",
                                               model="H100", name="H100", pool="nvidia")
                                    for i in range(devices)))
    elif kind == "report":
        frame = Report(**env, devices=tuple(DeviceSample(uuid=f"V-{i}", index=i,
                                                          vendor="nvidia", model="H100",
                                                          pool="nvidia", util_pct=10.0)
                                            for i in range(devices)))
    else:
        frame = Event(**env, event="xid", severity="warn", message="m", code=13)
    return encode_frame(frame)


valid_lines = st.builds(_valid, st.integers(0, 40), st.sampled_from(["hello", "report", "event"]),
                        st.integers(0, 300))
bad_lines = st.sampled_from([
    *(line + b"\n" for line in hostile_agents.INVALID_JSON),
    b"[]\n", b'"x"\n', b"{}\n", b"null\n", b'{"kind":"report","v":2}\n',
    b'{"kind":"report","v":1,"node":"n","seq":1,"ts":1,"devices":[{"uuid":1}]}\n',
    b'{"kind":"report","v":1,"node":"n","seq":1,"ts":NaN,"devices":[]}\n',
    b'{"kind":"report","v":1,"node":"n","seq":-1,"ts":1,"devices":[]}\n',
    b'{"kind":"report","v":1,"node":"n","seq":1,"ts":1e308,"devices":[]}\n',
    b"\x1b]0;PWNED\x07\x1b[2J\n", b"\x00\x00\x00\n", b"\xc0\xaf\xed\xa0\x80\n",
    b"   \n", b"\r\n", b"\n",
])
long_lines = st.builds(lambda n, end: b"A" * n + end,
                       st.sampled_from([MAX_LINE_BYTES - 1, MAX_LINE_BYTES, MAX_LINE_BYTES + 1,
                                        2 * MAX_LINE_BYTES]),
                       st.sampled_from([b"\n", b""]))
pieces = st.one_of(valid_lines, bad_lines, st.binary(max_size=600), long_lines)
streams = st.lists(pieces, max_size=12).map(b"".join)


@st.composite
def chunked(draw) -> tuple[bytes, list[bytes]]:
    """A stream and one way the network might cut it into chunks."""
    data = draw(streams)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=20))))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in itertools.pairwise(bounds)]


PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(chunked())
def test_intake_survives_any_stream_and_accounts_for_every_line(case):
    data, chunks = case
    fleet = two_node_fleet()
    honest_bystander(fleet)
    before = snapshot_of(fleet, "bystander")
    intake = Intake(fleet, "victim", clock=Clock())
    for chunk in chunks:
        intake.feed(chunk)  # never raises
        assert len(intake._buf) <= MAX_LINE_BYTES  # memory stays bounded
    assert accounted(fleet, "victim") == expected_counted(data)
    assert snapshot_of(fleet, "bystander") == before
    check_invariants(fleet)
    # However the stream was cut, the outcome is the same.
    whole = two_node_fleet()
    Intake(whole, "victim", clock=Clock()).feed(data)
    a, b = fleet.nodes["victim"], whole.nodes["victim"]
    assert (a.link, a.frames, a.reports, a.rejects) == (b.link, b.frames, b.reports, b.rejects)
    assert (a.error or "").split(":")[0] == (b.error or "").split(":")[0]


@PROPERTY
@given(st.lists(st.binary(min_size=1, max_size=8192), min_size=1, max_size=40))
def test_random_bytes_never_raise_never_grow_never_reach_others(chunks):
    fleet = two_node_fleet()
    honest_bystander(fleet)
    before = snapshot_of(fleet, "bystander")
    intake = Intake(fleet, "victim", clock=Clock())
    for chunk in chunks:
        intake.feed(chunk)
        assert len(intake._buf) <= MAX_LINE_BYTES
    assert accounted(fleet, "victim") == expected_counted(b"".join(chunks))
    assert snapshot_of(fleet, "bystander") == before
    assert fleet.nodes["victim"].samples == []  # random bytes are never a report
    check_invariants(fleet)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 64))
def test_a_flood_costs_a_counter(lines, chunks):
    fleet = two_node_fleet()
    intake = Intake(fleet, "victim", clock=Clock(step=0.0))  # all at once
    frames = b"".join(_valid(seq, "event", 0) for seq in range(1, lines + 1))
    size = -(-len(frames) // chunks)
    for i in range(0, len(frames), size):
        intake.feed(frames[i:i + size])
    budget = int(MIN_LINES_PER_S * BURST_S)
    node = fleet.nodes["victim"]
    assert node.frames == min(lines, budget)
    assert node.rejects["flood"] == max(0, lines - budget)
    # Each node's share of the fleet-wide event log is capped too; the rest stays in its own.
    assert len(fleet.events) == min(lines, budget, int(EVENT_BURST))
    assert node.rejects["event-flood"] == max(0, min(lines, budget) - int(EVENT_BURST))


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(["hello", "report", "event"]), st.integers(0, 30),
                          st.integers(0, 256)), max_size=40))
def test_any_sequence_of_valid_frames_keeps_the_totals_right(frames):
    fleet = two_node_fleet()
    honest_bystander(fleet)
    before = snapshot_of(fleet, "bystander")
    intake = Intake(fleet, "victim", clock=Clock())
    for kind, seq, devices in frames:
        intake.feed(_valid(seq, kind, devices))
        check_invariants(fleet)
    assert accounted(fleet, "victim") == len(frames)
    assert len(fleet.nodes["victim"].samples) <= 256
    assert snapshot_of(fleet, "bystander") == before


def test_a_line_one_byte_over_the_limit_is_too_long():
    head = (b'{"kind":"hello","v":1,"node":"victim","seq":1,"ts":1,"agent_version":"a",'
            b'"hostname":"h","collectors":[],"interval_s":1,"pad":"')
    line = head + b"x" * (MAX_LINE_BYTES - len(head) - 2) + b'"}\n'
    assert len(line) == MAX_LINE_BYTES + 1
    fleet = two_node_fleet()
    Intake(fleet, "victim", clock=Clock()).feed(line)
    assert fleet.nodes["victim"].rejects["too-long"] == 1


def test_one_nodes_events_do_not_evict_the_others():
    fleet = two_node_fleet()
    t = 1_000_000.0
    fleet.apply("bystander", Event(v=1, node="bystander", seq=1, ts=t, event="xid",
                                   severity="crit", message="Xid 79 on the bystander", code=79),
                t)
    # 10,000 events at 40/s: under the flood budget, so every one of them is accepted.
    intake = Intake(fleet, "victim", clock=Clock(step=1 / 40))
    intake.feed(b"".join(_valid(seq, "event", 0) for seq in range(1, 10_001)))
    assert fleet.nodes["victim"].rejects["flood"] == 0
    assert any(e["node"] == "bystander" for e in events_json(fleet, ["victim", "bystander"]))


def test_a_silent_node_cannot_stay_live_by_claiming_a_long_interval():
    fleet = two_node_fleet()  # the inventory expects a frame a second
    t = 1_000_000.0
    fleet.apply("victim", Hello(v=1, node="victim", seq=1, ts=t, agent_version="1",
                                hostname="h", collectors=(), interval_s=3600.0), t)
    fleet.mark_stale(t + 60)
    assert nodes_json(fleet, ["victim"])[0]["state"] == "stale"
