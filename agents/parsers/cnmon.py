"""Cambricon `cnmon`: the box table, two rows per card, then a `Processes:` table.

cnmon 5.x (DOMAIN.md 4.2):
    | CNMON v5.10.13                                               Driver v5.10.13 |
    | Card  VF  Name       Firmware |               Bus-Id | Util        Ecc-Error |
    | Fan   Temp      Pwr:Usage/Cap |         Memory-Usage | SR-IOV   Compute-Mode |
    | 0     /   MLU370-X8    v1.1.6 |         0000:39:00.0 | 0%                N/A |
    |  0%   32C        106 W/ 250 W |     0 MiB/ 23374 MiB | N/A           Default |
cnmon 4.x prints `Inited` where 5.x has Bus-Id and `vMemory-Usage` where 5.x has SR-IOV; the
driver version is then in the card row, under `Inited  Driver` (`On  v4.20.11`), as real 4.x
output shows (tests/data/real/cnmon; sources in SOURCES.md). 5.10.22 and later print `Mode`
(`FULL`) where older 5.x print `SR-IOV`. cnmon has no health column (that is `cnmon info`), so
`health` stays None. The device index is the row order, which is the card number on a host
without SR-IOV VF rows; the uuid is `mlu-<bus id>` (plus `-vf<n>` for a VF), or
`mlu-<card>` where the layout prints no bus id.
"""

from __future__ import annotations

import re

from agents.parsers import drift
from agents.parsers.errors import ParseError
from agents.parsers.readings import (
    DeviceReading,
    ProcessReading,
    ToolReading,
    clean_text,
    index,
    number,
)

TOOL = "cnmon"

_NUM = r"N/A|[-+.\deE]+"
_SEPARATOR = re.compile(r"[+|][-=+|]*")
_VERSION = re.compile(r"CNMON\s+v?\S+(?:.*?Driver\s+v?(\S+))?", re.IGNORECASE)
_CARD = re.compile(r"(\d+)\s+(/|\d+)\s+(.+?)(?:\s+(v\d\S*))?")
_STATUS = re.compile(r"(\S+)\s+(\S+)\s+(.+)")
_POWER = re.compile(rf"(?P<use>{_NUM})\s*W?\s*/\s*(?P<cap>{_NUM})\s*W?|N/A")
_MEMORY = re.compile(
    rf"(?P<used>{_NUM})\s*(?P<u1>MiB|MB|GiB)?\s*/\s*(?P<total>{_NUM})\s*(?P<u2>MiB|MB|GiB)?"
)
_BUS_ID = re.compile(r"[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]")
_PROCESS = re.compile(
    rf"(\d+)\s+(?:/|\d+)\s+(\d+)\s+(?:(.*?)\s+)?({_NUM})\s*(MiB|MB|GiB)?"
)
_NO_PROCS = re.compile(r"No running processes found", re.IGNORECASE)
# Header words of the layouts above; others are version drift, read past with a warning.
_HEADER_WORDS = {
    "Card", "VF", "Name", "Firmware", "Bus-Id", "Inited", "Driver", "Util", "Ecc-Error",
    "Fan", "Temp", "Pwr:Usage/Cap", "Memory-Usage", "vMemory-Usage", "SR-IOV", "Mode",
    "Compute-Mode",
}


def _mib(value: str, unit: str | None) -> float | None:
    amount = number(value)
    return amount * 1024 if amount is not None and unit == "GiB" else amount


