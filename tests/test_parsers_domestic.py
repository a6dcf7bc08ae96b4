"""The domestic SMI parsers: documented layouts in tests/data, the layout variations real nodes
print (tests/data/real, checked value by value in test_real_captures.py), version drift that must
not stop a collector, and hostile output that must not pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.parsers import cnmon, drift, hy_smi, npu_smi, ppu_smi
from agents.parsers.errors import ParseError, neutralise
from agents.parsers.readings import ToolReading, clean_text

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"
Parser = Callable[[str], ToolReading]

PARSERS: dict[str, Parser] = {
    "npu-smi": npu_smi.parse,
    "ppu-smi": ppu_smi.parse,
    "cnmon": cnmon.parse,
    "hy-smi": hy_smi.parse,
}
# A capture of each tool, to cut up, corrupt and feed to the other parsers.
CAPTURE = {
    "npu-smi": "npu_smi_910b.txt",
    "ppu-smi": "ppu_smi.csv",
    "cnmon": "cnmon_590.txt",
    "hy-smi": "hy_smi.json",
}


def read(name: str) -> str:
    return (DATA / name).read_text()


@pytest.fixture(autouse=True)
def _fresh_drift_warnings() -> None:
    drift.reset()


def lines(name: str, stop: int) -> str:
    return "\n".join(read(name).split("\n")[:stop]) + "\n"


def without_line(name: str, no: int) -> str:
    rows = read(name).split("\n")
    return "\n".join(rows[: no - 1] + rows[no:])


# --- captures ---------------------------------------------------------------------------------

GOLDEN = [
    pytest.param(
        "npu-smi", "npu_smi_910b.txt", "23.0.rc3", 8,
        {0: dict(index=0, uuid="npu-0-0", name="910B3", pci_bus_id="0000:C1:00.0", health="OK",
                 util_pct=0.0, mem_used_mib=3393.0, mem_total_mib=65536.0, temp_c=36.0,
                 power_w=95.6, processes=[]),
         5: dict(uuid="npu-5-0", health="Warning"),
         6: dict(util_pct=87.0, mem_used_mib=61728.0, power_w=356.7)},
        id="npu-smi-910b-eight-npus-hbm-is-the-memory",
    ),
    pytest.param(
        "npu-smi", "npu_smi_310p.txt", "23.0.0", 3,
        {0: dict(index=0, uuid="npu-8-0", name="310P3", power_w=None, temp_c=54.0,
                 mem_used_mib=1530.0, mem_total_mib=44280.0),
         1: dict(index=1, uuid="npu-8-1", power_w=None, util_pct=12.0, mem_total_mib=43693.0),
         2: dict(index=2, uuid="npu-9-0", health="Alarm", pci_bus_id="0000:83:00.0")},
        id="npu-smi-310p-device-column-no-hbm-na-power",
    ),
    pytest.param(
        "npu-smi", "npu_smi_single_npu2.txt", "24.1.rc2", 1,
        {0: dict(index=0, uuid="npu-2-0", name="910B4", mem_used_mib=2858.0,
                 mem_total_mib=32768.0)},
        id="npu-smi-single-card-as-npu-2",
    ),
    pytest.param(
        "ppu-smi", "ppu_smi.csv", "1.5.2", 4,
        {0: dict(index=0, uuid="PPU-6b1f0a54-2c3e-4d8e-9f10-1a2b3c4d5e01", name="PPU-ZW810E",
                 pci_bus_id="00000000:3B:00.0", health="Healthy", util_pct=97.0,
                 mem_util_pct=41.0, mem_used_mib=81240.0, mem_total_mib=98304.0, temp_c=71.0,
                 power_w=382.4, power_limit_w=400.0, processes=None),
         2: dict(power_w=None, health="Warning"),
         3: dict(util_pct=None, mem_util_pct=None, power_limit_w=None, power_w=97.85)},
        id="ppu-smi-csv-with-units-and-na",
    ),
    pytest.param(
        "ppu-smi", "ppu_smi_nounits.csv", "1.5.2", 2,
        {0: dict(util_pct=12.0, mem_used_mib=1024.0, mem_total_mib=98304.0, power_w=120.5),
         1: dict(power_w=None, mem_used_mib=0.0)},
        id="ppu-smi-csv-nounits",
    ),
    pytest.param(
        "cnmon", "cnmon_590.txt", "5.10.13", 4,
        {0: dict(index=0, uuid="mlu-0000:39:00.0", name="MLU590-M9", pci_bus_id="0000:39:00.0",
                 health=None, util_pct=93.0, mem_used_mib=72348.0, mem_total_mib=98304.0,
                 temp_c=61.0, power_w=312.0, power_limit_w=350.0, fan_pct=0.0),
         1: dict(processes=[]),
         2: dict(power_w=None, power_limit_w=350.0, fan_pct=None)},
        id="cnmon-5x-two-rows-per-card",
    ),
    pytest.param(
        "cnmon", "cnmon_370_v4.txt", "4.20.18", 2,
        {0: dict(uuid="mlu-0", name="MLU370-X8", pci_bus_id=None, mem_total_mib=23374.0),
         1: dict(uuid="mlu-1", util_pct=21.0, mem_used_mib=8192.0, processes=[])},
        id="cnmon-4x-inited-and-vmemory-columns",
    ),
    pytest.param(
        "hy-smi", "hy_smi.json", "6.3.9-V1.5.1", 2,
        {0: dict(index=0, uuid="0x8c1d2a7e35b04f19", name="K100_AI", pci_bus_id="0000:33:00.0",
                 health=None, temp_c=49.0, power_w=118.0, power_limit_w=400.0, util_pct=0.0,
                 mem_used_mib=1000.0, mem_total_mib=65520.0, processes=None),
         1: dict(util_pct=98.0, mem_util_pct=37.0, mem_used_mib=57344.0)},
        id="hy-smi-json-dcu-keys-bytes-to-mib",
    ),
    pytest.param(
        "hy-smi", "hy_smi_rocm_keys.json", None, 2,
        {0: dict(index=0, uuid="dcu-0000:04:00.0", name="Z100L", power_w=None, util_pct=3.0,
                 mem_total_mib=32752.0),
         1: dict(index=2, uuid="dcu-2", pci_bus_id=None, mem_used_mib=None, power_w=87.0)},
        id="hy-smi-json-rocm-key-variants-no-unique-id",
    ),
]


@pytest.mark.parametrize(("tool", "capture", "driver", "count", "expected"), GOLDEN)
def test_capture_parses_to_expected_readings(
    tool: str, capture: str, driver: str | None, count: int, expected: dict[int, dict]
) -> None:
    reading = PARSERS[tool](read(capture))
    assert reading.driver_version == driver
    assert len(reading.devices) == count
    for position, fields in expected.items():
        device = reading.devices[position]
        assert {k: getattr(device, k) for k in fields} == fields


@pytest.mark.parametrize("tool", PARSERS)
def test_crlf_line_endings_read_the_same(tool: str) -> None:
    text = read(CAPTURE[tool])
    assert PARSERS[tool](text.replace("\n", "\r\n")) == PARSERS[tool](text)


def test_npu_smi_processes_attach_to_their_npu_and_chip() -> None:
    devices = npu_smi.parse(read("npu_smi_910b.txt")).devices
    assert [(p.pid, p.name, p.used_mib) for p in devices[6].processes or []] == [
        (2489821, "python3.9", 58286.0),
        (2489907, "python3.9", 120.0),
    ]
    assert all(d.processes == [] for i, d in enumerate(devices) if i != 6)
    single = npu_smi.parse(read("npu_smi_single_npu2.txt")).devices[0]
    assert [(p.pid, p.used_mib) for p in single.processes or []] == [(301144, 2048.0)]


def test_cnmon_process_keeps_its_command_line() -> None:
    device = cnmon.parse(read("cnmon_590.txt")).devices[0]
    assert [(p.pid, p.name, p.used_mib) for p in device.processes or []] == [
        (184223, "python3 train.py --config llama.yaml", 71680.0)
    ]


def test_ppu_smi_matches_columns_by_header_not_position() -> None:
    text = (
        "health, temperature.gpu, index, memory.total [GiB], name\n"
        "OK, 50, 3, 96, PPU-ZW810E\n"
    )
    device = ppu_smi.parse(text).devices[0]
    assert (device.index, device.temp_c, device.mem_total_mib, device.health) == (
        3, 50.0, 96 * 1024.0, "OK"
    )
    assert device.uuid == "ppu-3"  # nothing better to go on


def test_ppu_smi_no_devices_message_is_an_empty_reading() -> None:
    assert ppu_smi.parse("No devices were found\n").devices == []


# --- layouts real nodes print, and version drift ------------------------------------------------

WARNS = "fleetops.agent.parsers"


def real(tool: str, name: str) -> str:
    return (REAL / tool / name).read_text()


def test_npu_smi_device_table_without_process_table_is_complete() -> None:
    # 310B on 23.0.x and 310/910A on 20.x/21.x print no process table: not truncation.
    devices = npu_smi.parse(lines("npu_smi_910b.txt", 30)).devices
    assert len(devices) == 8
    assert all(d.processes is None for d in devices)
    assert devices[6].mem_used_mib == 61728.0


def test_npu_smi_name_of_digits_only_is_a_model_name_not_an_id_column() -> None:
    device = npu_smi.parse(real("npu-smi", "310-21.0.3.1-digits-only-name-mindxsdk.txt")).devices[0]
    assert (device.name, device.uuid, device.power_w, device.mem_total_mib) == (
        "310", "npu-0-0", 12.8, 8192.0)


def test_npu_smi_unknown_columns_are_ignored_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = real("npu-smi", "910b3-26.1.0-process-id-in-container-no-root-manager.txt")
    plain = npu_smi.parse(text)
    wider = (text.replace("HBM-Usage(MB)           |", "HBM-Usage(MB) NPU-Util(%)|")
             .replace("| Process id in container |", "| Process id in container | Priority |")
             .replace("| NA                      |", "| NA                      | 0        |"))
    with caplog.at_level("WARNING", logger=WARNS):
        assert npu_smi.parse(wider) == plain
        assert npu_smi.parse(wider) == plain
    warnings = " / ".join(r.getMessage() for r in caplog.records)
    # Each unknown column is named once, however often the output is read.
    assert warnings.count("'NPU-Util(%)'") == 1 and warnings.count("'Priority'") == 1
    assert warnings.startswith("npu-smi: ignoring columns")


def test_npu_smi_known_layouts_raise_no_drift_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger=WARNS):
        for capture in sorted((REAL / "npu-smi").iterdir()):
            npu_smi.parse(capture.read_text())
        for capture in sorted((REAL / "cnmon").iterdir()):
            cnmon.parse(capture.read_text())
    assert caplog.records == []


def test_hy_smi_missing_commas_are_repaired_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = real("hy-smi", "bw-missing-commas-mib-keys-llm-monitor.json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with caplog.at_level("WARNING", logger=WARNS):
        first, second = hy_smi.parse(text), hy_smi.parse(text)
    assert first == second and len(first.devices) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert sum("missing" in m for m in messages) == 1
    # The clock and PCIe fields this collector does not read: named once, never an error.
    assert sum("ignoring fields" in m for m in messages) == 1
    assert "'fclk clock speed'" in next(m for m in messages if "ignoring fields" in m)


def test_hy_smi_vram_unit_is_read_from_the_key() -> None:
    for unit, total, used in (("B", "34359738368", "272629760"), ("MiB", "32768", "260"),
                              ("GiB", "32", "0.25390625")):
        doc = {"card0": {f"vram Total Memory ({unit})": total,
                         f"vram Total Used Memory ({unit})": used}}
        device = hy_smi.parse(json.dumps(doc)).devices[0]
        assert (device.mem_total_mib, device.mem_used_mib) == (32768.0, 260.0)


def test_hy_smi_bus_id_with_a_serial_appended() -> None:
    # As zstack-utility's Haiguang tests record hy-smi printing it.
    doc = {"card0": {"PCI Bus": "0000:06:00.0 --> SN: TRCW390010030401", "HCU use (%)": "3.0"}}
    device = hy_smi.parse(json.dumps(doc)).devices[0]
    assert (device.pci_bus_id, device.uuid, device.util_pct) == (
        "0000:06:00.0", "dcu-0000:06:00.0", 3.0)


def test_hy_smi_driver_version_printed_per_card() -> None:
    doc = {"card0": {"Driver version": "6.1.0", "HCU use (%)": "10"}}
    assert hy_smi.parse(json.dumps(doc)).driver_version == "6.1.0"


def test_cnmon_4x_driver_version_comes_from_the_card_row() -> None:
    reading = cnmon.parse(real("cnmon", "mlu370-x4-4.20.11-inited-driver-columns-paddle-docs.txt"))
    assert reading.driver_version == "4.20.11"
    assert [d.pci_bus_id for d in reading.devices] == [None, None, None]


def test_ppu_smi_bracketed_values_are_null_not_errors() -> None:
    text = ("index, name, utilization.ppu [%], memory.used [MiB], power.draw [W], health\n"
            "0, PPU-ZW810E, [Unknown Error], [Not Supported], [N/A], [Not Supported]\n")
    device = ppu_smi.parse(text).devices[0]
    assert (device.util_pct, device.mem_used_mib, device.power_w, device.health) == (
        None, None, None, None)
    assert device.name == "PPU-ZW810E"


def test_ppu_smi_unknown_columns_are_ignored_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = "index, clocks.current.cu [MHz], memory.total [MiB]\n0, 1500, 98304\n"
    with caplog.at_level("WARNING", logger=WARNS):
        ppu_smi.parse(text)
        device = ppu_smi.parse(text).devices[0]
    assert device.mem_total_mib == 98304.0
    assert len(caplog.records) == 1 and "'clocks.current.cu'" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("message", "field"),
    [
        pytest.param('Field "health" is not a valid field to query.', "health", id="nvidia-style"),
        pytest.param("ERROR: unknown field utilization.ppu in --query-ppu", "utilization.ppu",
                     id="unquoted"),
        pytest.param("Invalid combination of input arguments", None, id="names-no-field"),
        pytest.param('Field "frobnicate" is not a valid field to query.', None,
                     id="not-one-we-asked-for"),
        pytest.param("Failed to initialize HGML: Driver Not Loaded", None, id="not-a-refusal"),
        pytest.param("unknown field: memory.used or memory.total", None, id="ambiguous"),
    ],
)
def test_ppu_smi_reads_which_field_a_query_refused(message: str, field: str | None) -> None:
    assert ppu_smi.rejected_field(message, ppu_smi.FIELDS) == field


def test_ppu_smi_fields_asked_for_are_documented_or_degrade() -> None:
    # What the manual does not name may be refused by a release; only these may never go.
    assert set(ppu_smi.DOCUMENTED) <= set(ppu_smi.FIELDS)
    assert ppu_smi.ESSENTIAL.issubset(ppu_smi.DOCUMENTED)
    assert ppu_smi.args(["index", "name"]) == ("--query-ppu=index,name", "--format=csv,nounits")


# --- hostile output ---------------------------------------------------------------------------

GARBAGE = bytes(range(256)).decode("utf-8", errors="replace") * 3 + "\n\x00\x1b[2J\xff"

HOSTILE = [
    *(pytest.param(tool, "", id=f"{tool}-empty") for tool in PARSERS),
    *(pytest.param(tool, " \n\n\t\n", id=f"{tool}-blank") for tool in PARSERS),
    *(pytest.param(tool, GARBAGE, id=f"{tool}-binary-garbage") for tool in PARSERS),
    *(
        pytest.param(tool, read(CAPTURE[other]), id=f"{tool}-given-{other}-output")
        for tool in PARSERS
        for other in PARSERS
        if other != tool
    ),
    *(
        pytest.param(tool, "NVIDIA-SMI has failed because it couldn't communicate with the "
                     "NVIDIA driver.\n", id=f"{tool}-given-an-error-message")
        for tool in PARSERS
    ),
    pytest.param("npu-smi", lines("npu_smi_910b.txt", 6), id="npu-smi-header-only"),
    pytest.param("ppu-smi", lines("ppu_smi.csv", 1), id="ppu-smi-header-only"),
    pytest.param("cnmon", lines("cnmon_590.txt", 7), id="cnmon-header-only"),
    pytest.param("hy-smi", '{"system": {"Driver version": "6.3.9"}}', id="hy-smi-no-cards"),
    pytest.param("hy-smi", "{}", id="hy-smi-empty-object"),
    pytest.param("npu-smi", read("npu_smi_910b.txt")[:700], id="npu-smi-cut-mid-row"),
    pytest.param("npu-smi", lines("npu_smi_910b.txt", 10), id="npu-smi-npu-row-without-chip"),
    pytest.param("npu-smi", lines("npu_smi_910b.txt", 29), id="npu-smi-cut-after-a-chip-row"),
    pytest.param("npu-smi", lines("npu_smi_910b.txt", 28), id="npu-smi-cut-after-an-npu-row"),
    pytest.param(
        "npu-smi", (REAL / "npu-smi" / "a3-ascend910-24.1.rc3.7-sixteen-chips-vllm-ascend-2971.txt")
        .read_text()[:3000], id="npu-smi-real-capture-cut-mid-row",
    ),
    pytest.param("npu-smi", without_line("npu_smi_910b.txt", 7),
                 id="npu-smi-chip-row-before-any-npu-row"),
    pytest.param(
        "npu-smi", read("npu_smi_910b.txt").replace("36                0    / 0", " " * 26, 1),
        id="npu-smi-npu-row-with-one-value",
    ),
    pytest.param(
        "npu-smi", read("npu_smi_910b.txt").replace("| Process memory(MB)      |", "| Memory |"),
        id="npu-smi-process-header-without-memory-column",
    ),
    pytest.param("hy-smi", '{"card0": {"DCU use (%)": 1 "VRAM Total Memory (B)": "1"}}',
                 id="hy-smi-missing-comma-after-a-number-is-not-repaired"),
    pytest.param("hy-smi", '{"card0": {"DCU use (%)": "1" "VRAM"}}',
                 id="hy-smi-missing-comma-before-a-non-key-is-not-repaired"),
    pytest.param("npu-smi", lines("npu_smi_910b.txt", 31)[:-20], id="npu-smi-cut-in-processes"),
    pytest.param("ppu-smi", read("ppu_smi.csv")[:400], id="ppu-smi-cut-mid-row"),
    pytest.param("cnmon", lines("cnmon_590.txt", 11), id="cnmon-card-row-without-second"),
    pytest.param("cnmon", read("cnmon_590.txt")[:900], id="cnmon-cut-mid-row"),
    pytest.param("hy-smi", read("hy_smi.json")[:500], id="hy-smi-cut-mid-json"),
    pytest.param("hy-smi", "[" * 100_000, id="hy-smi-deep-nesting"),
    pytest.param("hy-smi", '{"card0": "hot"}', id="hy-smi-card-not-an-object"),
    pytest.param(
        "npu-smi", read("npu_smi_910b.txt").replace("95.6  ", "lots  "), id="npu-smi-word-as-power"
    ),
    pytest.param("ppu-smi", read("ppu_smi.csv").replace("97 %", "high"), id="ppu-smi-word-as-util"),
    pytest.param("cnmon", read("cnmon_590.txt").replace("61C", "hot"), id="cnmon-word-as-temp"),
    pytest.param(
        "hy-smi", read("hy_smi.json").replace('"49.0"', '"warm"'), id="hy-smi-word-as-temp"
    ),
    pytest.param(
        "npu-smi", read("npu_smi_910b.txt").replace("| 7     910B3", "| 6     910B3"),
        id="npu-smi-same-npu-twice",
    ),
    pytest.param(
        "npu-smi", read("npu_smi_910b.txt").replace("| 0     910B3", "| 99999999999 910B3"),
        id="npu-smi-absurd-npu-id",
    ),
]


@pytest.mark.parametrize(("tool", "text"), HOSTILE)
def test_hostile_output_is_one_line_parse_error_naming_the_tool(tool: str, text: str) -> None:
    with pytest.raises(ParseError) as caught:
        PARSERS[tool](text)
    message = str(caught.value)
    assert message.startswith(f"{tool}: ")
    assert "\n" not in message and "\x1b" not in message and "\x00" not in message
    assert len(message) < 300
    assert caught.value.tool == tool


@pytest.mark.parametrize(
    ("tool", "text", "line_no"),
    [
        pytest.param(
            "npu-smi", read("npu_smi_910b.txt").replace("95.6        36", "95.6        x6"), 7,
            id="npu-smi",
        ),
        pytest.param("ppu-smi", read("ppu_smi.csv").replace("71,", "seventy,"), 2, id="ppu-smi"),
        pytest.param("cnmon", read("cnmon_590.txt").replace("34C", "34F"), 12, id="cnmon"),
        pytest.param("hy-smi", 'warning: x\n{"card0":\n  {"DCU use (%)": "lots"}}', 2,
                     id="hy-smi"),
        pytest.param("hy-smi", '{"card0": {\n"DCU use (%)": "1",,\n}}', 2, id="hy-smi-syntax"),
    ],
)
def test_error_names_the_offending_line(tool: str, text: str, line_no: int) -> None:
    with pytest.raises(ParseError) as caught:
        PARSERS[tool](text)
    assert caught.value.line_no == line_no
    assert f"line {line_no}: cannot parse '" in str(caught.value)


def test_parse_error_neutralises_and_truncates_the_line() -> None:
    error = ParseError("cnmon", 7, "\x1b]0;pwned\x07" + "x" * 200, "expected a card row")
    message = str(error)
    assert message.startswith("cnmon: line 7: cannot parse '\\x1b]0;pwned\\x07xxx")
    assert message.endswith("...': expected a card row")
    assert "\x1b" not in message and "\x07" not in message
    assert len(error.line) == 80
    assert str(ParseError("hy-smi", None, "", "empty output")) == (
        "hy-smi: cannot parse output: empty output"
    )
    assert neutralise("a\u202eb\tc") == "a\\u202eb\\tc"


ESC = "\x1b[2J\x1b]0;owned\x07"

ESCAPED_NAMES = [
    pytest.param(
        "npu-smi", read("npu_smi_910b.txt").replace("0     910B3", f"0     {ESC}910B3", 1)
        .replace("python3.9", f"{ESC}python3.9", 1),
        "910B3", id="npu-smi",
    ),
    pytest.param(
        "ppu-smi", read("ppu_smi.csv").replace(", PPU-ZW810E,", f", {ESC}PPU-ZW810E,", 1),
        "PPU-ZW810E", id="ppu-smi",
    ),
    pytest.param(
        "cnmon", read("cnmon_590.txt").replace("/   MLU590-M9", f"/   {ESC}MLU590-M9", 1),
        "MLU590-M9", id="cnmon",
    ),
    pytest.param(
        "hy-smi", read("hy_smi.json").replace('"K100_AI"', json.dumps(ESC + "K100_AI"), 1),
        "K100_AI", id="hy-smi",
    ),
]


@pytest.mark.parametrize(("tool", "text", "name"), ESCAPED_NAMES)
def test_escape_sequences_are_stripped_from_names(tool: str, text: str, name: str) -> None:
    device = PARSERS[tool](text).devices[0]
    assert device.name == name
    for process in device.processes or []:
        assert "owned" not in process.name and clean_text(process.name) == process.name


ABSURD = [
    pytest.param(
        "npu-smi", read("npu_smi_910b.txt").replace("95.6        36", "-5.0        1e30"),
        dict(power_w=-5.0, temp_c=1e30), id="npu-smi",
    ),
    pytest.param(
        "ppu-smi", read("ppu_smi.csv").replace("97 %, 41 %, 81240 MiB", "-3 %, 1e30 %, -1 MiB"),
        dict(util_pct=-3.0, mem_util_pct=1e30, mem_used_mib=-1.0), id="ppu-smi",
    ),
    pytest.param(
        "cnmon", read("cnmon_590.txt").replace("61C        312 W", "-400C      1e30 W"),
        dict(temp_c=-400.0, power_w=1e30), id="cnmon",
    ),
    pytest.param(
        "hy-smi", read("hy_smi.json").replace('"118.0"', '"-118"').replace('"49.0"', "1e30"),
        dict(power_w=-118.0, temp_c=1e30), id="hy-smi",
    ),
]


@pytest.mark.parametrize(("tool", "text", "fields"), ABSURD)
def test_absurd_numbers_are_read_as_printed_for_the_collector_to_judge(
    tool: str, text: str, fields: dict[str, float]
) -> None:
    device = PARSERS[tool](text).devices[0]
    assert {k: getattr(device, k) for k in fields} == fields


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        pytest.param("910B3", "910B3", id="plain"),
        pytest.param("\x1b[1;31m910B3\x1b[0m", "910B3", id="csi-colour"),
        pytest.param("\x1b]0;title\x07X", "X", id="osc-bel"),
        pytest.param("\x1b]8;;http://x\x1b\\X", "X", id="osc-st"),
        pytest.param("a\x00b\x7fc\x9bd\te", "abcde", id="controls"),
        pytest.param("\u202eevil", "evil", id="bidi-override"),
        pytest.param("x" * 300, "x" * 256, id="capped-at-256"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


# --- fuzz: anything in, a reading or a ParseError out -------------------------------------------


def _survives(tool: str, text: str) -> None:
    try:
        PARSERS[tool](text)
    except ParseError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("tool", PARSERS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=400))
def test_arbitrary_text_never_crashes(tool: str, text: str) -> None:
    _survives(tool, text)


@pytest.mark.parametrize("tool", PARSERS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mangled_captures_never_crash(tool: str, data: st.DataObject) -> None:
    rows = read(CAPTURE[tool]).split("\n")
    i = data.draw(st.integers(0, len(rows) - 1))
    j = data.draw(st.integers(0, max(len(rows[i]) - 1, 0)))
    junk = data.draw(st.text(max_size=12))
    rows[i] = rows[i][:j] + junk + rows[i][j + data.draw(st.integers(0, 8)):]
    _survives(tool, "\n".join(rows))
