"""Huawei Ascend `npu-smi info`: the box table, two rows per chip, then (mostly) the process table.

Layouts printed by real nodes (captures and their sources: tests/data/real/npu-smi, SOURCES.md):
    | NPU   Name   | Health  | Power(W)  Temp(C)  Hugepages-Usage(page) |
    | Chip         | Bus-Id  | AICore(%) Memory-Usage(MB) HBM-Usage(MB) |   910 / 910B*
    | Chip  Device | Bus-Id  | AICore(%) Memory-Usage(MB)               |   310 / 310B / 310P
    | Chip  Phy-ID | Bus-Id  | AICore(%) Memory-Usage(MB) HBM-Usage(MB) |   A3 ("Ascend910", 2 dies)
then one NPU row and one chip row per chip (multi-chip cards repeat the NPU row; a chip row
straight after another chip row is taken as the same card's), then
`| NPU Chip | Process id | Process name | Process memory(MB) [| Process id in container] |`
rows or `No running processes found in NPU n`. npu-smi has no machine-readable format.

What real output varies in, and how it is read:
- No process table at all (310B boards on 23.0.x, 310 and 910A on 20.x/21.x drivers): a table
  that ends after the device rows is complete, and `processes` stays None ("not listed").
- Model names of digits only ("310" on Atlas 300/200 DK): an NPU row and a chip row are told
  apart by their values (a chip row's second value is a `used / total` pair), not by the shape
  of the first cell.
- 21.0.x on 910A prints no Hugepages column; 26.x adds `Process id in container`; processes in
  a container may print an empty name. Columns the parser does not know are ignored, with one
  warning per process (agents/parsers/drift.py).

NPU ids need not start at 0 (a single card can be NPU 2; 20.x numbers cards from 2048). The
device index is the logical id: the `Device` column where the layout has one, else the order
of the table. `Phy-ID` is the physical die id, not a logical index. The uuid is
`npu-<id>-<chip>`: the table prints no serial, and NPU id plus chip is what `-i`/`-c` take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.parsers import drift
from agents.parsers.errors import ParseError
from agents.parsers.readings import (
    DeviceReading,
    ProcessReading,
    ToolReading,
    clean_text,
    index,
    number,
    optional_text,
)

TOOL = "npu-smi"

_SEPARATOR = re.compile(r"\+[-=+]*")
_VERSION = re.compile(r"npu-smi\s+\S+.*?Version:\s*(\S+)")
_NPU_CELL = re.compile(r"(\d+)\s+(\S.*)")
_CHIP_CELL = re.compile(r"(\d+)(?:\s+(\S+))?")
_PROC_CHIP = re.compile(r"(\d+)\s+(\d+)")
_NO_PROCS = re.compile(r"No running processes found in NPU\s+(\d+)", re.IGNORECASE)
_SLASH = re.compile(r"\s*/\s*")

# Header words each layout is known to print; anything else is version drift.
_NPU_HEADER = {"Power(W)", "Temp(C)", "Hugepages-Usage(page)"}
_CHIP_HEADER = {"AICore(%)", "Memory-Usage(MB)", "HBM-Usage(MB)"}
_CHIP_COLUMNS = {"Device", "Phy-ID"}
_PROC_COLUMNS = {
    "process id": "pid", "process name": "name", "process memory(mb)": "mem",
    "process id in container": "container_pid",
}


@dataclass
class _Npu:
    npu_id: int
    name: str
    health: str | None
    power_w: float | None
    temp_c: float | None


class _Table:
    """Reads the table one line at a time; each method raises ParseError for its own line."""

    def __init__(self) -> None:
        self.section = "preamble"  # -> header -> devices -> processes
        self.has_device_col = False
        self.has_hbm = False
        self.npu: _Npu | None = None  # the NPU row the next chip row belongs to
        self.npu_fresh = False  # an NPU row is waiting for its chip row
        self.by_key: dict[tuple[int, int], DeviceReading] = {}
        self.proc_cols: dict[str, int] = {}
        self.proc_width = 0
        self.reading = ToolReading()

    def row(self, no: int, line: str, cells: list[str]) -> None:
        if self.section == "preamble":
            self._preamble(no, line, cells)
        elif self.section == "header":
            self._chip_header(no, line, cells)
        elif self.section == "devices":
            self._device_row(no, line, cells)
        else:
            self._process_row(no, line, cells)

    def _preamble(self, no: int, line: str, cells: list[str]) -> None:
        version = _VERSION.match(cells[0])
        if version and len(cells) == 1:
            self.reading.driver_version = clean_text(version.group(1))
        elif cells[0].startswith("NPU") and "Name" in cells[0] and len(cells) == 3:
            drift.note_unknown(TOOL, "columns", set(cells[2].split()) - _NPU_HEADER)
            self.section = "header"
        else:
            raise ParseError(TOOL, no, line, "expected the npu-smi 'NPU Name | Health' header")

    def _chip_header(self, no: int, line: str, cells: list[str]) -> None:
        if len(cells) != 3 or not cells[0].startswith("Chip"):
            raise ParseError(TOOL, no, line, "expected the 'Chip | Bus-Id' header row")
        words = cells[0].split()[1:]
        self.has_device_col = "Device" in words
        self.has_hbm = "HBM-Usage(MB)" in cells[2].split()
        drift.note_unknown(TOOL, "columns", (set(words) - _CHIP_COLUMNS)
                           | (set(cells[2].split()) - _CHIP_HEADER))
        self.section = "devices"

    def _device_row(self, no: int, line: str, cells: list[str]) -> None:
        if len(cells) >= 4 and cells[0].startswith("NPU") and "Process" in cells[1]:
            self._process_header(no, line, cells)
            return
        if len(cells) != 3:
            raise ParseError(TOOL, no, line, "expected an NPU or chip row of 3 cells")
        values = _SLASH.sub("/", cells[2]).split()
        if len(values) < 2:
            raise ParseError(TOOL, no, line,
                             "expected 'Power(W) Temp(C)' or 'AICore(%) used / total'")
        if "/" not in values[1]:  # power and temperature: an NPU row
            if self.npu_fresh:
                raise ParseError(TOOL, no, line, "expected a chip row after the NPU row")
            npu = _NPU_CELL.fullmatch(cells[0])
            if not npu:
                raise ParseError(TOOL, no, line, "expected an NPU row 'NPU-id Name'")
            self._npu(no, line, cells, npu, values)
        else:  # AICore and a memory pair: a chip row
            chip = _CHIP_CELL.fullmatch(cells[0])
            if not chip:
                raise ParseError(TOOL, no, line, "expected a chip row 'Chip [Device]'")
            if self.npu is None:
                raise ParseError(TOOL, no, line, "expected an NPU row before the chip row")
            self._chip(no, line, cells, chip, values)

    def _npu(self, no: int, line: str, cells: list[str], m: re.Match[str],
             values: list[str]) -> None:
        try:
            self.npu = _Npu(
                npu_id=index(m.group(1)),
                name=clean_text(m.group(2)),
                health=optional_text(cells[1]),
                power_w=number(values[0]),
                temp_c=number(values[1]),
            )
        except ValueError as exc:
            raise ParseError(TOOL, no, line, str(exc)) from None
        self.npu_fresh = True

    def _chip(self, no: int, line: str, cells: list[str], m: re.Match[str],
              values: list[str]) -> None:
        assert self.npu is not None
        if any("/" not in v for v in values[1:3 if self.has_hbm else 2]):
            raise ParseError(TOOL, no, line, "expected 'AICore(%) used / total' values")
        try:
            chip_id = index(m.group(1))
            util = number(values[0])
            ddr = _pair(values[1])
            hbm = _pair(values[2]) if self.has_hbm and len(values) > 2 else (None, None)
            logical = (index(m.group(2)) if self.has_device_col and m.group(2)
                       else len(self.by_key))
        except ValueError as exc:
            raise ParseError(TOOL, no, line, str(exc)) from None
        key = (self.npu.npu_id, chip_id)
        if key in self.by_key:
            raise ParseError(TOOL, no, line, f"NPU {key[0]} chip {key[1]} listed twice")
        # 910 parts do their work in HBM (DDR shows 0 / 0, or the host-side DDR on 910A);
        # 310 / 310B / 310P have only DDR.
        used, total = hbm if hbm[1] else ddr
        fresh = self.npu_fresh
        self.by_key[key] = DeviceReading(
            index=logical,
            uuid=f"npu-{key[0]}-{key[1]}",
            name=self.npu.name,
            pci_bus_id=optional_text(cells[1]),
            health=self.npu.health,
            util_pct=util,
            mem_used_mib=used if total else None,
            mem_total_mib=total or None,
            # Power and temperature are printed on the NPU row; a chip row without its own
            # NPU row must not repeat another chip's reading as its own.
            temp_c=self.npu.temp_c if fresh else None,
            power_w=self.npu.power_w if fresh else None,
        )
        self.npu_fresh = False

    def _process_header(self, no: int, line: str, cells: list[str]) -> None:
        if self.npu_fresh:
            raise ParseError(TOOL, no, line, "expected a chip row after the NPU row")
        names = [" ".join(c.lower().split()) for c in cells]
        cols = {_PROC_COLUMNS[n]: i for i, n in enumerate(names) if i and n in _PROC_COLUMNS}
        drift.note_unknown(TOOL, "columns", {cells[i] for i, n in enumerate(names)
                                            if i and n not in _PROC_COLUMNS})
        if not {"pid", "name", "mem"} <= cols.keys():
            raise ParseError(TOOL, no, line, "expected 'Process id | Process name | memory'")
        self.proc_cols = cols
        self.proc_width = len(cells)
        self.section = "processes"
        for device in self.by_key.values():
            device.processes = []

    def _process_row(self, no: int, line: str, cells: list[str]) -> None:
        if len(cells) == 1 and _NO_PROCS.match(cells[0]):
            return
        chip = _PROC_CHIP.fullmatch(cells[0])
        if len(cells) != self.proc_width or not chip:
            raise ParseError(TOOL, no, line, "expected a process row 'NPU Chip | pid | name | MB'")
        pid = cells[self.proc_cols["pid"]]
        if not (pid.isascii() and pid.isdigit()):
            raise ParseError(TOOL, no, line, "expected a process id")
        try:
            key = (index(chip.group(1)), index(chip.group(2)))
            used = number(cells[self.proc_cols["mem"]])
        except ValueError as exc:
            raise ParseError(TOOL, no, line, str(exc)) from None
        device = self.by_key.get(key)
        if device is not None and device.processes is not None:
            name = clean_text(cells[self.proc_cols["name"]])
            device.processes.append(ProcessReading(int(pid), name, used))


def _pair(text: str) -> tuple[float | None, float | None]:
    used, _, total = text.partition("/")
    return number(used), number(total)


def parse(text: str) -> ToolReading:
    """Read `npu-smi info` output; raise ParseError naming the line that does not fit."""
    lines = text.split("\n")
    if not text.strip():
        raise ParseError(TOOL, None, "", "empty output")
    table = _Table()
    last_no, last_line = 0, ""
    for no, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        last_no, last_line = no, raw
        if _SEPARATOR.fullmatch(line):
            continue
        if len(line) < 2 or line[0] != "|" or line[-1] != "|":
            raise ParseError(TOOL, no, raw, "expected a table row '| ... |'")
        table.row(no, raw, [cell.strip() for cell in line[1:-1].split("|")])
    if not table.by_key:
        raise ParseError(TOOL, last_no, last_line, "no NPU rows (and no 'no devices' message)")
    if table.npu_fresh:
        raise ParseError(TOOL, last_no, last_line, "truncated: NPU row without its chip row")
    if not _SEPARATOR.fullmatch(last_line.strip()):
        raise ParseError(TOOL, last_no, last_line, "truncated: the table is not closed")
    table.reading.devices = list(table.by_key.values())
    return table.reading
