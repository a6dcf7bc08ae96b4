"""One data center on the Fleet view: node states, devices, health, load, domestic share.

Renders a DcView (computed only when the data center changed) to as many lines as the
panel has: the summary lines first, then the data center's worst problems in the space
left, so 80x24 shows one problem per panel and a tall terminal shows a dozen.
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.widget import Widget

from agents.wire import Event
from console.model.problems import DcView
from console.model.states import LINK_STYLE
from console.model.text import clean
from console.tui.rows import SEVERITY_STYLE

# $text-muted does not resolve inside Content (it renders as plain white): use this instead.
MUTED = "$foreground-muted"
TONE = {"ok": "$text-success", "warn": "$text-warning", "crit": "bold $text-error",
        "info": "$text-primary", "muted": MUTED, "": ""}


def gauge(pct: float | None, width: int) -> Content:
    if pct is None or width <= 0:
        return Content.styled("·" * max(0, width), MUTED)
    full = max(0, min(width, round(pct / 100 * width)))
    return Content.assemble(("█" * full, "$primary"), ("░" * (width - full), MUTED))


def power_text(watts: float) -> str:
    if watts >= 1_000_000:
        return f"{watts / 1e6:.2f} MW"
    if watts >= 1000:
        return f"{watts / 1000:.1f} kW"
    return f"{watts:.0f} W"


def summary_lines(v: DcView, width: int, jobs: str = "—") -> list[Content]:
    """Every line but the problems, each meant to fit in `width` cells."""
    links = v.links
    states = [("live", "ok"), ("stale", "warn")]
    parts: list[str | tuple[str, str]] = []
    for link, tone in states:
        symbol = LINK_STYLE[link][0]
        parts += [(f"{symbol} {links[link]} {link}", TONE[tone] if links[link] else MUTED),
                  "  "]
    parts += [(f"✖ {v.failed} down", TONE["crit"] if v.failed else MUTED)]
    if links["connecting"]:
        parts += ["  ", (f"◌ {links['connecting']} connecting", TONE["info"])]
    lines = [Content.assemble(*parts)]

    admin_parts: list[str | tuple[str, str]] = []
    for i, state in enumerate(("cordoned", "draining", "drained")):
        n = v.admin[state]
        admin_parts += [" · " if i else "", (f"{state} {n}", TONE["warn"] if n else MUTED)]
    lines.append(Content.assemble(*admin_parts))

    for pool, models in v.models.items():
        by_count = sorted(models.items(), key=lambda mn: -mn[1])
        listed = " ".join(f"{clean(m, 20)}×{n}" for m, n in by_count)
        lines.append(Content.assemble((f"{pool:<9}", MUTED), listed or "—"))

    lines.append(Content.assemble(
        ("health   ", MUTED), ("✔ ", TONE["ok"]), f"{v.ok}  ",
        ("▲ ", TONE["warn"] if v.warn else MUTED), f"{v.warn}  ",
        ("✖ ", TONE["crit"] if v.crit else MUTED), f"{v.crit}",
        ("   jobs ", MUTED), jobs))
    lines.append(load_line(v, width))
    lines.append(domestic_line(v))
    return [line.truncate(width, ellipsis=True) for line in lines]


def load_line(v: DcView, width: int) -> Content:
    """Utilisation and memory (as gauges when there is room), and power."""
    power = power_text(v.power_w)
    plain = len(f"util 100%  mem 100%  {power}")
    bar = min(12, (width - plain - 4) // 2)
    util = gauge(v.util_pct, bar) + " " if bar >= 4 else Content("")
    mem = gauge(v.mem_pct, bar) + " " if bar >= 4 else Content("")
    return Content.assemble(("util ", MUTED), util, f"{_pct(v.util_pct):>4}  ",
                            ("mem ", MUTED), mem, f"{_pct(v.mem_pct):>4}  ", power)


def domestic_line(v: DcView) -> Content:
    share, target = v.domestic_share, v.domestic_target
    head = ("domestic ", MUTED)
    if share is None:
        return Content.assemble(head, ("— (no devices reported yet)", MUTED))
    if target is None:
        return Content.assemble(head, f"{share:.0%}", ("  no target", MUTED))
    met = share + 1e-9 >= target
    return Content.assemble(
        head, f"{share:.0%}", ("  target ", MUTED), f"{target:.0%} ",
        ("✔ met", TONE["ok"]) if met else ("▼ below", TONE["warn"]))


def problem_lines(v: DcView, room: int, width: int) -> list[Content]:
    if room <= 0:
        return []
    if not v.problems:
        return [Content.styled("✔ no node needs attention", MUTED)]
    more = v.problem_count > room
    shown = v.problems[: room - 1 if more else room]
    lines = [Content.styled(p.text, TONE[p.tone]).truncate(width, ellipsis=True) for p in shown]
    if more:
        lines.append(Content.styled(f"… {v.problem_count - len(shown)} more: Enter for the nodes",
                                    MUTED))
    return lines


def event_line(node: str, e: Event, width: int) -> Content:
    symbol, tone = SEVERITY_STYLE.get(e.severity, ("?", "crit"))
    when = time.strftime("%H:%M:%S", time.localtime(e.ts))
    kind = e.event if e.code is None else f"{e.event} {e.code}"
    return Content.assemble((f"{when} ", MUTED), (f"{symbol} ", TONE[tone]),
                            f"{node} ", (clean(kind, 30), TONE[tone]), " ",
                            clean(e.message, 200)).truncate(width, ellipsis=True)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f}%"


class DcPanel(Widget, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Nodes of this DC", show=True),
    ]

    DEFAULT_CSS = """
    DcPanel {
        height: 1fr;
        min-height: 11;
        border: round $panel-lighten-2;
        border-title-color: $text-primary;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        padding: 0 1;
        background: $surface;
    }
    DcPanel:focus { border: round $accent; }
    """

    class Opened(Message):
        """Enter or a click on a panel: show this data center's nodes."""

        def __init__(self, dc: str) -> None:
            super().__init__()
            self.dc = dc

    def __init__(self, dc: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.dc = dc
        self.view = DcView(dc)
        self.jobs = "—"
        self.border_title = dc

    def show(self, view: DcView) -> None:
        self.view = view
        place = ", ".join(p for p in (view.region, view.country) if p)
        self.border_title = f"{view.name} · {view.nodes} nodes"
        self.border_subtitle = place
        self.refresh()

    def render(self) -> Content:
        width, height = self.content_size
        view = self.view
        lines = summary_lines(view, width, self.jobs)
        room = height - len(lines)
        # Problems first; recent events get the lower half of what is left, if it is enough.
        events_room = room // 2 if view.recent and room >= 6 else 0
        lines += problem_lines(view, room - events_room, width)
        if events_room:
            lines.append(Content.styled("recent events", MUTED))
            lines += [event_line(node, e, width) for node, e in view.recent[: events_room - 1]]
        return Content("\n").join(lines[:max(0, height)])

    def on_click(self) -> None:
        self.focus()
        self.post_message(self.Opened(self.dc))

    def action_open(self) -> None:
        self.post_message(self.Opened(self.dc))
