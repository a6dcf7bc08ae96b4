"""Fleet events, newest first, on the Line API (the event log holds up to 10,000)."""

from __future__ import annotations

from collections.abc import Hashable

from textual.message import Message

from agents.wire import Event
from console.tui.rows import Cell, event_columns, event_row
from console.tui.widgets.line_table import LineTable


class EventTable(LineTable):
    """Rows keyed by `id()` of the event: events never change, so a row is drawn once."""

    class EventSelected(Message):
        """Enter on an event: the owner opens the node it came from."""

        def __init__(self, node: str, event: Event) -> None:
            super().__init__()
            self.node = node
            self.event = event

    def __init__(self, node_width: int = 16, *, id: str | None = None) -> None:
        self.events: dict[Hashable, tuple[str, Event]] = {}
        super().__init__(event_columns(node_width), self._cells, sortable=False,
                         empty_text="no events", id=id)

    def set_events(self, events: list[tuple[str, Event]]) -> None:
        """Replace the rows with `events` (node, event), already in display order."""
        new = {id(e): (node, e) for node, e in events}
        # An id is reused once its event is freed: forget the strips of events that left.
        self.invalidate(self.events.keys() - new.keys())
        self.events = new
        self.set_keys(list(new))

    def _cells(self, key: Hashable) -> list[Cell]:
        node, event = self.events[key]
        return event_row(node, event)

    def action_select(self) -> None:
        if self.keys:
            node, event = self.events[self.keys[self.cursor_row]]
            self.post_message(self.EventSelected(node, event))
