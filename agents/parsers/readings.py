"""What a parser read from one run of a vendor tool, before it becomes wire types.

Parsers fill these; `agents.collectors.smi` turns them into DeviceInfo/DeviceSample and drops
values outside the wire's bounds. Strings here are already cleaned with `clean_text`; numbers
are as printed (range checks belong to the wire boundary, not to the parser).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_TEXT = 256  # the wire's Name length
# Device indices beyond this are garbage, not hardware; the wire itself would allow 2**63.
MAX_INDEX = 65_535

# What the vendor tools print for "cannot report": a metric is then None, never 0.
_ABSENT = {"", "na", "n/a", "[n/a]", "-", "--", "not supported", "[not supported]"}
NULL_TOKENS = frozenset({*_ABSENT, "unknown"})
# Text fields keep "Unknown": as a health word it means something (the device is not up).
NULL_TEXT = frozenset(_ABSENT)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST, or to the end), any other ESC + one char.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?|\x9b")
# C0/C1 controls, DEL, and the bidi overrides that can make a name render as something else.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass
class ProcessReading:
    pid: int
    name: str
    used_mib: float | None = None


@dataclass
class DeviceReading:
    index: int
    uuid: str  # the tool's own id, or one the parser synthesised from stable fields
    name: str  # model name as the tool prints it
    pci_bus_id: str | None = None
    health: str | None = None  # the vendor's health word, verbatim
    util_pct: float | None = None
    mem_util_pct: float | None = None
    mem_used_mib: float | None = None
    mem_total_mib: float | None = None
    temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    fan_pct: float | None = None
    # None: this tool's output does not list processes; []: it does, and there are none.
    processes: list[ProcessReading] | None = None


@dataclass
class ToolReading:
    devices: list[DeviceReading] = field(default_factory=list)
    driver_version: str | None = None


def clean_text(text: str, limit: int = MAX_TEXT) -> str:
    """Tool text fit for the wire: escape sequences and control characters removed."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text)).strip()[:limit]


def optional_text(text: str) -> str | None:
    """Cleaned text, or None where the tool printed its "not available" token."""
    cleaned = clean_text(text)
    return None if cleaned.lower() in NULL_TEXT else cleaned


def number(token: str, units: tuple[str, ...] = ()) -> float | None:
    """A printed number, optionally with a unit suffix; None for the tool's "not available".

    Raises ValueError for anything else, so a parser can say which line was wrong.
    """
    text = token.strip()
    if text.lower() in NULL_TOKENS:
        return None
    for unit in units:
        if text.endswith(unit):
            text = text[: -len(unit)].rstrip()
            break
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"not a number: {token!r}")
    return float(text)


def index(token: str) -> int:
    """A device index: a small non-negative integer."""
    text = token.strip()
    if not text.isascii() or not text.isdigit() or int(text) > MAX_INDEX:
        raise ValueError(f"not a device index: {token!r}")
    return int(text)
