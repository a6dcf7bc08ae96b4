"""Hygon DCU `hy-smi --json` (rocm-smi heritage): {"card0": {"<Field (unit)>": "value"}, ...}.

The field names drift between hy-smi and rocm-smi releases ("DCU use (%)", "HCU use (%)",
"GPU use (%)"; "Card Series" vs "Card series"; edge vs junction temperature), so keys are
matched case-insensitively with DCU/HCU read as GPU, against a short list of known spellings.
Values are strings ("49.0", "N/A") or numbers. hy-smi prints no health word in this output, so
`health` is None unless a "...health..." field is present. The uuid is the card's Unique ID,
else `dcu-<bus id>`, else `dcu-<card>`.

What current hyhal releases print (tests/data/real/hy-smi, sources in SOURCES.md):
- not strictly valid JSON: some fields follow a string value with no comma between them
  (`"91.0""Average GFX Core Power (W)": ...`). Exactly that defect is repaired, where the
  standard decoder reports it, and nothing else; other broken JSON is still an error.
- VRAM under MiB-valued keys (`vram Total Memory (MiB)`), older ones in bytes (`(B)`): the
  unit is read from the key.
- empty `"": ""` pairs and many fields the collector does not use (clocks, PCIe bandwidth):
  ignored, the unknown ones with one warning per process.
- a `PCI Bus` value with the board serial appended (`0000:09:00.0 --> SN: ...`), as other
  projects' hy-smi tests record (zstack-utility's zstacklib Haiguang vendor tests): the bus id
  is the leading domain:bus:device.function.
"""

from __future__ import annotations

import json
import re

from agents.parsers import drift
from agents.parsers.errors import ParseError
from agents.parsers.readings import (
    DeviceReading,
    ToolReading,
    index,
    number,
    optional_text,
)

TOOL = "hy-smi"

# Explicit --show* flags: plain --json leaves out VRAM bytes, the bus id and the unique id.
ARGS = (
    "--showtemp", "--showpower", "--showmaxpower", "--showuse", "--showmemuse",
    "--showmeminfo", "vram", "--showuniqueid", "--showbus", "--showproductname",
    "--showdriverversion", "--json",
)

_CARD_KEY = re.compile(r"card\s*(\d+)", re.IGNORECASE)
_TEMP = ("temperature (sensor edge) (c)", "temperature (sensor junction) (c)", "temperature (c)")
_POWER = (
    "average graphics package power (w)", "current socket graphics package power (w)",
    "power (w)",
)
_POWER_CAP = ("max graphics package power (w)", "power cap (w)")
_UTIL = ("gpu use (%)",)
_MEM_UTIL = ("gpu memory use (%)",)
# "vram total memory (b)" (rocm-smi, older hy-smi) and "vram total memory (mib)" (hyhal).
_VRAM = re.compile(r"vram total (used )?memory \((b|kib|mib|gib)\)")
_MIB_PER = {"b": 1 / (1 << 20), "kib": 1 / 1024, "mib": 1.0, "gib": 1024.0}
_NAME = ("card series", "card sku", "device name", "product name", "card model")
_BUS = ("pci bus", "pci bus id", "bus")
_BDF = re.compile(r"[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]")
# Read elsewhere, or known and of no use to the collector: not version drift.
_KNOWN = {
    *_TEMP, *_POWER, *_POWER_CAP, *_UTIL, *_MEM_UTIL, *_NAME, *_BUS, "unique id",
    "card vendor", "serial number", "driver version", "temperature (sensor mem) (c)",
    "temperature (sensor core) (c)", "average gfx core power (w)", "average memory power (w)",
}
# A decoder error of this message at a `"` that opens the next key is the missing comma.
_MISSING_COMMA = "Expecting ',' delimiter"
_KEY_AHEAD = re.compile(r'"(?:[^"\\]|\\.)*"\s*:')
_MAX_REPAIRS = 4096


def _norm(key: str) -> str:
    key = " ".join(key.lower().split())
    return re.sub(r"\b(?:dcu|hcu)\b", "gpu", key)


def _line_of(lines: list[str], needle: str, start: int = 0) -> int:
    """1-based number of the first line at or after `start` holding `needle` (for messages)."""
    for i in range(start, len(lines)):
        if needle in lines[i]:
            return i + 1
    return start + 1


def _decode(doc: str) -> object:
    """json.loads, repairing only hy-smi's missing comma between a string value and a key.

    The standard decoder says where it expected the comma; the repair is made only when a
    string just ended there and a `"key":` starts, so no other malformation is papered over.
    """
    repairs = 0
    while True:
        try:
            value = json.loads(doc)
        except json.JSONDecodeError as exc:
            pos = exc.pos
            if (exc.msg != _MISSING_COMMA or repairs >= _MAX_REPAIRS
                    or not doc[:pos].rstrip().endswith('"') or not _KEY_AHEAD.match(doc, pos)):
                raise
            doc = doc[:pos] + "," + doc[pos:]
            repairs += 1
            continue
        if repairs:
            drift.warn_once(TOOL, "missing-comma", "output is not valid JSON (a ',' missing "
                            "between fields, a known hy-smi defect); read it with the commas put "
                            "back")
        return value


