"""T-Head PPU `ppu-smi --query-ppu=<fields> --format=csv[,nounits]`.

The CSV mirrors nvidia-smi's: a header line naming each field with its unit in brackets
(`memory.used [MiB]`), then one line per PPU; with `nounits` the values drop their unit
suffix but the header keeps it. A bracketed value (`[N/A]`, `[Not Supported]`, `[Unknown
Error]`) or `N/A` means the PPU cannot report the field: null, never an error. Columns are
matched by header name, so field order does not matter, nvidia-smi-style names
(`utilization.gpu`, `temperature.gpu`) are accepted too, and a column the parser does not know
is ignored with one warning per process.

The fields asked for, checked against T-Head's PPU-SMI manual as Alibaba Cloud publishes it
("设备管理工具PPU-SMI", help.aliyun.com/zh/document_detail/3012069.html, and the v1.4/v1.5/v1.7
English editions): its `--help-query-ppu` listing names `timestamp`, `driver_version`,
`count`, `name`, `serial`, `uuid`, `pci.bus_id`, and its examples query `index`,
`compute_mode`, `memory.total` and `memory.used`; the listing is elided there, so the
utilization, temperature and power fields are confirmed only by tools that query real PPUs:
yunionio/telegraf's ppusmi input (plugins/inputs/ppusmi) asks for `utilization.ppu`,
`utilization.memory`, `temperature.ppu` and `power.draw`, and zstack-utility's zstacklib
Alibaba vendor for `power.limit`. `health` appears in no source at all. And ppu-smi, like
nvidia-smi, rejects the whole query for one name a release does not know, while releases
differ in `utilization.ppu` vs `utilization.gpu` (yunionio/telegraf's ppusmi input retries
with the other spelling). So the collector degrades field by field: `rejected_field` reads
which name the tool refused, and the query is retried once without it (or with its other
spelling), remembered for the life of the collector (agents/collectors/ppu.py).
"""

from __future__ import annotations

import csv
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

TOOL = "ppu-smi"

# What the collector asks for; `driver_version` rides along because ppu-smi has no banner.
FIELDS = (
    "index", "uuid", "name", "pci.bus_id", "driver_version", "utilization.ppu",
    "utilization.memory", "memory.used", "memory.total", "temperature.ppu", "power.draw",
    "power.limit", "health",
)
# Never dropped: without the index no row can be told from another.
ESSENTIAL = frozenset({"index"})
# Named by the manual's --help-query-ppu listing or queried in its examples (see above).
DOCUMENTED = ("index", "uuid", "name", "pci.bus_id", "driver_version", "memory.used",
              "memory.total")
# The other spelling a release may know a field by (yunionio/telegraf plugins/inputs/ppusmi).
ALTERNATIVES = {"utilization.ppu": "utilization.gpu", "temperature.ppu": "temperature.gpu"}


def args(fields: tuple[str, ...] | list[str] = FIELDS) -> tuple[str, ...]:
    return ("--query-ppu=" + ",".join(fields), "--format=csv,nounits")


ARGS = args()

_ALIASES = {
    "utilization.gpu": "utilization.ppu",
    "temperature.gpu": "temperature.ppu",
    "gpu_uuid": "uuid",
    "gpu_name": "name",
    "gpu_bus_id": "pci.bus_id",
    "ppu_uuid": "uuid",  # the manual's own aliases: `"uuid" or "ppu_uuid"`, ...
    "ppu_name": "name",
    "ppu_bus_id": "pci.bus_id",
    "power.limit.enforced": "power.limit",
    "enforced.power.limit": "power.limit",
}
_MIB_PER = {"": 1.0, "MiB": 1.0, "MB": 1.0, "GiB": 1024.0, "GB": 1024.0, "KiB": 1 / 1024}
_HEADER_CELL = re.compile(r"([A-Za-z0-9_.]+)\s*(?:\[([^\]]*)\])?")
_NO_DEVICES = re.compile(r"no devices (?:were )?found", re.IGNORECASE)
_KNOWN = {*FIELDS, *_ALIASES, *_ALIASES.values(), "fan.speed", "timestamp", "count", "serial",
          "compute_mode", "memory.free"}
_REFUSAL = re.compile(r"not a valid field|invalid|unknown|not supported|unrecognized",
                      re.IGNORECASE)


def is_field_refusal(message: str) -> bool:
    """Whether a failed query's error text says a field (property) was refused."""
    return bool(_REFUSAL.search(message)) and bool(re.search(r"field|propert", message, re.I))


def rejected_field(message: str, fields: tuple[str, ...] | list[str]) -> str | None:
    """The field a refused query named, read from the tool's error text, or None.

    nvidia-smi says `Field "x" is not a valid field to query.`; ppu-smi is a clone of it. A
    quoted field name wins; otherwise a lone mention of one of ours.
    """
    if not is_field_refusal(message):
        return None
    quoted = [f for f in re.findall(r"[\"'`]([^\"'`\s]+)[\"'`]", message) if f in fields]
    if quoted:
        return quoted[0]
    named = [f for f in fields if re.search(rf"(?<![\w.]){re.escape(f)}(?![\w.])", message)]
    return named[0] if len(named) == 1 else None


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
    drift.note_unknown(TOOL, "columns", {name for name, _ in columns if name not in _KNOWN})
    if "index" not in {name for name, _ in columns}:
        raise ParseError(TOOL, no, line, "expected a ppu-smi CSV header with an 'index' field")
    return columns


def _value(row: dict[str, tuple[str, str]], field: str) -> float | None:
    if field not in row:
        return None
    token, unit = row[field]
    if _unavailable(token):
        return None
    # A unit printed after the value is the header's unit (absent with nounits); memory
    # without a unit in the header is MiB, as nvidia-smi prints it.
    value = number(token, (unit,) if unit else ())
    if value is not None and field.startswith("memory."):
        if unit not in _MIB_PER:
            raise ValueError(f"unknown memory unit {unit!r} in the header")
        value *= _MIB_PER[unit]
    return value


def _unavailable(token: str) -> bool:
    # nvidia-smi's convention, which ppu-smi keeps: a bracketed value is a reason, not a value.
    text = token.strip()
    return text.startswith("[") and text.endswith("]")


def _text(row: dict[str, tuple[str, str]], field: str) -> str | None:
    if field not in row or _unavailable(row[field][0]):
        return None
    return optional_text(row[field][0])


def _device(row: dict[str, tuple[str, str]]) -> DeviceReading:
    idx = index(row["index"][0])
    text = {field: _text(row, field) for field in ("uuid", "name", "pci.bus_id", "health")}
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
        if reading.driver_version is None:
            reading.driver_version = _text(row, "driver_version")
    if not reading.devices:
        raise ParseError(TOOL, last_no, last_line, "header but no PPU rows")
    return reading