class _Table:
    def __init__(self) -> None:
        self.section = "top"  # -> header -> cards -> processes
        self.has_bus = False
        self.driver_col = False  # 4.x documented layout: driver in the second row's last cell
        self.driver_in_card_row = False  # real 4.x: `Inited  Driver` in the first row
        self.card: tuple[int, int | None, str, str | None, float | None] | None = None
        self.reading = ToolReading()
        self.by_card: dict[int, DeviceReading] = {}

    def row(self, no: int, line: str, cells: list[str]) -> None:
        if self.section == "top":
            version = _VERSION.match(cells[0])
            if version and len(cells) == 1:
                if version.group(1):
                    self.reading.driver_version = clean_text(version.group(1))
            elif len(cells) == 3 and cells[0].startswith("Card"):
                self.has_bus = "Bus-Id" in cells[1]
                self.driver_in_card_row = "Driver" in cells[1].split()
                drift.note_unknown(TOOL, "columns", set(" ".join(cells).split()) - _HEADER_WORDS)
                self.section = "header"
            else:
                raise ParseError(TOOL, no, line, "expected the cnmon 'Card VF Name' header")
        elif self.section == "header":
            if len(cells) != 3 or not cells[0].startswith("Fan"):
                raise ParseError(TOOL, no, line, "expected the 'Fan Temp Pwr' header row")
            self.driver_col = "Driver" in cells[2]
            drift.note_unknown(TOOL, "columns", set(" ".join(cells).split()) - _HEADER_WORDS)
            self.section = "cards"
        elif self.section == "cards":
            self._card_row(no, line, cells)
        else:
            self._process_row(no, line, cells)

    def _card_row(self, no: int, line: str, cells: list[str]) -> None:
        if len(cells) == 1 and cells[0].startswith("Processes") and self.card is None:
            self.section = "processes"
            for device in self.reading.devices:
                device.processes = []
            return
        if len(cells) != 3:
            raise ParseError(TOOL, no, line, "expected a card row of 3 cells")
        try:
            if self.card is None:
                self._first(no, line, cells)
            else:
                self._second(no, line, cells)
        except ParseError:
            raise
        except ValueError as exc:
            raise ParseError(TOOL, no, line, str(exc)) from None

    def _first(self, no: int, line: str, cells: list[str]) -> None:
        m = _CARD.fullmatch(cells[0])
        if not m:
            raise ParseError(TOOL, no, line, "expected a card row 'Card VF Name Firmware'")
        bus = cells[1] if self.has_bus and _BUS_ID.fullmatch(cells[1]) else None
        inited = cells[1].split()
        if self.driver_in_card_row and len(inited) >= 2 and self.reading.driver_version is None:
            self.reading.driver_version = clean_text(inited[-1].removeprefix("v"))
        util = cells[2].split()[0] if cells[2] else ""
        vf = None if m.group(2) == "/" else index(m.group(2))
        self.card = (index(m.group(1)), vf, clean_text(m.group(3)), bus, number(util, ("%",)))

    def _second(self, no: int, line: str, cells: list[str]) -> None:
        assert self.card is not None
        status, memory = _STATUS.fullmatch(cells[0]), _MEMORY.fullmatch(cells[1])
        power = _POWER.fullmatch(status.group(3).strip()) if status else None
        if not (status and power and memory):
            raise ParseError(TOOL, no, line, "expected a row 'Fan Temp Pwr | used/total MiB'")
        card, vf, name, bus, util = self.card
        if self.driver_col and self.reading.driver_version is None and cells[2]:
            self.reading.driver_version = clean_text(cells[2].split()[0].removeprefix("v"))
        suffix = f"-vf{vf}" if vf is not None else ""
        uuid = f"mlu-{bus}{suffix}" if bus else f"mlu-{card}{suffix}"
        device = DeviceReading(
            index=len(self.reading.devices),
            uuid=uuid,
            name=name,
            pci_bus_id=bus,
            util_pct=util,
            mem_used_mib=_mib(memory["used"], memory["u1"]),
            mem_total_mib=_mib(memory["total"], memory["u2"]),
            fan_pct=number(status.group(1), ("%",)),
            temp_c=number(status.group(2), ("C",)),
            power_w=number(power["use"]) if power["use"] else None,
            power_limit_w=number(power["cap"]) if power["cap"] else None,
        )
        if vf is None:
            if card in self.by_card:
                raise ParseError(TOOL, no, line, f"card {card} listed twice")
            self.by_card[card] = device
        self.reading.devices.append(device)
        self.card = None

    def _process_row(self, no: int, line: str, cells: list[str]) -> None:
        text = cells[0]
        if len(cells) != 1:
            raise ParseError(TOOL, no, line, "expected a process row")
        if _NO_PROCS.match(text) or ("PID" in text and "Card" in text):
            return
        m = _PROCESS.fullmatch(text)
        if not m:
            raise ParseError(TOOL, no, line, "expected a process row 'Card MI PID Command MiB'")
        try:
            card, used = index(m.group(1)), _mib(m.group(4), m.group(5))
        except ValueError as exc:
            raise ParseError(TOOL, no, line, str(exc)) from None
        device = self.by_card.get(card)
        if device is not None and device.processes is not None:
            name = clean_text(m.group(3) or "")
            device.processes.append(ProcessReading(int(m.group(2)), name, used))


def parse(text: str) -> ToolReading:
    """Read `cnmon` output; raise ParseError naming the line that does not fit."""
    if not text.strip():
        raise ParseError(TOOL, None, "", "empty output")
    table = _Table()
    first: tuple[int, str] | None = None
    last_no, last_line = 0, ""
    in_table = False
    for no, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        first = first or (no, raw)
        last_no, last_line = no, raw
        if _SEPARATOR.fullmatch(line):
            in_table = True
            continue
        if len(line) < 2 or line[0] != "|" or line[-1] != "|":
            if in_table:
                raise ParseError(TOOL, no, raw, "expected a table row '| ... |'")
            continue  # the timestamp cnmon prints above the table
        in_table = True
        table.row(no, raw, [cell.strip() for cell in line[1:-1].split("|")])
    if table.section == "top" and first is not None:
        raise ParseError(TOOL, first[0], first[1], "expected the cnmon table")
    if table.card is not None:
        raise ParseError(TOOL, last_no, last_line, "truncated: card row without its second row")
    if not table.reading.devices:
        raise ParseError(TOOL, last_no, last_line, "no card rows (and no 'no devices' message)")
    if not _SEPARATOR.fullmatch(last_line.strip()):
        raise ParseError(TOOL, last_no, last_line, "truncated: the table is not closed")
    return table.reading
