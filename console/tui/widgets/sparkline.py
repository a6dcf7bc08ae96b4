"""A labelled one-line sparkline on a fixed scale, for a device's history.

Textual's Sparkline scales each chart between its own minimum and maximum, so a device busy
at a steady 95% draws the same jagged bars as one swinging 0-100%, and it has no way to
show a missing sample. Here the scale is fixed (percent, or degrees up to `scale`) and a
sample the device could not report is a dot.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"


def bars(values: Sequence[float | None], width: int, scale: float = 100.0) -> Content:
    """The newest `width` values as bars, right-aligned; None as a muted dot."""
    shown = list(values[-width:]) if width > 0 else []
    parts: list[str | tuple[str, str]] = [" " * (width - len(shown))]
    for v in shown:
        if v is None:
            parts.append(("·", "$foreground-muted"))
        else:
            level = max(0, min(len(BARS) - 1, int(v / scale * len(BARS))))
            parts.append((BARS[level], "$primary"))
    return Content.assemble(*parts)


class MetricSpark(Widget):
    """`util ▁▂▃▅▇ 78%`: label, history, latest value."""

    DEFAULT_CSS = """
    MetricSpark { height: 1; width: 1fr; padding: 0 1 0 0; }
    """

    def __init__(self, label: str, *, scale: float = 100.0, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self.scale = scale
        self.values: list[float | None] = []
        self.value_text = "—"
        self.tone = ""

    def show(self, values: list[float | None], value_text: str, tone: str = "") -> None:
        if (values, value_text, tone) != (self.values, self.value_text, self.tone):
            self.values, self.value_text, self.tone = values, value_text, tone
            self.refresh()

    def render(self) -> Content:
        width = self.content_size.width
        label = f"{self.label} " if self.label else ""
        value = f" {self.value_text:>5}"
        room = width - len(label) - len(value)
        return Content.assemble((label, "$foreground-muted"), bars(self.values, room, self.scale),
                                (value, self.tone))
