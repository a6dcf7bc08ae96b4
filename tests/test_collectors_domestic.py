"""The domestic collectors against a stand-in for each vendor tool: a shell script in tmp_path."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest

from agents.collectors import smi
from agents.collectors.ascend import AscendCollector
from agents.collectors.base import CollectorError, CollectorOptions
from agents.collectors.dcu import DcuCollector
from agents.collectors.mlu import MluCollector
from agents.collectors.ppu import PpuCollector
from agents.collectors.registry import collector_class
from agents.collectors.smi import SmiCollector
from agents.wire import Hello, Report, decode_frame, encode_frame

DATA = Path(__file__).parent / "data"


def fake_tool(directory: Path, body: str, name: str = "tool") -> Path:
    """An executable shell script standing in for a vendor tool; it records its arguments."""
    script = directory / name
    args = directory / f"{name}.args"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(args))}\n{body}\n')
    script.chmod(0o755)
    return script


def cat(directory: Path, text: str, name: str = "tool") -> Path:
    capture = directory / f"{name}.out"
    capture.write_text(text)
    return fake_tool(directory, f"cat {shlex.quote(str(capture))}", name)


def round_trip(collector: SmiCollector) -> tuple[Hello, Report]:
    """open() and sample() through the wire codec, as a reader would get them."""
    info = collector.open()
    hello = Hello(
        v=1, node="n", seq=0, ts=1.0, agent_version="t", hostname="n",
        collectors=[collector.name], interval_s=1.0, driver_version=info.driver_version,
        devices=info.devices,
    )
    report = Report(v=1, node="n", seq=1, ts=1.0, devices=collector.sample(1.0))
    decoded = [decode_frame(encode_frame(frame)) for frame in (hello, report)]
    assert isinstance(decoded[0], Hello) and isinstance(decoded[1], Report)
    return decoded[0], decoded[1]


CASES = [
    pytest.param(
        AscendCollector, "npu_smi_910b.txt", "FLEETOPS_NPU_SMI", "23.0.rc3", 8,
        dict(uuid="npu-6-0", index=6, vendor="huawei", model="910B", pool="domestic",
             util_pct=87.0, mem_used_mib=61728.0, mem_total_mib=65536.0, temp_c=58.0,
             power_w=356.7, vendor_health="OK"),
        [(2489821, "python3.9", 58286.0), (2489907, "python3.9", 120.0)],
        id="ascend-910b",
    ),
    pytest.param(
        AscendCollector, "npu_smi_310p.txt", "FLEETOPS_NPU_SMI", "23.0.0", 3,
        dict(uuid="npu-9-0", index=2, model="310P", power_w=None, temp_c=61.0,
             mem_used_mib=1529.0, mem_total_mib=44280.0, vendor_health="Alarm"),
        [],
        id="ascend-310p",
    ),
    pytest.param(
        AscendCollector, "npu_smi_single_npu2.txt", "FLEETOPS_NPU_SMI", "24.1.rc2", 1,
        dict(uuid="npu-2-0", index=0, model="910B4", mem_total_mib=32768.0),
        [(301144, "python", 2048.0)],
        id="ascend-single-npu-2-is-a-32gib-910b4",
    ),
    pytest.param(
        PpuCollector, "ppu_smi.csv", "FLEETOPS_PPU_SMI", "1.5.2", 4,
        dict(uuid="PPU-6b1f0a54-2c3e-4d8e-9f10-1a2b3c4d5e03", index=2, vendor="thead",
             model="PPU", util_pct=0.0, mem_used_mib=512.0, mem_total_mib=98304.0, temp_c=39.0,
             power_w=None, power_limit_w=400.0, vendor_health="Warning"),
        [],
        id="ppu-csv",
    ),
    pytest.param(
        MluCollector, "cnmon_590.txt", "FLEETOPS_CNMON", "5.10.13", 4,
        dict(uuid="mlu-0000:39:00.0", index=0, vendor="cambricon", model="MLU590",
             util_pct=93.0, mem_used_mib=72348.0, mem_total_mib=98304.0, temp_c=61.0,
             power_w=312.0, fan_pct=0.0, vendor_health=None),
        [(184223, "python3 train.py --config llama.yaml", 71680.0)],
        id="mlu-cnmon-5x",
    ),
    pytest.param(
        MluCollector, "cnmon_370_v4.txt", "FLEETOPS_CNMON", "4.20.18", 2,
        dict(uuid="mlu-1", index=1, model="MLU370-X8", util_pct=21.0, mem_used_mib=8192.0),
        [],
        id="mlu-cnmon-4x",
    ),
    pytest.param(
        DcuCollector, "hy_smi.json", "FLEETOPS_HY_SMI", "6.3.9-V1.5.1", 2,
        dict(uuid="0x8c1d2a7e35b04f2a", index=1, vendor="hygon", model="K100_AI",
             util_pct=98.0, mem_util_pct=37.0, mem_used_mib=57344.0, mem_total_mib=65520.0,
             temp_c=63.0, power_w=356.0, power_limit_w=400.0, vendor_health=None),
        [],
        id="dcu-hy-smi-json",
    ),
]


@pytest.mark.parametrize(
    ("cls", "capture", "env", "driver", "count", "expected", "processes"), CASES
)
@pytest.mark.parametrize("via", ["smi-path", "env-var"])
def test_collector_reads_its_tool_into_wire_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: str, cls: type[SmiCollector],
    capture: str, env: str, driver: str, count: int, expected: dict, processes: list,
) -> None:
    tool = cat(tmp_path, (DATA / capture).read_text())
    if via == "env-var":
        monkeypatch.setenv(env, str(tool))
        options = CollectorOptions(smi_timeout_s=10)
    else:
        monkeypatch.delenv(env, raising=False)
        options = CollectorOptions(smi_path=str(tool), smi_timeout_s=10)
    collector = cls(options)
    assert cls.probe(options)

    hello, report = round_trip(collector)

    assert hello.driver_version == driver
    assert len(report.devices) == len(hello.devices) == count
    sample = next(s for s in report.devices if s.uuid == expected["uuid"])
    assert {k: getattr(sample, k) for k in expected} == expected
    assert [(p.pid, p.name, p.used_mib) for p in sample.processes] == processes
    for s in report.devices:
        assert s.pool == "domestic" and s.vendor == cls.vendor and s.uuid
        assert s.health == "ok" and s.reasons == ()  # left to the health rules
    # Static facts and samples agree, and the ids are stable from one run to the next.
    assert [d.uuid for d in hello.devices] == [s.uuid for s in report.devices]
    assert [s.uuid for s in collector.sample(2.0)] == [s.uuid for s in report.devices]
    assert len({s.uuid for s in report.devices}) == count


@pytest.mark.parametrize(
    ("cls", "capture", "info"),
    [
        pytest.param(AscendCollector, "npu_smi_910b.txt",
                     dict(vendor="huawei", model="910B", name="910B3", mem_total_mib=65536.0,
                          pci_bus_id="0000:C1:00.0", slowdown_temp_c=90.0), id="ascend"),
        pytest.param(PpuCollector, "ppu_smi.csv",
                     dict(vendor="thead", model="PPU", name="PPU-ZW810E", mem_total_mib=98304.0,
                          pci_bus_id="00000000:3B:00.0", power_limit_max_w=400.0), id="ppu"),
        pytest.param(MluCollector, "cnmon_590.txt",
                     dict(vendor="cambricon", model="MLU590", name="MLU590-M9",
                          pci_bus_id="0000:39:00.0", power_limit_max_w=350.0), id="mlu"),
        pytest.param(MluCollector, "cnmon_370_v4.txt",
                     dict(model="MLU370-X8", pci_bus_id=None, slowdown_temp_c=None),
                     id="mlu-not-in-catalog"),
        pytest.param(DcuCollector, "hy_smi.json",
                     dict(vendor="hygon", model="K100_AI", name="K100_AI",
                          mem_total_mib=65520.0, pci_bus_id="0000:33:00.0"), id="dcu"),
    ],
)
def test_open_describes_each_device(
    tmp_path: Path, cls: type[SmiCollector], capture: str, info: dict
) -> None:
    tool = cat(tmp_path, (DATA / capture).read_text())
    device = cls(CollectorOptions(smi_path=str(tool))).open().devices[0]
    assert {k: getattr(device, k) for k in info} == info
    assert device.pool == "domestic" and device.index == 0


@pytest.mark.parametrize(
    ("cls", "args"),
    [
        pytest.param(AscendCollector, ["info"], id="ascend"),
        pytest.param(PpuCollector, ["--query-ppu=index,uuid,name,pci.bus_id,driver_version,"
                                    "utilization.ppu,utilization.memory,memory.used,"
                                    "memory.total,temperature.ppu,power.draw,power.limit,"
                                    "health", "--format=csv,nounits"], id="ppu"),
        pytest.param(MluCollector, [""], id="mlu"),  # printf prints one empty line for no args
        pytest.param(DcuCollector, None, id="dcu"),
    ],
)
def test_tool_is_run_with_its_arguments(
    tmp_path: Path, cls: type[SmiCollector], args: list[str] | None
) -> None:
    tool = fake_tool(tmp_path, "exit 1")
    with pytest.raises(CollectorError):
        cls(CollectorOptions(smi_path=str(tool))).sample(0.0)
    seen = (tmp_path / "tool.args").read_text().split("\n")[:-1]
    if args is None:
        assert seen[-1] == "--json" and "--showmeminfo" in seen
    else:
        assert seen == args


# --- values the wire would reject ----------------------------------------------------------------

ALL_NONE = ("util_pct", "temp_c", "power_w", "mem_used_mib", "mem_total_mib")

HOSTILE_VALUES = [
    pytest.param(
        AscendCollector,
        (DATA / "npu_smi_910b.txt").read_text()
        .replace("95.6        36", "-5.0        1e30")
        .replace("0           0    / 0          3393 / 65536",
                 "999         0    / 0          -3 / 1e300")
        .replace("0     910B3", "0     \x1b]0;owned\x07910B3\x1b[2J", 1)
        .replace("2489821       | python3.9", "99999999999   | python3.9"),
        "910B3", ALL_NONE,
        id="ascend",
    ),
    pytest.param(
        PpuCollector,
        (DATA / "ppu_smi.csv").read_text()
        .replace("97 %, 41 %, 81240 MiB, 98304 MiB, 71, 382.40 W",
                 "101 %, -1 %, -5 MiB, 1e30 MiB, 301, -1 W")
        .replace(", PPU-ZW810E,", ", \x1b[31mPPU-ZW810E\x1b[0m,", 1),
        "PPU-ZW810E", (*ALL_NONE, "mem_util_pct"),
        id="ppu",
    ),
    pytest.param(
        MluCollector,
        (DATA / "cnmon_590.txt").read_text()
        .replace("| 0     /   MLU590-M9    v1.1.6 |         0000:39:00.0 | 93%",
                 "| 0     /   \x1b[2JMLU590-M9    v1.1.6 |         0000:39:00.0 | 1e3%")
        .replace(" 0%   61C        312 W/ 350 W | 72348 MiB/ 98304 MiB",
                 "-7%   -101C     1e9 W/ 350 W | -1 MiB/ 1e20 MiB"),
        "MLU590-M9", (*ALL_NONE, "fan_pct"),
        id="mlu",
    ),
    pytest.param(
        DcuCollector,
        (DATA / "hy_smi.json").read_text()
        .replace('"49.0"', '"-273.15"').replace('"118.0"', '"1e30"')
        .replace('"DCU use (%)": "0"', '"DCU use (%)": "250"', 1)
        .replace('"68702699520"', '"-1"', 1).replace('"1048576000"', '"-1048576"', 1)
        .replace('"K100_AI"', '"\\u001b]0;x\\u0007K100_AI"', 1),
        "K100_AI", ALL_NONE,
        id="dcu",
    ),
]


@pytest.mark.parametrize(("cls", "text", "name", "dropped"), HOSTILE_VALUES)
def test_values_outside_wire_bounds_become_none_and_frames_still_decode(
    tmp_path: Path, cls: type[SmiCollector], text: str, name: str, dropped: tuple[str, ...]
) -> None:
    tool = cat(tmp_path, text)
    hello, report = round_trip(cls(CollectorOptions(smi_path=str(tool))))
    first = report.devices[0]
    assert {field: getattr(first, field) for field in dropped} == dict.fromkeys(dropped)
    assert hello.devices[0].name == name
    assert hello.devices[0].mem_total_mib is None
    assert all(p.pid != 99999999999 for s in report.devices for p in s.processes)


# --- failures -----------------------------------------------------------------------------------

COLLECTORS = [
    pytest.param(AscendCollector, id="ascend"),
    pytest.param(PpuCollector, id="ppu"),
    pytest.param(MluCollector, id="mlu"),
    pytest.param(DcuCollector, id="dcu"),
]


def _one_line_error(cls: type[SmiCollector], options: CollectorOptions) -> str:
    collector = cls(options)
    with pytest.raises(CollectorError) as caught:
        collector.open()
    message = str(caught.value)
    assert message.startswith(f"{cls.tool_default}: ")
    assert "\n" not in message and "\x1b" not in message
    return message


@pytest.mark.parametrize("cls", COLLECTORS)
def test_tool_exiting_non_zero_is_a_collector_error(
    tmp_path: Path, cls: type[SmiCollector]
) -> None:
    tool = fake_tool(tmp_path, "echo 'dcmi_init failed \x1b[2J (-8005)' >&2\necho more >&2\nexit 3")
    message = _one_line_error(cls, CollectorOptions(smi_path=str(tool)))
    assert "exited with status 3: dcmi_init failed \\x1b[2J (-8005)" in message


@pytest.mark.parametrize("cls", COLLECTORS)
def test_tool_hanging_past_the_timeout_is_killed(tmp_path: Path, cls: type[SmiCollector]) -> None:
    tool = fake_tool(tmp_path, "sleep 10")
    started = time.monotonic()
    message = _one_line_error(cls, CollectorOptions(smi_path=str(tool), smi_timeout_s=0.5))
    assert time.monotonic() - started < 5
    assert message.endswith("timed out after 0.5s")


@pytest.mark.parametrize("cls", COLLECTORS)
def test_missing_tool_is_a_collector_error_and_probes_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cls: type[SmiCollector]
) -> None:
    missing = CollectorOptions(smi_path=str(tmp_path / "no-such-smi"))
    assert "not found" in _one_line_error(cls, missing)
    assert not cls.probe(missing)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cls.tool_env
    monkeypatch.delenv(cls.tool_env, raising=False)
    assert not cls.probe(CollectorOptions())


@pytest.mark.parametrize("cls", COLLECTORS)
def test_unparseable_output_is_a_collector_error_naming_the_line(
    tmp_path: Path, cls: type[SmiCollector]
) -> None:
    tool = cat(tmp_path, "Segmentation fault\n")
    message = _one_line_error(cls, CollectorOptions(smi_path=str(tool)))
    assert "line 1" in message


@pytest.mark.parametrize("cls", COLLECTORS)
def test_probe_finds_the_tool_by_default_name_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cls: type[SmiCollector]
) -> None:
    assert cls.tool_env and cls.tool_default
    monkeypatch.delenv(cls.tool_env, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    fake_tool(tmp_path, "exit 0", name=cls.tool_default)
    assert cls.probe(CollectorOptions())
    # A non-executable file at an explicit path is not the tool.
    plain = tmp_path / "plain"
    plain.write_text("")
    assert not cls.probe(CollectorOptions(smi_path=str(plain)))


@pytest.mark.parametrize(
    ("name", "cls"),
    [("ascend", AscendCollector), ("ppu", PpuCollector), ("mlu", MluCollector),
     ("dcu", DcuCollector)],
)
def test_registry_names_the_domestic_collectors(name: str, cls: type[SmiCollector]) -> None:
    assert collector_class(name) is cls
    assert cls.name == name


# --- real captures through the collectors: catalog entry by printed name, reported memory -------

REAL = DATA / "real" / "npu-smi"


@pytest.fixture
def fresh_memory_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smi, "_MEM_WARNED", set())


@pytest.mark.parametrize(
    ("capture", "model", "mem_mib", "warned"),
    [
        pytest.param("910b4-24.1.rc1-fastllm-docs.txt", "910B4", 32768.0, False, id="910b4"),
        pytest.param("910prob-24.1.0-eight-npus-vllm-ascend-1047.txt", "910", 32768.0, False,
                     id="910prob-first-generation"),
        pytest.param("910a-21.0.4-paddle-inference-docs.txt", "910", 32768.0, False, id="910a"),
        pytest.param("910b3-26.1.0-process-id-in-container-no-root-manager.txt", "910B",
                     65536.0, False, id="910b3"),
        pytest.param("a3-ascend910-25.2.0-phy-id-nputop.txt", "910_93", 65536.0, False,
                     id="a3"),
        pytest.param("310-21.0.3.1-digits-only-name-mindxsdk.txt", "310", 8192.0, False,
                     id="310"),
        pytest.param("310p3-22.0.2-tool-22.0.0-modelzoo-cgan.txt", "310P", 21534.0, False,
                     id="310p-pro-within-tolerance"),
        pytest.param("310p3-24.1.0.1-duo-hugepages-nputop.txt", "310P", 44280.0, True,
                     id="310p-duo-48gib-chips"),
        pytest.param("310b4-23.0.0-no-process-table-nputop.txt", "310B", 15609.0, True,
                     id="310b-board-variant"),
    ],
)
def test_catalog_entry_by_printed_name_and_reported_memory_wins(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fresh_memory_warnings: None,
    capture: str, model: str, mem_mib: float, warned: bool,
) -> None:
    tool = cat(tmp_path, (REAL / capture).read_text())
    collector = AscendCollector(CollectorOptions(smi_path=str(tool)))
    with caplog.at_level("WARNING", logger="fleetops.agent.smi"):
        hello, report = round_trip(collector)
        collector.open()  # a second hello: the same mismatch is not said again
    assert {d.model for d in hello.devices} == {s.model for s in report.devices} == {model}
    assert hello.devices[0].mem_total_mib == report.devices[0].mem_total_mib == mem_mib
    messages = [r.getMessage() for r in caplog.records]
    if warned:
        assert len(messages) == 1
        assert f"reports {int(mem_mib)} MiB but the catalog's {model} has" in messages[0]
    else:
        assert messages == []


# --- ppu-smi: a field a release does not know degrades to null ------------------------------------

PPU_CSV = (
    'fields=$(printf "%s" "$1" | sed "s/^--query-ppu=//")\n'
    'echo "$fields" >> {calls}\n'
    "{refuse}\n"
    'echo "index, uuid, name, pci.bus_id, memory.used [MiB], memory.total [MiB], '
    'utilization.gpu [%]"\n'
    'echo "0, PPU-1, PPU-ZW810E, 00000000:3B:00.0, 512, 98304, 7"\n'
)


def ppu_tool(tmp_path: Path, refuse: str) -> tuple[Path, Path]:
    calls = tmp_path / "calls"
    body = PPU_CSV.format(calls=shlex.quote(str(calls)), refuse=refuse)
    return fake_tool(tmp_path, body), calls


def test_ppu_refused_field_is_dropped_once_and_remembered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tool, calls = ppu_tool(tmp_path, 'case "$fields" in *health*) echo \'Field "health" is not '
                                     "a valid field to query.' >&2; exit 2;; esac")
    collector = PpuCollector(CollectorOptions(smi_path=str(tool)))
    with caplog.at_level("WARNING", logger="fleetops.agent.ppu"):
        collector.open()
        sample = collector.sample(1.0)[0]
    runs = calls.read_text().split()
    assert len(runs) == 3  # refused, retried without it, then straight to the narrower query
    assert "health" in runs[0] and "health" not in runs[1] and runs[1] == runs[2]
    assert sample.vendor_health is None and sample.mem_used_mib == 512.0
    assert [r.getMessage() for r in caplog.records] == [
        "ppu-smi: this release refuses field 'health'; it is reported as null"]


def test_ppu_refused_spelling_is_swapped_for_the_other_one(tmp_path: Path) -> None:
    tool, calls = ppu_tool(tmp_path, 'case "$fields" in *utilization.ppu*) echo \'Field '
                                     '"utilization.ppu" is not a valid field to query.\' >&2; '
                                     "exit 2;; esac")
    sample = PpuCollector(CollectorOptions(smi_path=str(tool))).sample(1.0)[0]
    runs = calls.read_text().split()
    assert "utilization.gpu" in runs[1] and "utilization.ppu" not in runs[1]
    assert sample.util_pct == 7.0


def test_ppu_refusal_naming_no_field_falls_back_to_the_documented_fields(tmp_path: Path) -> None:
    tool, calls = ppu_tool(tmp_path, 'case "$fields" in *power*) echo "Invalid field in query" '
                                     ">&2; exit 2;; esac")
    sample = PpuCollector(CollectorOptions(smi_path=str(tool))).sample(1.0)[0]
    runs = calls.read_text().split()
    assert runs[1] == "index,uuid,name,pci.bus_id,driver_version,memory.used,memory.total"
    assert sample.mem_total_mib == 98304.0 and sample.power_w is None


@pytest.mark.parametrize(
    "refuse",
    [
        pytest.param('echo "Failed to initialize HGML: Driver Not Loaded" >&2; exit 9',
                     id="not-a-refusal"),
        pytest.param("echo 'Field \"index\" is not a valid field to query.' >&2; exit 2",
                     id="the-index-itself"),
    ],
)
def test_ppu_other_failures_are_not_retried(tmp_path: Path, refuse: str) -> None:
    tool, calls = ppu_tool(tmp_path, refuse)
    with pytest.raises(CollectorError) as caught:
        PpuCollector(CollectorOptions(smi_path=str(tool))).sample(1.0)
    assert str(caught.value).startswith("ppu-smi: exited with status")
    assert len(calls.read_text().split()) == 1
