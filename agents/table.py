"""The people's view of one report (`fleetops-agent once`): a plain, aligned text table.

Plain text on purpose: the agent is installed on GPU nodes with only what it needs, and a
table library (Rich pulls in Pygments and markdown-it, about 13 MB) is not needed for eight
columns. Every cell is made printable here even though collectors already clean the text
they read from tools: a control character or an escape sequence never reaches the terminal.
Colour (the health cell only; the symbol carries the state too) is used on a terminal unless
NO_COLOR is set (https://no-color.org) or TERM is "dumb".
"""

from __future__ import annotations

import os
import sys
import unicodedata
from typing import TextIO

from agents.wire import Hello, Report

_HEALTH_SGR = {"ok": "32", "warn": "33", "crit": "1;31"}  # green, yellow, bold red
_HEALTH_MARK = {"ok": "✔ ok", "warn": "▲ warn", "crit": "✖ crit"}
DASH = "—"
COLUMNS = ("#", "model", "util %", "memory MiB", "temp C", "power W", "health", "reasons")
_RIGHT = frozenset({"#", "util %", "temp C"})
GAP = "  "


def printable(text: str) -> str:
    """`text` with every non-printable character (controls, ESC, bidi overrides) shown escaped."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def width(text: str) -> int:
    """Terminal columns of printable text: wide East Asian characters take two, marks none."""
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _num(value: float | None, fmt: str = "{:.0f}") -> str:
    return DASH if value is None else fmt.format(value)


def _pad(text: str, cols: int, right: bool) -> str:
    fill = " " * (cols - width(text))
    return fill + text if right else text + fill


def _use_colour(out: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def render(hello: Hello, report: Report, colour: bool = False) -> str:
    """The table as text, one line per device, ending with a newline."""
    title = (f"{printable(hello.node)} · {printable(', '.join(hello.collectors))} · "
             f"driver {printable(hello.driver_version or DASH)}")
    rows = [
        (str(d.index), printable(d.model), _num(d.util_pct),
         f"{_num(d.mem_used_mib)} / {_num(d.mem_total_mib)}", _num(d.temp_c),
         f"{_num(d.power_w)} / {_num(d.power_limit_w)}", _HEALTH_MARK[d.health],
         printable("; ".join(d.reasons)))
        for d in report.devices
    ]
    cols = [max([width(c), *(width(r[i]) for r in rows)]) for i, c in enumerate(COLUMNS)]
    last = len(COLUMNS) - 1

    def line(cells: tuple[str, ...], health: str | None = None) -> str:
        out = []
        for i, (cell, name) in enumerate(zip(cells, COLUMNS, strict=True)):
            if colour and health is not None and name == "health":
                cell = f"\x1b[{_HEALTH_SGR[health]}m{cell}\x1b[0m"  # left-justified column
                out.append(cell + " " * (cols[i] - width(_HEALTH_MARK[health])))
            else:
                out.append(cell if i == last else _pad(cell, cols[i], name in _RIGHT))
        return GAP.join(out).rstrip()

    lines = [title, line(COLUMNS), GAP.join("─" * c for c in cols[:last])
             + GAP + "─" * max(cols[last], len(COLUMNS[last]))]
    lines += [line(r, d.health) for r, d in zip(rows, report.devices, strict=True)]
    warn = "\x1b[33mcollector:\x1b[0m" if colour else "collector:"
    lines += [f"{warn} {printable(err)}" for err in report.errors]
    return "\n".join(lines) + "\n"


def print_report(hello: Hello, report: Report, out: TextIO | None = None,
                 colour: bool | None = None) -> None:
    out = out or sys.stdout
    out.write(render(hello, report, _use_colour(out) if colour is None else colour))
    out.flush()
