"""The Fleet view, the first screen: one panel per data center."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, VerticalScroll

from console.model.fleet import Changes
from console.model.problems import dc_view
from console.tui.screens.base import FleetView
from console.tui.widgets.dc_panel import DcPanel

COLUMNS = 2


class FleetScreen(FleetView):
    VIEW = "fleet"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,l", "move(1)", "Next DC", show=False),
        Binding("left,h", "move(-1)", "Previous DC", show=False),
        Binding("down,j", f"move({COLUMNS})", "DC below", show=False),
        Binding("up,k", f"move(-{COLUMNS})", "DC above", show=False),
    ]

    DEFAULT_CSS = """
    FleetScreen #dcs { height: 1fr; scrollbar-size-vertical: 1; }
    FleetScreen Grid { grid-size: 2; grid-gutter: 0 0; height: 1fr; }
    FleetScreen Grid.-many { height: auto; grid-rows: 11; }
    FleetScreen Grid.-many DcPanel { height: 11; }
    """

    def compose_view(self) -> ComposeResult:
        dcs = list(self.fleet_app.fleet.dc_meta)
        # Up to two rows of panels share the screen; more scroll at a fixed height.
        many = "-many" if len(dcs) > 2 * COLUMNS else ""
        with VerticalScroll(id="dcs"), Grid(classes=many):
            for dc in dcs:
                yield DcPanel(dc)

    def on_mount(self) -> None:
        panels = self.query(DcPanel)
        if panels:
            panels.first().focus()
        self.fleet_changed(None)

    def fleet_changed(self, changes: Changes | None) -> None:
        super().fleet_changed(changes)
        app = self.fleet_app
        dirty = None if changes is None else changes.dcs
        for panel in self.query(DcPanel):
            if dirty is None or panel.dc in dirty:
                panel.jobs = app.jobs.count_in(panel.dc)
                panel.show(dc_view(app.fleet, app.index, panel.dc))

    def jobs_changed(self) -> None:
        jobs = self.fleet_app.jobs
        for panel in self.query(DcPanel):
            count = jobs.count_in(panel.dc)
            if count != panel.jobs:
                panel.jobs = count
                panel.refresh()

    def _focus_body(self) -> None:
        panels = self.query(DcPanel)
        if panels:
            panels.first().focus()

    async def on_dc_panel_opened(self, message: DcPanel.Opened) -> None:
        await self.fleet_app.open_dc(message.dc)

    def action_move(self, step: int) -> None:
        panels = list(self.query(DcPanel))
        if not panels:
            return
        focused = self.focused
        i = panels.index(focused) if focused in panels else 0
        target = panels[max(0, min(len(panels) - 1, i + step))]
        target.focus()
        target.scroll_visible(animate=False)
