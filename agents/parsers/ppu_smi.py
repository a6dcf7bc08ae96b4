"""T-Head PPU `ppu-smi --query-ppu=<fields> --format=csv[,nounits]` (SAIL PPU-SMI manual v2.1.1).

The CSV mirrors nvidia-smi's: a header line naming each field with its unit in brackets
(`memory.used [MiB]`), then one line per PPU; with `nounits` the values drop their unit
suffix but the header keeps it. `[N/A]` / `N/A` mean the PPU cannot report the field.
Columns are matched by header name, so field order and extra fields do not matter, and
nvidia-smi-style names (`utilization.gpu`, `temperature.gpu`) are accepted too.
"""

from __future__ import annotations

import csv
import re

from agents.parsers.errors import ParseError
from agents.parsers.readings import (
    DeviceReading,
    ToolReading,
    index,
    number,
    optional_text,
)

TOOL = "ppu-smi"

# What the collector asks for; `driver_version` rides along because ppu-smi has no banner.
FIELDS = (
    "index", "uuid", "name", "pci.bus_id", "driver_version", "utilization.ppu",
    "utilization.memory", "memory.used", "memory.total", "temperature.ppu", "power.draw",
    "power.limit", "health",
)
ARGS = ("--query-ppu=" + ",".join(FIELDS), "--format=csv,nounits")

_ALIASES = {
    "utilization.gpu": "utilization.ppu",
    "temperature.gpu": "temperature.ppu",
    "gpu_uuid": "uuid",
    "gpu_name": "name",
    "gpu_bus_id": "pci.bus_id",
    "power.limit.enforced": "power.limit",
    "enforced.power.limit": "power.limit",
}
_MIB_PER = {"": 1.0, "MiB": 1.0, "MB": 1.0, "GiB": 1024.0, "GB": 1024.0, "KiB": 1 / 1024}
_HEADER_CELL = re.compile(r"([A-Za-z0-9_.]+)\s*(?:\[([^\]]*)\])?")
_NO_DEVICES = re.compile(r"no devices (?:were )?found", re.IGNORECASE)


def _split(no: int, line: str) -> list[str]:
    # One line at a time, so a stray quote cannot swallow the rest of the output.
    try:
        return [cell.strip() for cell in next(csv.reader([line], skipinitialspace=True), [])]
    except csv.Error as exc:  # a lone carriage return, a NUL
        raise ParseError(TOOL, no, line, f"invalid CSV: {exc}") from None


def _header(no: int, line: str) -> list[tuple[str, str]]:
    """(field, unit) per column."""
    columns = []
    for cell in _split(no, line):
        m = _HEADER_CELL.fullmatch(cell)
        if not m:
            raise ParseError(TOOL, no, line, f"expected a CSV header field, got {cell[:20]!r}")
        name = m.group(1).lower()
        columns.append((_ALIASES.get(name, name), (m.group(2) or "").strip()))
    if "index" not in {name for name, _ in columns}:
        raise ParseError(TOOL, no, line, "expected a ppu-smi CSV header with an 'index' field")
    return columns


def _value(row: dict[str, tuple[str, str]], field: str) -> float | None:
    if field not in row:
        return None
    token, unit = row[field]
    # A unit printed after the value is the header's unit (absent with nounits); memory
    # without a unit in the header is MiB, as nvidia-smi prints it.
    value = number(token, (unit,) if unit else ())
    if value is not None and field.startswith("memory."):
        if unit not in _MIB_PER:
            raise ValueError(f"unknown memory unit {unit!r} in the header")
        value *= _MIB_PER[unit]
    return value


def _device(row: dict[str, tuple[str, str]]) -> DeviceReading:
    idx = index(row["index"][0])
    text = {field: optional_text(row[field][0]) if field in row else None
            for field in ("uuid", "name", "pci.bus_id", "health")}
    bus = text["pci.bus_id"]
    return DeviceReading(
        index=idx,
        uuid=text["uuid"] or (f"ppu-{bus}" if bus else f"ppu-{idx}"),
        name=text["name"] or "PPU",
        pci_bus_id=bus,
        health=text["health"],
        util_pct=_value(row, "utilization.ppu"),
        mem_util_pct=_value(row, "utilization.memory"),
        mem_used_mib=_value(row, "memory.used"),
        mem_total_mib=_value(row, "memory.total"),
        temp_c=_value(row, "temperature.ppu"),
        power_w=_value(row, "power.draw"),
        power_limit_w=_value(row, "power.limit"),
        fan_pct=_value(row, "fan.speed"),
    )


def parse(text: str) -> ToolReading:
    """Read ppu-smi CSV (with its header); raise ParseError naming the line that does not fit."""
    if not text.strip():
        raise ParseError(TOOL, None, "", "empty output")
    reading = ToolReading()
    columns: list[tuple[str, str]] | None = None
    last_no, last_line = 0, ""
    for no, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        last_no, last_line = no, raw
        if columns is None:
            if _NO_DEVICES.fullmatch(line.rstrip(".")):
                return reading
            columns = _header(no, raw)
            continue
        cells = _split(no, raw)
        if len(cells) != len(columns):
            raise ParseError(
                TOOL, no, raw, f"expected {len(columns)} values, got {len(cells)} (truncated?)"
            )
        row = {name: (cell, unit) for (name, unit), cell in zip(columns, cells, strict=True)}
        try:
            reading.devices.append(_device(row))
        except ValueError as exc:
            raise ParseError(TOOL, no, raw, str(exc)) from None
        if reading.driver_version is None and "driver_version" in row:
            reading.driver_version = optional_text(row["driver_version"][0])
    if not reading.devices:
        raise ParseError(TOOL, last_no, last_line, "header but no PPU rows")
    return reading
