"""Health rules, table-driven: a sample and its short history -> health and reasons."""

from __future__ import annotations

import pytest

from agents.health import Context, XidWindow, assess, worst
from agents.wire import DeviceSample

NOW = 10_000.0


def sample(**metrics) -> DeviceSample:
    return DeviceSample(uuid="GPU-x", index=0, vendor="nvidia", model="H100", pool="nvidia",
                        **metrics)


def ctx(**kw) -> Context:
    kw.setdefault("slowdown_temp_c", 87.0)
    kw.setdefault("shutdown_temp_c", 92.0)
    return Context(now=NOW, **kw)


CASES = [
    pytest.param(sample(util_pct=90, temp_c=70), ctx(), "ok", None, id="healthy-busy-gpu"),
    pytest.param(sample(), ctx(), "ok", None, id="all-metrics-null-is-ok"),
    pytest.param(sample(temp_c=88), ctx(), "warn", "over slowdown", id="over-slowdown-temp"),
    pytest.param(sample(temp_c=93), ctx(), "crit", "shutdown", id="at-shutdown-temp"),
    pytest.param(sample(temp_c=99), ctx(slowdown_temp_c=None, shutdown_temp_c=None), "ok", None,
                 id="no-thresholds-known"),
    pytest.param(sample(throttle_reasons=["gpu-idle", "sw-power-cap"]), ctx(), "ok", None,
                 id="software-throttle-is-normal"),
    pytest.param(sample(throttle_reasons=["hw-thermal"]), ctx(), "warn", "hw-thermal",
                 id="hardware-thermal-throttle"),
    pytest.param(sample(throttle_reasons=["hw-power-brake"]), ctx(), "warn", "hw-power-brake",
                 id="power-brake"),
    pytest.param(sample(ecc_dbe_volatile=1), ctx(), "crit", "uncorrectable ECC",
                 id="dbe-ecc-is-critical"),
    pytest.param(sample(ecc_sbe_volatile=500), ctx(), "ok", None, id="corrected-ecc-alone-ok"),
    pytest.param(sample(remap_pending=True), ctx(), "warn", "remap pending",
                 id="row-remap-pending"),
    pytest.param(sample(remap_pending=True, remap_failure=True), ctx(), "crit", "remap failed",
                 id="row-remap-failure"),
    pytest.param(sample(recovery_action="node-reboot"), ctx(), "crit", "node-reboot",
                 id="recovery-node-reboot"),
    pytest.param(sample(recovery_action="drain-p2p"), ctx(), "warn", "drain-p2p",
                 id="recovery-drain-p2p"),
    pytest.param(sample(recovery_action="none"), ctx(), "ok", None, id="recovery-none"),
    pytest.param(sample(), ctx(lost=True), "crit", "device lost", id="lost-device"),
    pytest.param(sample(), ctx(xids=((NOW - 5, 79),)), "crit", "xid 79", id="xid79-drain"),
    pytest.param(sample(), ctx(xids=((NOW - 90_000, 79),)), "ok", None,
                 id="xid79-older-than-window"),
    pytest.param(sample(), ctx(xids=((NOW - 60, 48),)), "crit", "xid 48", id="xid48-reset"),
    pytest.param(sample(), ctx(xids=((NOW - 3700, 48),)), "ok", None,
                 id="xid48-outside-1h-window"),
    pytest.param(sample(), ctx(xids=((NOW - 30, 13),)), "ok", None, id="one-app-xid-is-ok"),
    pytest.param(sample(), ctx(xids=((NOW - 30, 13), (NOW - 20, 31), (NOW - 10, 13))), "warn",
                 "3 in 10m", id="three-app-xids-in-10m-warn"),
    pytest.param(sample(), ctx(xids=((NOW - 900, 13), (NOW - 20, 31), (NOW - 10, 13))), "ok",
                 None, id="app-xids-spread-out-ok"),
    pytest.param(sample(), ctx(xids=((NOW - 10, 92),)), "warn", "xid 92", id="xid92-sbe-storm"),
    pytest.param(sample(), ctx(xids=((NOW - 10, 63),)), "ok", None, id="xid63-info-only"),
    pytest.param(sample(), ctx(xids=((NOW - 10, 999),)), "crit", "UNKNOWN",
                 id="unknown-xid-fails-safe"),
    pytest.param(sample(), ctx(xids=((NOW - 10, 79),), apply_xid_catalog=False), "warn",
                 "vendor Xid 79", id="other-vendor-xid-not-nvidia-rules"),
    pytest.param(sample(vendor_health="OK"), ctx(), "ok", None, id="ascend-ok"),
    pytest.param(sample(vendor_health="Warning"), ctx(), "warn", "Warning", id="ascend-warning"),
    pytest.param(sample(vendor_health="Alarm"), ctx(), "crit", "Alarm", id="ascend-alarm"),
    pytest.param(sample(vendor_health="Critical"), ctx(), "crit", "Critical",
                 id="ascend-critical"),
    pytest.param(sample(vendor_health="FAIL"), ctx(), "crit", "FAIL", id="cambricon-fail"),
    pytest.param(sample(vendor_health="Zorp"), ctx(), "warn", "not recognised",
                 id="unknown-vendor-word-warns"),
]


@pytest.mark.parametrize("s, c, health, reason", CASES)
def test_rules(s, c, health, reason):
    got, reasons = assess(s, c)
    assert got == health
    if reason is None:
        assert reasons == []
    else:
        assert reason in reasons[0]


def test_reasons_come_worst_first():
    health, reasons = assess(sample(temp_c=88, ecc_dbe_volatile=2), ctx())
    assert health == "crit"
    assert "ECC" in reasons[0] and "slowdown" in reasons[1]


def test_xid_window_forgets_old_entries():
    w = XidWindow(horizon_s=100)
    w.record(0, 13)
    w.record(50, 48)
    assert w.recent(120) == [(50, 48)]
    assert w.recent(500) == []


@pytest.mark.parametrize("values, expected", [
    ([], "ok"), (["ok", "warn"], "warn"), (["warn", "crit", "ok"], "crit"),
])
def test_worst(values, expected):
    assert worst(values) == expected
