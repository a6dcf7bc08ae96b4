"""The bottom line: where you are, node links across the fleet, inventory, read-only, ops."""

from __future__ import annotations

import os
from collections import Counter

from rich.cells import cell_len
from textual.content import Content
from textual.widget import Widget

from console.model.states import FAILED_LINKS, LINK_STYLE


def short_path(path: str, width: int) -> str:
    """`path` with ~ for home, cut from the left to `width` cells."""
    home = os.path.expanduser("~")
    if home not in ("", "/") and path.startswith(home + os.sep):
        path = "~" + path[len(home):]
    if cell_len(path) <= width:
        return path
    return "…" + path[-max(1, width - 1):] if width > 1 else ""


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar {
        dock: bottom;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, view: str = "") -> None:
        super().__init__()
        self.view = view
        self.links: Counter = Counter()
        self.inventory = ""
        self.mode = ""  # "read-only", "dry-run" or ""
        self.operations = 0

    def set_status(self, view: str, links: Counter, inventory: str, mode: str,
                   operations: int) -> None:
        state = (view, +links, inventory, mode, operations)
        if state != (self.view, self.links, self.inventory, self.mode, self.operations):
            self.view, self.links, self.inventory, self.mode, self.operations = state
            self.refresh()

    def render(self) -> Content:
        links = self.links
        down = sum(n for link, n in links.items() if link in FAILED_LINKS)
        parts: list[str | tuple[str, str]] = [(f" {self.view} ", "bold $background on $primary"),
                                              " "]
        for text, n, tone in (
            (f"{LINK_STYLE['live'][0]} {links['live']} live", links["live"], "$text-success"),
            (f"{LINK_STYLE['stale'][0]} {links['stale']} stale", links["stale"],
             "$text-warning"),
            (f"{LINK_STYLE['down'][0]} {down} down", down, "bold $text-error"),
            (f"{LINK_STYLE['connecting'][0]} {links['connecting']} connecting",
             links["connecting"], "$text-primary"),
        ):
            parts += [(text, tone if n else "$foreground-muted"), "  "]
        tail: list[str | tuple[str, str]] = []
        if self.mode:
            tail += [" · ", (self.mode, "bold $text-warning")]
        if self.operations:
            plural = "s" if self.operations > 1 else ""
            tail += [" · ", (f"⟳ {self.operations} operation{plural} running", "$text-accent")]
        head = Content.assemble(*parts)
        rest = Content.assemble(*tail)
        room = self.size.width - head.cell_length - rest.cell_length - len("· inventory: ")
        if self.inventory and room > 8:
            head += Content.assemble(("· inventory: ", "$foreground-muted"),
                                     short_path(self.inventory, room))
        return head + rest
