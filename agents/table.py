"""The people's view of one report (`fleetops-agent once`): a Rich table."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agents.wire import Hello, Report

_HEALTH_STYLE = {"ok": "green", "warn": "yellow", "crit": "bold red"}
_HEALTH_MARK = {"ok": "✔ ok", "warn": "▲ warn", "crit": "✖ crit"}
DASH = "—"


def _num(value: float | None, fmt: str = "{:.0f}") -> str:
    return DASH if value is None else fmt.format(value)


def print_report(hello: Hello, report: Report, console: Console | None = None) -> None:
    console = console or Console()
    title = (f"{escape(hello.node)} · {escape(', '.join(hello.collectors))} · "
             f"driver {escape(hello.driver_version or DASH)}")
    table = Table(title=title, title_justify="left")
    for col in ("#", "model", "util %", "memory MiB", "temp C", "power W", "health", "reasons"):
        table.add_column(col, justify="right" if col in ("#", "util %", "temp C") else "left")
    for d in report.devices:
        mem = f"{_num(d.mem_used_mib)} / {_num(d.mem_total_mib)}"
        power = f"{_num(d.power_w)} / {_num(d.power_limit_w)}"
        table.add_row(
            str(d.index), escape(d.model), _num(d.util_pct), mem, _num(d.temp_c), power,
            f"[{_HEALTH_STYLE[d.health]}]{_HEALTH_MARK[d.health]}[/]",
            escape("; ".join(d.reasons)),
        )
    console.print(table)
    for err in report.errors:
        console.print(f"[yellow]collector:[/] {escape(err)}")
