"""The NVML collector against a fake pynvml: values, NotSupported caching, lost GPUs, version
skew, field values, Xid events, open errors, and replay of captures from real nodes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pynvml as real
import pytest
from fake_pynvml import FakeHandle, FakeNvml, field_entry, fleet, h100, ns, synthetic_h100

from agents.collectors.base import CollectorError, CollectorOptions
from agents.collectors.nvml import FIELDS, NvmlCollector, model_of
from agents.collectors.nvml_capture import FORMAT, call_key, capture, field_key, main
from agents.sampler import Sampler
from agents.wire import PROTOCOL_VERSION, DeviceSample, Event, Report, decode_frame, encode_frame

CAPTURES = sorted((Path(__file__).parent / "data" / "nvml").glob("*.json"))
XID = real.nvmlEventTypeXidCriticalError
DBE = real.nvmlEventTypeDoubleBitEccError
ALL_NONE = ("util_pct", "mem_util_pct", "mem_used_mib", "mem_total_mib", "temp_c",
            "mem_temp_c", "power_w", "power_limit_w", "energy_mj", "sm_clock_mhz",
            "mem_clock_mhz", "pstate", "fan_pct", "throttle_reasons", "ecc_sbe_volatile",
            "ecc_dbe_volatile", "ecc_sbe_aggregate", "ecc_dbe_aggregate",
            "remapped_rows_correctable", "remapped_rows_uncorrectable", "remap_pending",
            "remap_failure", "pcie_gen", "pcie_width", "pcie_replays", "recovery_action",
            "mig_mode", "mig_devices")


def roundtrip(samples: list[DeviceSample]) -> list[DeviceSample]:
    """Every sample must survive the wire: a Report encodes, decodes and compares equal."""
    frame = Report(v=PROTOCOL_VERSION, node="n1", seq=1, ts=1.0, devices=samples)
    back = decode_frame(encode_frame(frame))
    assert isinstance(back, Report)
    assert list(back.devices) == list(samples)
    return samples


def tick(c: NvmlCollector, now: float = 1.0) -> list[DeviceSample]:
    return roundtrip(c.sample(now))


@pytest.fixture
def opened():
    """open() a collector on a fake; closes it and checks NVML was shut down."""
    made: list[tuple[NvmlCollector, FakeNvml]] = []

    def make(fake: FakeNvml | None = None) -> tuple[NvmlCollector, FakeNvml]:
        fake = fake or fleet(2)
        c = NvmlCollector(nvml=fake)
        c.open()
        made.append((c, fake))
        return c, fake

    yield make
    for c, fake in made:
        c.close()
        assert fake.init_count == 0
        assert all(es.freed for es in fake.event_sets)


def wait_events(c: NvmlCollector, n: int, timeout: float = 3.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += c.poll_events()
        time.sleep(0.005)
    return got


# -- a full sample -----------------------------------------------------------------------

H100_INFO = {
    "uuid": "GPU-5a1f0000-8c2d-4e6f-9a0b-1c2d3e4f0000", "index": 0, "vendor": "nvidia",
    "model": "H100", "name": "NVIDIA H100 80GB HBM3", "pool": "nvidia",
    "mem_total_mib": 81559.0, "pci_bus_id": "00000000:18:00.0", "serial": "1653223060000",
    "vbios": "96.00.99.00.01", "compute_capability": "9.0", "power_limit_max_w": 700.0,
    "slowdown_temp_c": 87, "shutdown_temp_c": 92, "pcie_gen_max": 5, "pcie_width_max": 16,
}

H100_SAMPLE = {
    "util_pct": 87, "mem_util_pct": 41, "mem_used_mib": 40960.0, "mem_total_mib": 81559.0,
    "temp_c": 54, "mem_temp_c": 61.0, "power_w": 512.345, "power_limit_w": 700.0,
    "energy_mj": 987_654_321, "sm_clock_mhz": 1980, "mem_clock_mhz": 2619, "pstate": 0,
    "fan_pct": None, "throttle_reasons": ("sw-power-cap", "hw-thermal"),
    "ecc_sbe_volatile": 3, "ecc_dbe_volatile": 0, "ecc_sbe_aggregate": 17,
    "ecc_dbe_aggregate": 0, "remapped_rows_correctable": 2, "remapped_rows_uncorrectable": 0,
    "remap_pending": False, "remap_failure": False, "pcie_gen": 5, "pcie_width": 16,
    "pcie_replays": 1, "recovery_action": "none", "mig_mode": False, "mig_devices": None,
}


def test_open_reads_static_facts_and_versions():
    c = NvmlCollector(nvml=(fake := fleet(2)))
    info = c.open()
    try:
        assert (info.driver_version, info.runtime_version) == ("550.54.15", "12.4")
        assert [d.index for d in info.devices] == [0, 1]
        for key, want in H100_INFO.items():
            assert getattr(info.devices[0], key) == want, key
    finally:
        c.close()
    assert fake.init_count == 0


@pytest.mark.parametrize(("field", "want"), sorted(H100_SAMPLE.items()))
def test_full_sample_on_an_h100(opened, field, want):
    c, _ = opened()
    s = tick(c)[0]
    assert (s.uuid, s.index, s.vendor, s.model, s.pool) == (
        H100_INFO["uuid"], 0, "nvidia", "H100", "nvidia")
    assert getattr(s, field) == want
    assert [(p.pid, p.name, p.used_mib) for p in s.processes] == [(4242, "python3", 38912.0)]


def test_static_facts_are_read_once(opened):
    c, fake = opened()
    for t in range(3):
        tick(c, t)
    for fn in ("nvmlDeviceGetName", "nvmlDeviceGetSerial", "nvmlDeviceGetVbiosVersion",
               "nvmlDeviceGetPowerManagementLimitConstraints"):
        assert fake.calls_of(0, fn) == 1, fn
    assert fake.calls_of(0, "nvmlDeviceGetUtilizationRates") == 3


@pytest.mark.parametrize(("name", "model"), [
    ("NVIDIA H100 80GB HBM3", "H100"),
    ("NVIDIA H100 PCIe", "H100"),
    ("NVIDIA A100-SXM4-80GB", "A100"),
    ("NVIDIA H20", "H20"),
    ("NVIDIA H200", "NVIDIA H200"),  # not an H20: whole tokens only
    ("Tesla T4", "Tesla T4"),
])
def test_model_is_the_catalog_key_else_the_nvml_name(name, model):
    assert model_of(name) == model


def test_old_bindings_return_bytes(opened):
    fake = fleet(1)
    fake.set(0, "nvmlDeviceGetName()", b"NVIDIA H100 80GB HBM3")
    fake.set(0, "nvmlDeviceGetUUID()", b"GPU-abc\x00")
    fake.set(0, "nvmlDeviceGetPciInfo()", ns(busId=b"00000000:18:00.0"))
    fake.set("system", "nvmlSystemGetDriverVersion()", b"535.161.08")
    c = NvmlCollector(nvml=fake)
    info = c.open()
    c.close()
    d = info.devices[0]
    assert (d.name, d.model, d.uuid, d.pci_bus_id) == (
        "NVIDIA H100 80GB HBM3", "H100", "GPU-abc", "00000000:18:00.0")
    assert info.driver_version == "535.161.08"


# -- NotSupported is remembered, transient errors are not ---------------------------------

@pytest.mark.parametrize(("key", "fn", "field", "error"), [
    ("nvmlDeviceGetFanSpeed()", "nvmlDeviceGetFanSpeed", "fan_pct", real.NVMLError_NotSupported),
    ("nvmlDeviceGetTemperature(0)", "nvmlDeviceGetTemperature", "temp_c",
     real.NVMLError_NotFound),
    ("nvmlDeviceGetPowerUsage()", "nvmlDeviceGetPowerUsage", "power_w",
     real.NVMLError_FunctionNotFound),
    ("nvmlDeviceGetMigMode()", "nvmlDeviceGetMigMode", "mig_mode", real.NVMLError_NotSupported),
])
def test_unsupported_metric_is_none_and_never_asked_again(opened, key, fn, field, error):
    fake = fleet(2)
    fake.set(0, key, error)
    c, _ = opened(fake)
    for t in range(4):
        samples = tick(c, t)
        assert getattr(samples[0], field) is None
        assert getattr(samples[1], field) is not None or field == "fan_pct"
    assert fake.calls_of(0, fn) == 1
    if field != "fan_pct":  # the other GPU still answers every tick
        assert fake.calls_of(1, fn) == 4


@pytest.mark.parametrize("error", [real.NVMLError_Unknown, real.NVMLError_NoPermission,
                                   real.NVMLError_Timeout])
def test_transient_error_is_none_for_that_tick_only(opened, error):
    fake = fleet(1)
    fake.set(0, "nvmlDeviceGetTemperature(0)", error)
    c, _ = opened(fake)
    assert tick(c)[0].temp_c is None
    assert tick(c)[0].temp_c is None
    fake.set(0, "nvmlDeviceGetTemperature(0)", 66)
    assert tick(c)[0].temp_c == 66
    assert fake.calls_of(0, "nvmlDeviceGetTemperature") == 3


def test_turning_mig_off_asks_again_what_mig_hid(opened):
    fake = fleet(1)
    fake.set(0, "nvmlDeviceGetMigMode()", [1, 1])
    fake.set(0, "nvmlDeviceGetMaxMigDeviceCount()", 0)
    fake.set(0, "nvmlDeviceGetUtilizationRates()", real.NVMLError_NotSupported)
    c, _ = opened(fake)
    assert tick(c)[0].util_pct is None
    assert tick(c)[0].util_pct is None
    fake.set(0, "nvmlDeviceGetMigMode()", [0, 0])
    fake.set(0, "nvmlDeviceGetUtilizationRates()", ns(gpu=12, memory=3))
    tick(c)  # sees MIG off
    assert tick(c)[0].util_pct == 12


def test_pstate_unknown_is_none(opened):
    fake = fleet(1)
    fake.set(0, "nvmlDeviceGetPerformanceState()", real.NVML_PSTATE_UNKNOWN)
    c, _ = opened(fake)
    assert tick(c)[0].pstate is None


# -- a GPU falls off the bus ---------------------------------------------------------------

def test_gpu_lost_mid_run_reports_once_and_the_others_go_on(opened):
    fake = fleet(3)
    fake.lose(1, after_samples=2)
    c, _ = opened(fake)
    for t in range(2):
        assert all(s.temp_c == 54 for s in tick(c, t))
        assert c.poll_events() == []
    calls: dict[str, int] = {}
    for t in range(2, 6):
        samples = tick(c, t)
        assert [s.index for s in samples] == [0, 1, 2]
        lost = samples[1]
        assert (lost.uuid, lost.model, lost.vendor) == (
            h100(1)["nvmlDeviceGetUUID()"], "H100", "nvidia")
        assert all(getattr(lost, f) is None for f in ALL_NONE)
        assert lost.processes == ()
        assert samples[0].temp_c == samples[2].temp_c == 54
        events = c.poll_events()
        if t == 2:
            assert [(e.event, e.index, e.ts) for e in events] == [("device-lost", 1, 2)]
            assert "lost" in events[0].message and "\n" not in events[0].message
            calls = dict(fake.counts)
        else:
            assert events == []
    # Once lost, the device is not asked anything again.
    assert {k: v for k, v in fake.counts.items() if k[0] == "gpu1"} == {
        k: v for k, v in calls.items() if k[0] == "gpu1"}
    assert c.lost == frozenset({1})


def test_gpu_lost_is_a_crit_event_and_crit_health_through_the_sampler():
    fake = fleet(2)
    fake.lose(0, after_samples=1)
    c = NvmlCollector(nvml=fake)
    clock = iter(range(100, 200))
    sampler = Sampler(c, node="n1", clock=lambda: float(next(clock)))
    try:
        sampler.hello()
        sampler.tick()
        frames = sampler.tick()
        lost = [f for f in frames if isinstance(f, Event) and f.event == "device-lost"]
        assert len(lost) == 1 and lost[0].severity == "crit" and lost[0].device_index == 0
        report = frames[-1]
        assert isinstance(report, Report)
        assert report.devices[0].health == "crit"
        assert not any("lost" in r for r in report.devices[1].reasons)
        later = sampler.tick()
        assert not any(isinstance(f, Event) and f.event == "device-lost" for f in later)
        for f in frames + later:
            assert decode_frame(encode_frame(f)) == f
    finally:
        c.close()


def test_gpu_lost_inside_the_field_batch(opened):
    fake = fleet(2)
    fake.set(0, field_key(3), real.NVMLError_GpuIsLost)
    c, _ = opened(fake)
    samples = tick(c)
    assert samples[0].temp_c is None and samples[1].temp_c == 54
    assert [e.event for e in c.poll_events()] == ["device-lost"]


def test_gpu_lost_at_open_keeps_a_placeholder(opened):
    fake = fleet(2)
    fake.set("system", "nvmlDeviceGetHandleByIndex(1)", real.NVMLError_GpuIsLost)
    c, _ = opened(fake)
    samples = tick(c)
    assert samples[0].temp_c == 54
    assert samples[1].index == 1 and samples[1].temp_c is None
    assert [(e.event, e.index) for e in c.poll_events()] == [("device-lost", 1)]


# -- version skew --------------------------------------------------------------------------

def test_v3_process_call_mismatch_falls_back_to_v2(opened):
    fake = fleet(2)
    fake.missing |= {"nvmlDeviceGetComputeRunningProcesses",
                     "nvmlDeviceGetGraphicsRunningProcesses"}
    c, _ = opened(fake)
    for t in range(3):
        samples = tick(c, t)
        assert [(p.pid, p.used_mib) for p in samples[0].processes] == [(4242, 38912.0)]
        assert [p.pid for p in samples[1].processes] == [4243]
    # Probed once for the whole library, then the _v2 symbol only.
    assert fake.calls_of(0, "nvmlDeviceGetComputeRunningProcesses") == 1
    assert fake.calls_of(1, "nvmlDeviceGetComputeRunningProcesses") == 0
    assert fake.calls_of(0, "nvmlDeviceGetComputeRunningProcesses_v2") == 3
    assert fake.calls_of(1, "nvmlDeviceGetGraphicsRunningProcesses_v2") == 3


@pytest.mark.parametrize("how", ["library", "binding"])
def test_clock_event_reasons_fall_back_to_the_throttle_name(opened, how):
    fake = fleet(1)
    if how == "library":  # the driver lacks the symbol
        fake.missing.add("nvmlDeviceGetCurrentClocksEventReasons")
    else:  # the binding predates the name
        fake.absent.add("nvmlDeviceGetCurrentClocksEventReasons")
    c, _ = opened(fake)
    assert tick(c)[0].throttle_reasons == ("sw-power-cap", "hw-thermal")
    assert tick(c)[0].throttle_reasons == ("sw-power-cap", "hw-thermal")
    assert fake.calls_of(0, "nvmlDeviceGetCurrentClocksThrottleReasons") == 2


def test_every_clock_event_reason_has_its_short_name(opened):
    fake = fleet(1)
    fake.set(0, "nvmlDeviceGetCurrentClocksEventReasons()", real.nvmlClocksEventReasonAll)
    c, _ = opened(fake)
    assert tick(c)[0].throttle_reasons == (
        "gpu-idle", "app-clocks", "sw-power-cap", "hw-slowdown", "sync-boost", "sw-thermal",
        "hw-thermal", "hw-power-brake", "display-clocks")


# -- field values --------------------------------------------------------------------------

def test_field_entry_errors_null_only_those_entries(opened):
    fake = fleet(1)
    fake.set(0, field_key(82), real.NVMLError_NotSupported)  # no HBM sensor: remembered
    fake.set(0, field_key(230), real.NVMLError_InvalidArgument)  # old driver: remembered
    fake.set(0, field_key(94), real.NVMLError_Unknown)  # transient: asked again
    c, _ = opened(fake)
    for t in range(2):
        s = tick(c, t)
        assert (s[0].mem_temp_c, s[0].recovery_action, s[0].pcie_replays) == (None, None, None)
        assert (s[0].ecc_sbe_volatile, s[0].energy_mj, s[0].remapped_rows_correctable) == (
            3, 987_654_321, 2)
    first, second = (ids for owner, ids in fake.field_requests if owner == "gpu0")
    assert sorted(first) == sorted(FIELDS)
    assert sorted(second) == sorted(set(FIELDS) - {82, 230})


@pytest.mark.parametrize(("fid", "field", "value_type", "raw", "want"), [
    (3, "ecc_sbe_volatile", real.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG, 2**64 - 1, None),
    (83, "energy_mj", real.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG, 2**64 - 1, None),
    (83, "energy_mj", real.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG, 2**63 + 5, None),
    (82, "mem_temp_c", real.NVML_VALUE_TYPE_UNSIGNED_INT, 2**32 - 1, None),
    (82, "mem_temp_c", real.NVML_VALUE_TYPE_SIGNED_INT, 999, None),  # beyond any sensor
    (82, "mem_temp_c", real.NVML_VALUE_TYPE_DOUBLE, 63.5, 63.5),
    (94, "pcie_replays", real.NVML_VALUE_TYPE_UNSIGNED_INT, 7, 7),
    (144, "remap_pending", real.NVML_VALUE_TYPE_UNSIGNED_INT, 1, True),
    (145, "remap_failure", real.NVML_VALUE_TYPE_UNSIGNED_INT, 1, True),
    (230, "recovery_action", real.NVML_VALUE_TYPE_UNSIGNED_INT, 0, "none"),
    (230, "recovery_action", real.NVML_VALUE_TYPE_UNSIGNED_INT, 1, "gpu-reset"),
    (230, "recovery_action", real.NVML_VALUE_TYPE_UNSIGNED_INT, 2, "node-reboot"),
    (230, "recovery_action", real.NVML_VALUE_TYPE_UNSIGNED_INT, 3, "drain-p2p"),
    (230, "recovery_action", real.NVML_VALUE_TYPE_UNSIGNED_INT, 4, "drain-and-reset"),
    (230, "recovery_action", real.NVML_VALUE_TYPE_UNSIGNED_INT, 5, "recover-imex-domain"),
    (230, "recovery_action", real.NVML_VALUE_TYPE_UNSIGNED_INT, 6, "bus-reset"),
    (230, "recovery_action", real.NVML_VALUE_TYPE_UNSIGNED_INT, 7, "system-reboot"),
])
def test_field_values_decode_by_type_and_sentinels_become_none(opened, fid, field, value_type,
                                                               raw, want):
    fake = fleet(1)
    fake.set(0, field_key(fid), field_entry(fid, raw, value_type))
    c, _ = opened(fake)
    assert getattr(tick(c)[0], field) == want


@pytest.mark.parametrize(("key", "raw", "field"), [
    ("nvmlDeviceGetTemperature(0)", 2**32 - 1, "temp_c"),
    ("nvmlDeviceGetPowerUsage()", 2**32 - 1, "power_w"),
    ("nvmlDeviceGetClockInfo(1)", 2**32 - 1, "sm_clock_mhz"),
    ("nvmlDeviceGetFanSpeed()", 104, "fan_pct"),
])
def test_values_outside_the_wire_constraints_are_none(opened, key, raw, field):
    fake = fleet(1)
    fake.set(0, key, raw)
    c, _ = opened(fake)
    assert getattr(tick(c)[0], field) is None


def test_unsupported_batch_falls_back_to_individual_calls(opened):
    fake = fleet(1)
    fake.set(0, field_key("*"), real.NVMLError_NotSupported)
    fake.set(0, "nvmlDeviceGetTotalEccErrors(1, 0)", 2**64 - 1)  # sentinel here too
    c, _ = opened(fake)
    for t in range(2):
        s = tick(c, t)[0]
        assert (s.ecc_sbe_volatile, s.ecc_dbe_volatile, s.ecc_sbe_aggregate) == (3, None, 17)
        assert (s.remapped_rows_correctable, s.remap_pending, s.remap_failure) == (2, False, False)
        assert (s.pcie_replays, s.energy_mj) == (1, 987_654_321)
        assert (s.mem_temp_c, s.recovery_action) == (None, None)  # fields only
    assert len(fake.field_requests) == 1


def test_processes_merge_compute_and_graphics_and_allow_unknown_memory(opened):
    fake = fleet(1)
    proc = ns
    fake.set(0, "nvmlDeviceGetComputeRunningProcesses()", [
        proc(pid=10, usedGpuMemory=None), proc(pid=11, usedGpuMemory=2 * 2**30)])
    fake.set(0, "nvmlDeviceGetGraphicsRunningProcesses()", [
        proc(pid=11, usedGpuMemory=None), proc(pid=12, usedGpuMemory=2**20)])
    fake.set("system", call_key("nvmlSystemGetProcessName", (10,)), real.NVMLError_NotFound)
    fake.set("system", call_key("nvmlSystemGetProcessName", (11,)), "/opt/bin/train")
    c, _ = opened(fake)
    s = tick(c)[0]
    got = [(p.pid, p.used_mib) for p in s.processes]
    assert got == [(10, None), (11, 2048.0), (12, 1.0)]
    names = {p.pid: p.name for p in s.processes}
    assert names[11] == "/opt/bin/train"
    assert names[10]  # from /proc/10/comm, or "?" when that pid is not on this host


def test_mig_devices(opened):
    c, _ = opened(synthetic_h100())
    s = tick(c)[1]
    assert s.mig_mode is True and s.util_pct is None and s.remap_pending is None
    assert [(m.gpu_instance_id, m.compute_instance_id, m.mem_used_mib, m.mem_total_mib)
            for m in s.mig_devices] == [(1, 0, 9216.0, 40192.0), (2, 0, 0.0, 40192.0)]
    assert s.mig_devices[0].uuid.startswith("MIG-")
    assert [(p.pid, p.name, p.used_mib) for p in s.processes] == [
        (5151, "/usr/bin/trainer", None)]


# -- Xid events ----------------------------------------------------------------------------

@pytest.mark.parametrize(("etype", "data", "want"), [
    (XID, 79, ("xid", 79, "Xid 79 (GPU_HAS_FALLEN_OFF_THE_BUS)")),
    (XID, 13, ("xid", 13, "Xid 13 (GR_EXCEPTION)")),
    (XID, 999, ("xid", 999, "Xid 999 (UNKNOWN)")),
    (DBE, 0, ("ecc-dbe", None, "uncorrectable (double-bit) ECC error")),
])
def test_event_thread_delivers_events(opened, etype, data, want):
    c, fake = opened(fleet(2))
    assert fake.push_event(1, etype, data)
    events = wait_events(c, 1)
    assert [(e.event, e.code, e.message) for e in events] == [want]
    assert events[0].index == 1


def test_only_supported_event_types_are_registered(opened):
    fake = fleet(2)
    fake.set(1, "nvmlDeviceGetSupportedEventTypes()", DBE)
    opened(fake)
    (es,) = fake.event_sets
    assert es.masks == {"gpu0": XID | DBE, "gpu1": DBE}
    assert not fake.push_event(1, XID, 31)


def test_recovery_action_event_is_reported_as_xid_154(opened):
    kind = real.nvmlEventTypeGpuRecoveryAction
    fake = fleet(1)
    fake.set(0, "nvmlDeviceGetSupportedEventTypes()", XID | kind)
    c, _ = opened(fake)
    fake.push_event(0, kind, 1)
    (e,) = wait_events(c, 1)
    assert (e.event, e.code) == ("xid", 154) and e.message.endswith("recovery action gpu-reset")


def test_unsupported_registration_logs_and_carries_on(opened, caplog):
    fake = fleet(2)
    fake.set(0, "nvmlDeviceRegisterEvents()", real.NVMLError_NotSupported)
    fake.set(1, "nvmlDeviceRegisterEvents()", real.NVMLError_NotSupported)
    with caplog.at_level(logging.WARNING, logger="fleetops.agent.nvml"):
        c, _ = opened(fake)
    assert "Xid events unavailable" in caplog.text
    assert c._thread is None and fake.event_sets[0].freed
    assert len(tick(c)) == 2


def test_close_stops_the_thread_and_frees_the_set():
    fake = fleet(1)
    c = NvmlCollector(nvml=fake)
    c.open()
    thread = c._thread
    assert thread is not None and thread.is_alive()
    c.close()
    assert not thread.is_alive()
    assert fake.event_sets[0].freed and fake.init_count == 0
    c.close()  # twice is harmless
    assert fake.init_count == 0
    info = c.open()  # and a closed collector opens afresh
    assert [d.index for d in info.devices] == [0] and len(tick(c)) == 1
    c.close()
    assert fake.init_count == 0


# -- open and probe ------------------------------------------------------------------------

@pytest.mark.parametrize(("error", "words"), [
    (real.NVMLError_LibraryNotFound, "libnvidia-ml.so.1 not found"),
    (real.NVMLError_DriverNotLoaded, "kernel driver is not loaded"),
    (real.NVMLError_LibRmVersionMismatch,
     "driver/library version mismatch: reload the nvidia kernel module"),
    (real.NVMLError_NoPermission, "run the agent as root"),
    (real.NVMLError_Unknown, "NVML initialisation failed"),
])
def test_open_failures_are_one_line(error, words, monkeypatch):
    fake = fleet(1)
    fake.init_error = error
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with pytest.raises(CollectorError) as info:
        NvmlCollector(CollectorOptions()).open()
    message = str(info.value)
    assert message.startswith("nvml: ") and words in message and "\n" not in message
    assert "(NVML: " in message
    assert fake.init_count == 0


def test_open_without_the_binding(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    with pytest.raises(CollectorError, match="nvidia-ml-py is not installed"):
        NvmlCollector().open()
    assert NvmlCollector.probe(CollectorOptions()) is False


def test_open_with_no_gpus_shuts_nvml_down():
    fake = FakeNvml({}, {"nvmlDeviceGetCount()": 0})
    with pytest.raises(CollectorError, match="no NVIDIA GPUs"):
        NvmlCollector(nvml=fake).open()
    assert fake.init_count == 0


@pytest.mark.parametrize(("make", "want"), [
    (lambda: fleet(2), True),
    (lambda: FakeNvml({}, {"nvmlDeviceGetCount()": 0}), False),
    (lambda: _failing_init(real.NVMLError_DriverNotLoaded), False),
    (lambda: _failing_init(RuntimeError("anything at all")), False),
])
def test_probe_is_cheap_and_never_raises(monkeypatch, make, want):
    fake = make()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert NvmlCollector.probe(CollectorOptions()) is want
    assert fake.init_count == 0


def _failing_init(error: Any) -> FakeNvml:
    fake = fleet(1)
    fake.init_error = error
    return fake


def test_the_real_binding_without_a_gpu_gives_a_clear_error():
    # This machine may or may not have a GPU; without one the message must say why.
    if NvmlCollector.probe(CollectorOptions()):
        pytest.skip("an NVIDIA GPU is present")
    with pytest.raises(CollectorError, match=r"^nvml: "):
        NvmlCollector().open()


# -- capture and replay --------------------------------------------------------------------

STATIC_SAMPLE_FIELDS = ("uuid", "index", "vendor", "model", "pool", "mem_total_mib",
                        "power_limit_w", "ecc_sbe_aggregate", "ecc_dbe_aggregate",
                        "remapped_rows_correctable", "remapped_rows_uncorrectable",
                        "remap_pending", "remap_failure", "mig_mode",
                        "recovery_action")


def _replay_check(doc: dict[str, Any]) -> None:
    assert doc["format"] == FORMAT
    want = doc["collector"]
    c = NvmlCollector(nvml=FakeNvml.from_capture(doc))
    info = c.open()
    try:
        samples = tick(c)
    finally:
        c.close()
    assert (info.driver_version, info.runtime_version) == (
        want["driver_version"], want["runtime_version"])
    assert json.loads(msgspec.json.encode(info.devices)) == want["devices"]  # tuples as lists
    got = json.loads(msgspec.json.encode(samples))
    assert len(got) == len(want["samples"])
    for g, w in zip(got, want["samples"], strict=True):
        for f in STATIC_SAMPLE_FIELDS:
            assert g.get(f) == w.get(f), f
        # What the device could not report must match too.
        assert {k for k, v in g.items() if v is None} == {k for k, v in w.items() if v is None}
        assert [p["pid"] for p in g["processes"]] == [p["pid"] for p in w["processes"]]
        mig = [(m["uuid"], m["gpu_instance_id"]) for m in g.get("mig_devices") or ()]
        assert mig == [(m["uuid"], m["gpu_instance_id"]) for m in w.get("mig_devices") or ()]


@pytest.mark.parametrize("path", CAPTURES or [None], ids=lambda p: p.name if p else "none")
def test_replay_of_captures(path):
    if path is None:
        pytest.skip("no NVML captures in tests/data/nvml/ "
                    "(python -m agents.collectors.nvml_capture OUT.json on a GPU node)")
    _replay_check(json.loads(path.read_text()))


def test_capture_files_answers_per_device_and_replays():
    doc = json.loads(json.dumps(capture(fleet(2))))  # exactly what a file would hold
    assert set(doc["calls"]) == {"system", "gpu0", "gpu1"}
    gpu0 = doc["calls"]["gpu0"]
    assert gpu0["nvmlDeviceGetFanSpeed()"] == {"error": "NVMLError_NotSupported"}
    assert gpu0["nvmlDeviceGetName()"] == {"value": "NVIDIA H100 80GB HBM3"}
    assert gpu0[field_key(230)]["value"]["obj"]["nvmlReturn"] == 0
    assert doc["calls"]["system"]["nvmlDeviceGetHandleByIndex(1)"] == {
        "value": {"handle": "gpu1"}}
    # The fallbacks are captured too, so a replay can take either path.
    for key in ("nvmlDeviceGetComputeRunningProcesses_v2()",
                "nvmlDeviceGetCurrentClocksThrottleReasons()",
                "nvmlDeviceGetTotalEccErrors(1, 1)", "nvmlDeviceGetRemappedRows()"):
        assert key in gpu0, key
    _replay_check(doc)


def test_replay_serves_the_fallback_paths_too():
    doc = capture(synthetic_h100())
    fake = FakeNvml.from_capture(json.loads(json.dumps(doc)))
    fake.missing |= {"nvmlDeviceGetComputeRunningProcesses",
                     "nvmlDeviceGetCurrentClocksEventReasons"}
    fake.set(0, field_key("*"), real.NVMLError_NotSupported)
    c = NvmlCollector(nvml=fake)
    c.open()
    try:
        s = tick(c)
    finally:
        c.close()
    assert [p.pid for p in s[0].processes] == [4242]
    assert s[0].throttle_reasons == ("sw-power-cap", "hw-thermal")
    assert (s[0].ecc_sbe_aggregate, s[0].remapped_rows_correctable) == (17, 2)


def test_capture_main_writes_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", synthetic_h100())
    out = tmp_path / "node.json"
    assert main([str(out)]) == 0
    assert "2 device(s)" in capsys.readouterr().out
    _replay_check(json.loads(out.read_text()))


def test_capture_main_fails_in_one_line_without_nvml(tmp_path, monkeypatch, capsys):
    fake = fleet(1)
    fake.init_error = real.NVMLError_LibraryNotFound
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert main([str(tmp_path / "x.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("nvml_capture: nvml: ") and "\n" not in err


def test_capture_script_needs_only_the_binding_and_msgspec():
    code = ("import sys, agents.collectors.nvml_capture;"
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'console', 'rich', 'textual', 'pydantic', 'asyncssh', 'prometheus_client'})))")
    root = Path(__file__).parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root)
    assert out.stdout.strip() == ""


def _struct(cls: type, **values: Any) -> Any:
    obj = cls()
    for k, v in values.items():
        setattr(obj, k, v)
    return obj


def test_real_binding_structs_sample_capture_and_replay(opened):
    """The binding's own ctypes types, as a real node returns them."""
    fake = fleet(1)
    fake.set(0, "nvmlDeviceGetMemoryInfo()", _struct(
        real.c_nvmlMemory_t, total=81559 * 2**20, used=2**30, free=80535 * 2**20))
    fake.set(0, "nvmlDeviceGetUtilizationRates()", _struct(real.c_nvmlUtilization_t, gpu=5,
                                                           memory=1))
    fake.set(0, "nvmlDeviceGetPciInfo()", _struct(real.nvmlPciInfo_t, busId=b"00000000:18:00.0"))
    fake.set(0, "nvmlDeviceGetComputeRunningProcesses()", [
        real.nvmlFriendlyObject({"pid": 4242, "usedGpuMemory": 2**30, "gpuInstanceId": 0,
                                 "computeInstanceId": 0})])
    energy = _struct(real.c_nvmlFieldValue_t, fieldId=83, valueType=3, nvmlReturn=0)
    energy.value.ullVal = 123
    temp = _struct(real.c_nvmlFieldValue_t, fieldId=82, valueType=1, nvmlReturn=0)
    temp.value.uiVal = 2**32 - 1
    fake.set(0, field_key(83), energy)
    fake.set(0, field_key(82), temp)
    c, _ = opened(fake)
    s = tick(c)[0]
    assert (s.mem_used_mib, s.util_pct, s.energy_mj, s.mem_temp_c) == (1024.0, 5, 123, None)
    assert c._info[0].pci_bus_id == "00000000:18:00.0"
    assert [(p.pid, p.used_mib) for p in s.processes] == [(4242, 1024.0)]
    _replay_check(json.loads(json.dumps(capture(fake))))


def test_fake_handles_are_not_ctypes_pointers():
    # The collector maps event handles back to indexes by identity; fakes must hash.
    assert {FakeHandle("gpu0"): 0}[FakeHandle("gpu0")] == 0
