"""Every real capture in tests/data/real parses to the values it shows, field by field.

The captures are verbatim vendor-tool output from public sources (tests/data/real/SOURCES.md).
The expected values below were read off each capture by hand, not produced by the parser:
one row per device, in the order the tool prints them, with every field the parser fills.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from agents.parsers import cnmon, hy_smi, npu_smi
from agents.parsers.readings import DeviceReading, ToolReading

REAL = Path(__file__).parent / "data" / "real"
PARSERS = {"npu-smi": npu_smi.parse, "cnmon": cnmon.parse, "hy-smi": hy_smi.parse}

Procs = list[tuple[int, str, float]] | None


class Npu(NamedTuple):
    """What npu-smi prints per chip. It prints no memory utilisation, power limit or fan."""

    index: int
    uuid: str
    name: str
    bus: str | None
    health: str
    util: float
    used: float
    total: float
    temp: float
    power: float | None
    procs: Procs


class Mlu(NamedTuple):
    """What cnmon prints per card. It prints no health word and no memory utilisation."""

    index: int
    uuid: str
    name: str
    bus: str | None
    util: float
    used: float
    total: float
    temp: float
    power: float
    cap: float
    fan: float
    procs: Procs


class Dcu(NamedTuple):
    index: int
    uuid: str
    name: str
    bus: str | None
    util: float
    mem_util: float
    used: float
    total: float
    temp: float
    power: float


def _910b3_25(i: int, bus: str, power: float, temp: float, used: float) -> Npu:
    return Npu(i, f"npu-{i}-0", "910B3", bus, "OK", 0, used, 65536, temp, power,
               [(71867 + i, "", 55278)])


def _a3(i: int, bus: str, used: float, temp: float, power: float | None, procs: Procs) -> Npu:
    return Npu(i, f"npu-{i // 2}-{i % 2}", "Ascend910", bus, "OK", 0, used, 65536, temp, power,
               procs)


NPU_SMI = [
    pytest.param("310-21.0.3.1-digits-only-name-mindxsdk.txt", "21.0.3.1", [
        Npu(0, "npu-0-0", "310", None, "OK", 0, 5324, 8192, 58, 12.8, None),
    ], id="310-21.0.3.1-name-of-digits-no-process-table"),
    pytest.param("310b4-23.0.0-no-process-table-nputop.txt", "23.0.0", [
        Npu(0, "npu-0-0", "310B4", None, "Alarm", 0, 3628, 15609, 65, 0.0, None),
    ], id="310b4-23.0.0-no-process-table"),
    pytest.param("310p3-22.0.2-tool-22.0.0-modelzoo-cgan.txt", "22.0.2", [
        Npu(0, "npu-0-0", "310P3", "0000:5E:00.0", "OK", 0, 932, 21534, 57, 16.7, None),
    ], id="310p3-22.0.2-indented-device-table-only"),
    pytest.param("310p3-24.1.0.1-duo-hugepages-nputop.txt", "24.1.0.1", [
        Npu(0, "npu-1-0", "310P3", "0000:01:00.0", "OK", 0, 16302, 44280, 62, None,
            [(3277562, "mindie_llm_back", 14513)]),
        Npu(1, "npu-1-1", "310P3", "0000:01:00.0", "OK", 0, 15543, 43693, 62, None,
            [(3277565, "mindie_llm_back", 14513)]),
        Npu(2, "npu-2-0", "310P3", "0000:02:00.0", "OK", 0, 35563, 44280, 61, None,
            [(3034986, "mindie_llm_back", 34207)]),
        Npu(3, "npu-2-1", "310P3", "0000:02:00.0", "OK", 0, 35204, 43693, 61, None,
            [(3034989, "mindie_llm_back", 33740)]),
    ], id="310p3-24.1.0.1-duo-two-chips-per-card"),
    pytest.param("910a-21.0.2-no-hugepages-column-ascend-utils.txt", "21.0.2", [
        Npu(0, "npu-1-0", "910A", "0000:3B:00.0", "OK", 0, 0, 32768, 56, 64.3, None),
        Npu(1, "npu-4-0", "910A", "0000:86:00.0", "OK", 0, 0, 32768, 58, 65.6, None),
    ], id="910a-21.0.2-no-hugepages-column"),
    pytest.param("910a-21.0.4-paddle-inference-docs.txt", "21.0.4", [
        Npu(0, "npu-0-0", "910A", "0000:C1:00.0", "OK", 0, 1, 32768, 42, 70.9, None),
        Npu(1, "npu-1-0", "910A", "0000:81:00.0", "OK", 0, 1, 32768, 36, 67.2, None),
    ], id="910a-21.0.4-hbm-over-host-ddr"),
    pytest.param("910b2-26.0.rc1-empty-process-name-vllm-hust-benchmark.txt", "26.0.rc1", [
        Npu(0, "npu-0-0", "910B2", "0000:C1:00.0", "OK", 100, 38711, 65536, 64, 424.0,
            [(1504884, "", 35358)]),
        Npu(1, "npu-1-0", "910B2", "0000:01:00.0", "OK", 0, 3406, 65536, 44, 93.6, []),
    ], id="910b2-26.0.rc1-container-pid-column-empty-name"),
    pytest.param("910b2c-23.0.2.1-two-npus-nputop.txt", "23.0.2.1", [
        Npu(0, "npu-0-0", "910B2C", "0000:5A:00.0", "OK", 0, 20701, 65536, 51, 88.6,
            [(124528, "python3.8", 17400)]),
        Npu(1, "npu-1-0", "910B2C", "0000:19:00.0", "OK", 0, 20687, 65536, 50, 99.6, []),
    ], id="910b2c-23.0.2.1-trailing-blanks"),
    pytest.param("910b2c-23.0.rc3-paddle-docs.txt", "23.0.rc3", [
        Npu(0, "npu-0-0", "910B2C", "0000:5A:00.0", "OK", 0, 4302, 65536, 35, 83.4, []),
        Npu(1, "npu-1-0", "910B2C", "0000:29:00.0", "OK", 0, 4302, 65536, 37, 83.4, []),
    ], id="910b2c-23.0.rc3"),
    pytest.param("910b3-25.3.rc1-container-empty-names-vllm-ascend-5876.txt", "25.3.rc1", [
        _910b3_25(0, "0000:C1:00.0", 100.9, 40, 58626),
        _910b3_25(1, "0000:C2:00.0", 96.2, 39, 58626),
        _910b3_25(2, "0000:81:00.0", 90.5, 39, 58627),
        _910b3_25(3, "0000:82:00.0", 97.7, 39, 58626),
        _910b3_25(4, "0000:01:00.0", 93.6, 44, 58626),
        _910b3_25(5, "0000:02:00.0", 97.0, 43, 58626),
        _910b3_25(6, "0000:41:00.0", 100.0, 42, 58626),
        _910b3_25(7, "0000:42:00.0", 93.5, 42, 58626),
    ], id="910b3-25.3.rc1-eight-npus-empty-process-names"),
    pytest.param("910b3-26.1.0-process-id-in-container-no-root-manager.txt", "26.1.0", [
        Npu(0, "npu-0-0", "910B3", "0000:C1:00.0", "OK", 0, 8676, 65536, 50, 100.0,
            [(485946, "pytest", 5175)]),
        Npu(1, "npu-1-0", "910B3", "0000:C2:00.0", "OK", 0, 3403, 65536, 48, 94.8, []),
        Npu(2, "npu-2-0", "910B3", "0000:81:00.0", "OK", 0, 3403, 65536, 49, 90.0, []),
        Npu(3, "npu-3-0", "910B3", "0000:82:00.0", "OK", 0, 3407, 65536, 48, 96.5, []),
        Npu(4, "npu-4-0", "910B3", "0000:01:00.0", "OK", 0, 3403, 65536, 52, 96.5, []),
        Npu(5, "npu-5-0", "910B3", "0000:02:00.0", "OK", 0, 3402, 65536, 49, 97.4, []),
        Npu(6, "npu-6-0", "910B3", "0000:41:00.0", "OK", 0, 3402, 65536, 49, 97.8, []),
        Npu(7, "npu-7-0", "910B3", "0000:42:00.0", "OK", 0, 3403, 65536, 51, 93.3, []),
    ], id="910b3-26.1.0-process-id-in-container"),
    pytest.param("910b4-24.1.rc1-fastllm-docs.txt", "24.1.rc1", [
        Npu(0, "npu-0-0", "910B4", "0000:82:00.0", "OK", 0, 2773, 32768, 37, 81.1, []),
    ], id="910b4-24.1.rc1-32gib"),
    pytest.param("910prob-23.0.rc1-single-npu2-vllm-ascend-237.txt", "23.0.rc1", [
        Npu(0, "npu-2-0", "910ProB", "0000:41:00.0", "OK", 0, 1, 32768, 39, 81.1, []),
    ], id="910prob-23.0.rc1-single-card-as-npu-2"),
    pytest.param("910prob-24.1.0-eight-npus-vllm-ascend-1047.txt", "24.1.0", [
        Npu(0, "npu-0-0", "910ProB", "0000:C1:00.0", "OK", 0, 18, 32768, 38, 78.0, []),
        Npu(1, "npu-1-0", "910ProB", "0000:81:00.0", "OK", 0, 8, 32768, 38, 75.8, []),
        Npu(2, "npu-2-0", "910ProB", "0000:41:00.0", "OK", 0, 5, 32768, 39, 78.2, []),
        Npu(3, "npu-3-0", "910ProB", "0000:01:00.0", "OK", 0, 4, 32768, 39, 76.5, []),
        Npu(4, "npu-4-0", "910ProB", "0000:C2:00.0", "OK", 0, 10, 32768, 38, 78.8, []),
        Npu(5, "npu-5-0", "910ProB", "0000:82:00.0", "OK", 0, 14, 32768, 38, 77.0, []),
        Npu(6, "npu-6-0", "910ProB", "0000:42:00.0", "OK", 0, 3, 32768, 40, 83.0, []),
        Npu(7, "npu-7-0", "910ProB", "0000:02:00.0", "OK", 0, 2, 32768, 38, 77.3, []),
    ], id="910prob-24.1.0-eight-npus"),
    pytest.param("a3-ascend910-24.1.rc3.7-sixteen-chips-vllm-ascend-2971.txt", "24.1.rc3.7", [
        _a3(0, "0000:9D:00.0", 3419, 37, 178.7, []),
        _a3(1, "0000:9F:00.0", 3196, 36, None, []),
        _a3(2, "0000:99:00.0", 3413, 36, 186.4, []),
        _a3(3, "0000:9B:00.0", 3189, 36, None, []),
        _a3(4, "0000:95:00.0", 3412, 37, 177.2, []),
        _a3(5, "0000:97:00.0", 3190, 37, None, []),
        _a3(6, "0000:91:00.0", 3411, 36, 178.5, []),
        _a3(7, "0000:93:00.0", 3187, 37, None, []),
        _a3(8, "0000:8D:00.0", 3403, 37, 180.6, []),
        _a3(9, "0000:8F:00.0", 3200, 37, None, []),
        _a3(10, "0000:89:00.0", 3398, 36, 189.2, []),
        _a3(11, "0000:8B:00.0", 3202, 36, None, []),
        _a3(12, "0000:85:00.0", 3400, 39, 183.7, []),
        _a3(13, "0000:87:00.0", 3203, 37, None, []),
        _a3(14, "0000:81:00.0", 3418, 37, 186.1, []),
        _a3(15, "0000:83:00.0", 3187, 38, None, []),
    ], id="a3-24.1.rc3.7-sixteen-dies-phy-id"),
    pytest.param("a3-ascend910-25.2.0-phy-id-nputop.txt", "25.2.0", [
        _a3(0, "0000:9C:00.0", 3133, 37, 162.8, []),
        _a3(1, "0000:9E:00.0", 2876, 37, None, []),
        _a3(2, "0000:37:00.0", 3116, 38, 167.1, []),
        _a3(3, "0000:39:00.0", 10568, 38, None, [(990711, "python", 7746)]),
    ], id="a3-25.2.0-process-on-second-die"),
]

CNMON = [
    pytest.param("mlu370-x4-4.20.11-inited-driver-columns-paddle-docs.txt", "4.20.11", [
        Mlu(0, "mlu-0", "MLU370-X4", None, 0, 0, 23308, 32, 30, 150, 0, []),
        Mlu(1, "mlu-1", "MLU370-X4", None, 0, 0, 23308, 33, 25, 150, 0, []),
        Mlu(2, "mlu-2", "MLU370-X4", None, 0, 0, 23308, 30, 26, 150, 0, []),
    ], id="mlu370-x4-4.20.11-driver-in-the-card-row"),
    pytest.param("mlu370-x4-5.10.10-exclusive-paddle-docs.txt", "5.10.10", [
        Mlu(0, "mlu-0000:1B:00.0", "MLU370-X4", "0000:1B:00.0", 0, 0, 23308, 41, 27, 150, 0, []),
        Mlu(1, "mlu-0000:36:00.0", "MLU370-X4", "0000:36:00.0", 0, 0, 23308, 41, 27, 150, 0, []),
    ], id="mlu370-x4-5.10.10-exclusive-misaligned-cell"),
    pytest.param("mlu370-x8-5.10.13-paddle-docs.txt", "5.10.13", [
        Mlu(0, "mlu-0000:39:00.0", "MLU370-X8", "0000:39:00.0", 0, 0, 23374, 32, 106, 250, 0, []),
        Mlu(1, "mlu-0000:3D:00.0", "MLU370-X8", "0000:3D:00.0", 0, 0, 23374, 39, 106, 250, 0, []),
    ], id="mlu370-x8-5.10.13"),
]

HY_SMI = [
    pytest.param("bw-missing-commas-mib-keys-llm-monitor.json", None, [
        Dcu(0, "dcu-0", "BW", None, 0.0, 98, 64169, 65520, 54.0, 91.0),
        Dcu(1, "dcu-1", "BW", None, 0.0, 98, 64104, 65520, 52.0, 84.0),
    ], id="bw-missing-commas-mib-vram-keys"),
]


def _read(tool: str, capture: str) -> ToolReading:
    return PARSERS[tool]((REAL / tool / capture).read_text())


def _procs(device: DeviceReading) -> Procs:
    if device.processes is None:
        return None
    return [(p.pid, p.name, p.used_mib) for p in device.processes]


@pytest.mark.parametrize(("capture", "driver", "expected"), NPU_SMI)
def test_npu_smi_capture(capture: str, driver: str, expected: list[Npu]) -> None:
    reading = _read("npu-smi", capture)
    assert reading.driver_version == driver
    got = [Npu(d.index, d.uuid, d.name, d.pci_bus_id, d.health, d.util_pct, d.mem_used_mib,
               d.mem_total_mib, d.temp_c, d.power_w, _procs(d)) for d in reading.devices]
    assert got == expected
    assert all(d.mem_util_pct is d.power_limit_w is d.fan_pct is None for d in reading.devices)


@pytest.mark.parametrize(("capture", "driver", "expected"), CNMON)
def test_cnmon_capture(capture: str, driver: str, expected: list[Mlu]) -> None:
    reading = _read("cnmon", capture)
    assert reading.driver_version == driver
    got = [Mlu(d.index, d.uuid, d.name, d.pci_bus_id, d.util_pct, d.mem_used_mib,
               d.mem_total_mib, d.temp_c, d.power_w, d.power_limit_w, d.fan_pct, _procs(d))
           for d in reading.devices]
    assert got == expected
    assert all(d.health is d.mem_util_pct is None for d in reading.devices)


@pytest.mark.parametrize(("capture", "driver", "expected"), HY_SMI)
def test_hy_smi_capture(capture: str, driver: str | None, expected: list[Dcu]) -> None:
    reading = _read("hy-smi", capture)
    assert reading.driver_version == driver
    got = [Dcu(d.index, d.uuid, d.name, d.pci_bus_id, d.util_pct, d.mem_util_pct,
               d.mem_used_mib, d.mem_total_mib, d.temp_c, d.power_w) for d in reading.devices]
    assert got == expected
    # hy-smi prints no health word, power cap, fan or processes in this output.
    assert all(d.health is d.power_limit_w is d.fan_pct is d.processes is None
               for d in reading.devices)


def test_every_capture_is_tested_and_has_a_recorded_source() -> None:
    tested = {(tool, p.values[0]) for tool, params in
              (("npu-smi", NPU_SMI), ("cnmon", CNMON), ("hy-smi", HY_SMI)) for p in params}
    on_disk = {(f.parent.name, f.name) for f in REAL.glob("*/*") if f.is_file()}
    assert on_disk == tested
    sources = (REAL / "SOURCES.md").read_text()
    assert all(f"`{name}`" in sources for _, name in on_disk)
    assert len([1 for tool, _ in on_disk if tool == "npu-smi"]) >= 15
