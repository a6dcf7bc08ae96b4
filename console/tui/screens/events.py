"""The Events view: XID, ECC and health events across the fleet, newest first."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from console.model.fleet import Changes
from console.tui.filtering import (
    EMPTY,
    EVENT_KEYS,
    Filter,
    event_matches,
)
from console.tui.screens.base import FleetView
from console.tui.widgets.event_table import EventTable


class EventsScreen(FleetView):
    VIEW = "events"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._filter: Filter = EMPTY
        self._shown = 0

    def compose_view(self) -> ComposeResult:
        app = self.fleet_app
        width = max((len(n) for n in app.fleet.nodes), default=4)
        yield EventTable(min(28, max(4, width)), id="events")

    @property
    def table(self) -> EventTable:
        return self.query_one(EventTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.fleet_changed(None)

    def view_label(self) -> str:
        total = len(self.fleet_app.fleet.events)
        if not self.filter_text:
            return f"events {total}"
        return f"events /{self.filter_text} {self._shown} of {total}"

    def fleet_changed(self, changes: Changes | None) -> None:
        if changes is None or changes.events:
            self._reload()
        super().fleet_changed(changes)

    def _reload(self) -> None:
        fleet = self.fleet_app.fleet
        f = self._filter
        if f:
            nodes = fleet.nodes
            events = [(n, e) for n, e in reversed(fleet.events)
                      if event_matches(f, n, nodes[n].dc if n in nodes else "", e)]
        else:
            events = list(reversed(fleet.events))
        self._shown = len(events)
        self.table.set_events(events)

    FILTER_KEYS = EVENT_KEYS

    def filter_changed(self) -> None:
        self._reload()
        super().fleet_changed(None)

    def on_event_table_event_selected(self, message: EventTable.EventSelected) -> None:
        self.fleet_app.open_node(message.node)

    def _focus_body(self) -> None:
        self.table.focus()