class _Card:
    def __init__(self, fields: dict[str, object]) -> None:
        self.fields = {_norm(k): v for k, v in fields.items()}
        drift.note_unknown(TOOL, "fields", {k for k in fields if _norm(k) not in _KNOWN
                                           and not _VRAM.fullmatch(_norm(k)) and k.strip()})

    def text(self, keys: tuple[str, ...]) -> str | None:
        for key in keys:
            value = self.fields.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                found = optional_text(str(value))
                if found:
                    return found
        return None

    def number(self, keys: tuple[str, ...], unit: str) -> float | None:
        for key in keys:
            if key in self.fields:
                return self._number(key, unit)
        return None

    def _number(self, key: str, unit: str) -> float | None:
        value = self.fields[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"{key!r} is not a number")
        return number(str(value), (unit,))

    def vram_mib(self, used: bool) -> float | None:
        """Total or used VRAM in MiB, from whichever unit the key names."""
        for key in self.fields:
            m = _VRAM.fullmatch(key)
            if m and bool(m.group(1)) == used:
                unit = m.group(2)
                value = self._number(key, {"b": "B", "kib": "KiB", "mib": "MiB"}.get(unit, "GiB"))
                return value * _MIB_PER[unit] if value is not None else None
        return None

    def bus(self) -> str | None:
        bus = self.text(_BUS)
        m = _BDF.match(bus) if bus else None
        return m.group(0) if m else bus

    def name(self) -> str | None:
        # "Card Model" is often the PCI device id ("0x6210"): a name only as a last resort.
        named = [self.text((key,)) for key in _NAME]
        return next((n for n in named if n and not n.lower().startswith("0x")), None) or next(
            (n for n in named if n), None
        )

    def health(self) -> str | None:
        return self.text(tuple(k for k in self.fields if "health" in k))


def _device(card: int, fields: _Card) -> DeviceReading:
    bus = fields.bus()
    unique = fields.text(("unique id",))
    return DeviceReading(
        index=card,
        uuid=unique or (f"dcu-{bus}" if bus else f"dcu-{card}"),
        name=fields.name() or "DCU",
        pci_bus_id=bus,
        health=fields.health(),
        util_pct=fields.number(_UTIL, "%"),
        mem_util_pct=fields.number(_MEM_UTIL, "%"),
        mem_used_mib=fields.vram_mib(used=True),
        mem_total_mib=fields.vram_mib(used=False),
        temp_c=fields.number(_TEMP, "C"),
        power_w=fields.number(_POWER, "W"),
        power_limit_w=fields.number(_POWER_CAP, "W"),
    )


def parse(text: str) -> ToolReading:
    """Read `hy-smi --json` output; raise ParseError naming the line that does not fit."""
    if not text.strip():
        raise ParseError(TOOL, None, "", "empty output")
    lines = text.split("\n")
    # hy-smi, like rocm-smi, may print warnings before the JSON document.
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("{")), None)
    if start is None:
        first = next(i for i, line in enumerate(lines) if line.strip())
        raise ParseError(TOOL, first + 1, lines[first], "expected a JSON object (hy-smi --json)")
    try:
        doc = _decode("\n".join(lines[start:]))
    except json.JSONDecodeError as exc:
        no = start + exc.lineno
        raise ParseError(TOOL, no, lines[no - 1], f"invalid JSON: {exc.msg}") from None
    except (RecursionError, ValueError) as exc:  # nested too deep, an int of 5000 digits
        reason = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise ParseError(TOOL, start + 1, lines[start], f"invalid JSON: {reason}") from None
    if not isinstance(doc, dict):
        raise ParseError(TOOL, start + 1, lines[start], "expected a JSON object of cards")
    reading = ToolReading()
    for key, value in doc.items():
        m = _CARD_KEY.fullmatch(key)
        no = _line_of(lines, json.dumps(key), start)
        if m is None:
            if isinstance(value, dict):
                system = {_norm(k): v for k, v in value.items()}
                version = system.get("driver version")
                if isinstance(version, str) and not reading.driver_version:
                    reading.driver_version = optional_text(version)
            continue
        if not isinstance(value, dict):
            raise ParseError(TOOL, no, lines[no - 1], f"expected an object for {key!r}")
        try:
            card = _Card(value)
            reading.devices.append(_device(index(m.group(1)), card))
        except ValueError as exc:
            raise ParseError(TOOL, no, lines[no - 1], f"{key}: {exc}") from None
        # Some releases print the driver version per card rather than under "system".
        reading.driver_version = reading.driver_version or card.text(("driver version",))
    if not reading.devices:
        raise ParseError(TOOL, start + 1, lines[start], "no cardN entries in the JSON")
    return reading
