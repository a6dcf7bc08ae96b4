"""The domestic SMI parsers: captures in tests/data, and hostile output that must not pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.parsers import cnmon, hy_smi, npu_smi, ppu_smi
from agents.parsers.errors import ParseError, neutralise
from agents.parsers.readings import ToolReading, clean_text

DATA = Path(__file__).parent / "data"
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


def lines(name: str, stop: int) -> str:
    return "\n".join(read(name).split("\n")[:stop]) + "\n"


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
    pytest.param("npu-smi", lines("npu_smi_910b.txt", 29), id="npu-smi-no-process-table"),
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
