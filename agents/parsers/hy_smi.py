"""Hygon DCU `hy-smi --json` (rocm-smi heritage): {"card0": {"<Field (unit)>": "value"}, ...}.

The field names drift between hy-smi and rocm-smi releases ("DCU use (%)" vs "GPU use (%)",
"Card Series" vs "Card series", edge vs junction temperature), so keys are matched
case-insensitively with DCU/HCU read as GPU, against a short list of known spellings. Values
are strings ("49.0", "N/A") or numbers. VRAM comes in bytes and becomes MiB. hy-smi prints no
health word in this output, so `health` is None unless a "...health..." field is present.
The uuid is the card's Unique ID, else `dcu-<bus id>`, else `dcu-<card>`.
"""

from __future__ import annotations

import json
import re

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
_VRAM_TOTAL = ("vram total memory (b)",)
_VRAM_USED = ("vram total used memory (b)",)
_NAME = ("card series", "card sku", "device name", "product name", "card model")
_BYTES_PER_MIB = 1 << 20


def _norm(key: str) -> str:
    key = " ".join(key.lower().split())
    return re.sub(r"\b(?:dcu|hcu)\b", "gpu", key)


def _line_of(lines: list[str], needle: str, start: int = 0) -> int:
    """1-based number of the first line at or after `start` holding `needle` (for messages)."""
    for i in range(start, len(lines)):
        if needle in lines[i]:
            return i + 1
    return start + 1


class _Card:
    def __init__(self, fields: dict[str, object]) -> None:
        self.fields = {_norm(k): v for k, v in fields.items()}

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
                value = self.fields[key]
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise ValueError(f"{key!r} is not a number")
                return number(str(value), (unit,))
        return None

    def name(self) -> str | None:
        # "Card model" is often the PCI device id ("0x6210"): a name only as a last resort.
        named = [self.text((key,)) for key in _NAME]
        return next((n for n in named if n and not n.lower().startswith("0x")), None) or next(
            (n for n in named if n), None
        )

    def health(self) -> str | None:
        return self.text(tuple(k for k in self.fields if "health" in k))


def _device(card: int, fields: _Card) -> DeviceReading:
    total, used = fields.number(_VRAM_TOTAL, "B"), fields.number(_VRAM_USED, "B")
    bus = fields.text(("pci bus", "pci bus id", "bus"))
    unique = fields.text(("unique id",))
    return DeviceReading(
        index=card,
        uuid=unique or (f"dcu-{bus}" if bus else f"dcu-{card}"),
        name=fields.name() or "DCU",
        pci_bus_id=bus,
        health=fields.health(),
        util_pct=fields.number(_UTIL, "%"),
        mem_util_pct=fields.number(_MEM_UTIL, "%"),
        mem_used_mib=used / _BYTES_PER_MIB if used is not None else None,
        mem_total_mib=total / _BYTES_PER_MIB if total is not None else None,
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
        doc = json.loads("\n".join(lines[start:]))
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
                fields = _Card(value)
                reading.driver_version = reading.driver_version or fields.text(("driver version",))
            continue
        if not isinstance(value, dict):
            raise ParseError(TOOL, no, lines[no - 1], f"expected an object for {key!r}")
        try:
            reading.devices.append(_device(index(m.group(1)), _Card(value)))
        except ValueError as exc:
            raise ParseError(TOOL, no, lines[no - 1], f"{key}: {exc}") from None
    if not reading.devices:
        raise ParseError(TOOL, start + 1, lines[start], "no cardN entries in the JSON")
    return reading
