"""Intake: untrusted bytes from a node never hurt the console or other nodes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.collectors.base import CollectorOptions
from agents.collectors.sim import SimCollector
from agents.sampler import Sampler
from agents.wire import MAX_LINE_BYTES, encode_frame
from console.model.fleet import FleetState
from console.telemetry.intake import Intake


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def setup(name: str = "n1"):
    fleet = FleetState()
    for n in ("n1", "n2"):
        fleet.add_node(n, "dc", "nvidia")
    clock = Clock()
    return fleet, Intake(fleet, name, clock=clock), clock


def good_lines(node: str = "n1", ticks: int = 2) -> bytes:
    s = Sampler(SimCollector(CollectorOptions(sim_devices=2)), node=node, clock=lambda: 1000.0)
    frames = [s.hello()]
    for _ in range(ticks):
        frames += s.tick()
    return b"".join(encode_frame(f) for f in frames)


def test_good_stream_goes_live():
    fleet, intake, _ = setup()
    intake.feed(good_lines())
    n = fleet.nodes["n1"]
    assert n.link == "live" and n.reports == 2 and not n.rejects


def test_lines_split_across_chunks_are_reassembled():
    fleet, intake, _ = setup()
    data = good_lines()
    for i in range(0, len(data), 7):
        intake.feed(data[i:i + 7])
    assert fleet.nodes["n1"].reports == 2 and not fleet.nodes["n1"].rejects


HOSTILE = [
    pytest.param(b"not json\n", "invalid-json", id="garbage"),
    pytest.param(b"\x00\x01\x02\xff\xfe\n", "invalid-json", id="binary"),
    pytest.param(b'{"kind":"report","v":1\n', "invalid-json", id="truncated"),
    pytest.param(b'{"kind":"report","v":2,"node":"n","seq":1,"ts":1,"devices":[]}\n', "version",
                 id="unknown-version"),
    pytest.param(b'{"a":1}\n', "schema", id="wrong-shape"),
    pytest.param(b'{"kind":"report","v":1,"node":"n","seq":1,"ts":1,"devices":'
                 b'[{"uuid":"u","index":0,"vendor":"x","model":"m","pool":"nvidia",'
                 b'"util_pct":-5}]}\n', "schema", id="negative-util"),
]


@pytest.mark.parametrize("line, reason", HOSTILE)
def test_hostile_lines_are_counted_by_reason(line, reason):
    fleet, intake, _ = setup()
    intake.feed(good_lines())
    intake.feed(line)
    assert fleet.nodes["n1"].rejects[reason] == 1
    assert fleet.nodes["n1"].reports == 2  # what it had is kept
    assert fleet.nodes["n2"].rejects == {}  # the neighbour is untouched


def test_unknown_version_is_a_protocol_error_with_the_reason():
    fleet, intake, _ = setup()
    intake.feed(HOSTILE[3].values[0])
    n = fleet.nodes["n1"]
    assert n.link == "protocol-error" and "unsupported protocol version 2" in n.error


def test_a_run_of_bad_lines_is_a_protocol_error_and_good_frames_recover():
    fleet, intake, _ = setup()
    intake.feed(b"x\n" * 5)
    assert fleet.nodes["n1"].link == "protocol-error"
    intake.feed(good_lines())
    assert fleet.nodes["n1"].link == "live"


def test_endless_line_is_dropped_with_bounded_memory():
    fleet, intake, _ = setup()
    chunk = b"a" * 65536
    for _ in range(MAX_LINE_BYTES // len(chunk) + 5):
        intake.feed(chunk)
    assert len(intake._buf) <= MAX_LINE_BYTES
    assert fleet.nodes["n1"].rejects["too-long"] == 1
    intake.feed(b"rest of the monster line\n" + good_lines())
    assert fleet.nodes["n1"].reports == 2  # the stream resumes at the next line


def test_flood_is_rate_limited_not_decoded():
    fleet, intake, clock = setup()
    lines = good_lines(ticks=1000)
    intake.feed(lines)  # 1001 lines in the same instant
    n = fleet.nodes["n1"]
    budget = int(intake.rate * 4)
    assert n.rejects["flood"] == lines.count(b"\n") - budget
    assert n.reports < budget
    before = n.reports
    clock.t += 10  # the budget refills with time
    intake.feed(good_lines(ticks=1))
    assert n.reports == before + 1 and n.link == "live"


def test_blank_lines_are_ignored():
    fleet, intake, _ = setup()
    intake.feed(b"\n\n  \n" + good_lines())
    assert not fleet.nodes["n1"].rejects


def test_huge_numbers_and_nan_rejected():
    fleet, intake, _ = setup()
    base = {"kind": "event", "v": 1, "node": "n", "seq": 1, "ts": 1.0, "event": "xid",
            "severity": "crit", "message": "m"}
    intake.feed(json.dumps({**base, "code": 10**30}).encode() + b"\n")
    intake.feed(json.dumps({**base, "ts": float("nan")}).encode() + b"\n")
    assert sum(fleet.nodes["n1"].rejects.values()) == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_arbitrary_chunks_never_raise(chunks):
    fleet, intake, _ = setup()
    for c in chunks:
        intake.feed(c)
    intake.feed(good_lines())
    assert fleet.nodes["n1"].reports >= 1 or fleet.nodes["n1"].rejects
