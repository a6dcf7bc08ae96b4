"""The wire protocol: round trips, the version rule, and hostile lines."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import wire
from agents.wire import (
    MAX_LINE_BYTES,
    DeviceSample,
    Event,
    FrameError,
    Hello,
    Process,
    Report,
    decode_frame,
    encode_frame,
)

SCHEMA_FILE = Path(__file__).parents[1] / "agents" / "schema" / "frames-v1.schema.json"


def _report(**device) -> Report:
    d = DeviceSample(uuid="GPU-1", index=0, vendor="nvidia", model="H100", pool="nvidia",
                     util_pct=50.0, processes=(Process(pid=42, name="python", used_mib=10.0),),
                     **device)
    return Report(1, "n1", 7, 1700000000.5, devices=(d,))


def _line(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def test_report_round_trips_and_keeps_nulls():
    frame = _report()
    line = encode_frame(frame)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b'"temp_c":null' in line  # unsupported metrics are null, never 0 or absent
    assert decode_frame(line) == frame


def test_every_frame_starts_with_kind_then_envelope():
    line = encode_frame(_report())
    assert line.startswith(b'{"kind":"report","v":1,"node":"n1","seq":7,"ts":')


def test_unknown_fields_are_ignored():
    obj = msgspec.to_builtins(_report())
    obj["future_field"] = {"x": 1}
    obj["devices"][0]["new_metric_w"] = 3
    assert decode_frame(_line(obj)).devices[0].util_pct == 50.0


def test_published_schema_matches_the_types():
    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(json.dumps(wire.json_schema()))


def _base(**extra) -> dict:
    return {"kind": "event", "v": 1, "node": "n", "seq": 1, "ts": 1.0, "event": "xid",
            "severity": "crit", "message": "Xid 79", **extra}


@pytest.mark.parametrize(
    "line, reason",
    [
        pytest.param(b"", "invalid-json", id="empty"),
        pytest.param(b"{", "invalid-json", id="truncated"),
        pytest.param(b"\x00\xff\xfe garbage", "invalid-json", id="binary"),
        pytest.param(b"[1,2,3]", "schema", id="not-an-object"),
        pytest.param(_line({"kind": "nope", "v": 1}), "schema", id="unknown-kind"),
        pytest.param(_line(_base(v=2)), "version", id="future-version-same-shape"),
        pytest.param(_line({"kind": "report", "v": 9, "whatever": True}), "version",
                     id="future-version-other-shape"),
        pytest.param(_line(_base(v=0)), "version", id="old-version"),
        pytest.param(_line(_base(seq=-1)), "schema", id="negative-seq"),
        pytest.param(_line(_base(severity="apocalyptic")), "schema", id="bad-enum"),
        pytest.param(b'{"kind":"event","v":1,"node":"n","seq":1,"ts":NaN}', "invalid-json",
                     id="nan-literal"),
        pytest.param(_line(_base(ts=1e300)), "schema", id="huge-ts"),
        pytest.param(_line(_base(node="x" * 300)), "schema", id="long-name"),
        pytest.param(_line(_base(message=5)), "schema", id="wrong-type"),
        pytest.param(_line(_base(node=None)), "schema", id="null-envelope"),
    ],
)
def test_bad_lines_are_rejected_with_a_reason(line, reason):
    with pytest.raises(FrameError) as info:
        decode_frame(line)
    assert info.value.reason == reason
    assert "\n" not in str(info.value)


def test_version_error_says_which_version():
    with pytest.raises(FrameError, match="unsupported protocol version 2"):
        decode_frame(_line(_base(v=2)))


def test_line_over_the_limit_is_rejected_before_parsing():
    line = b'{"kind":"event","message":"' + b"a" * MAX_LINE_BYTES + b'"}'
    with pytest.raises(FrameError) as info:
        decode_frame(line)
    assert info.value.reason == "too-long"


@pytest.mark.parametrize(
    "device, ok",
    [
        pytest.param({"util_pct": 101}, False, id="util-over-100"),
        pytest.param({"util_pct": -1}, False, id="util-negative"),
        pytest.param({"mem_used_mib": -5}, False, id="memory-negative"),
        pytest.param({"power_w": 1e30}, False, id="power-huge"),
        pytest.param({"temp_c": 1e9}, False, id="temp-huge"),
        pytest.param({"health": "dead"}, False, id="unknown-health"),
        pytest.param({"pool": "amd"}, False, id="unknown-pool"),
        pytest.param({"util_pct": 100, "temp_c": -20, "energy_mj": 2**62}, True, id="edges-ok"),
    ],
)
def test_device_values_outside_physical_bounds_are_rejected(device, ok):
    obj = msgspec.to_builtins(_report())
    obj["devices"][0].update(device)
    if ok:
        decode_frame(_line(obj))
    else:
        with pytest.raises(FrameError):
            decode_frame(_line(obj))


def test_too_many_devices_in_one_frame_is_rejected():
    obj = msgspec.to_builtins(_report())
    obj["devices"] = obj["devices"] * 10_000
    with pytest.raises(FrameError) as info:
        decode_frame(_line(obj))
    assert info.value.reason in {"schema", "too-long"}


def test_hello_and_event_round_trip():
    hello = Hello(1, "n", 1, 2.0, agent_version="1", hostname="h", collectors=("sim",),
                  interval_s=1.0)
    event = Event(1, "n", 2, 3.0, event="xid", severity="crit", message="m", code=79,
                  action_class="DRAIN")
    for frame in (hello, event):
        assert decode_frame(encode_frame(frame)) == frame


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_as_anything_but_frame_error(data):
    with contextlib.suppress(FrameError):
        decode_frame(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["kind", "v", "node", "seq", "ts", "devices", "event",
                                        "severity", "message", "agent_version"]),
                       json_values, max_size=10))
def test_json_of_the_wrong_shape_is_a_frame_error(obj):
    try:
        frame = decode_frame(json.dumps(obj))
    except FrameError:
        return
    assert frame.v == 1 and not math.isnan(frame.ts)
