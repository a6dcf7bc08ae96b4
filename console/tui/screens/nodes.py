"""The Nodes view: every node in one sortable, filterable table.

The order (filter, then sort) is recomputed when the user changes it, and otherwise at most
once a second while frames arrive, since sorting 10,000 nodes costs a few milliseconds and
a table reshuffling four times a second is unreadable anyway. Rows that changed are
redrawn every tick.
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from console.model.fleet import Changes
from console.tui.actions import bind_node_actions
from console.tui.filtering import EMPTY, NODE_KEYS, Filter, node_matches
from console.tui.rows import sort_names
from console.tui.screens.base import FleetView
from console.tui.widgets.line_table import LineTable
from console.tui.widgets.node_table import NodeTable

REORDER_S = 1.0


class NodesScreen(FleetView):
    VIEW = "nodes"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._filter: Filter = EMPTY
        self.sort_column = "name"
        self.sort_reverse = False
        self._pending = False  # frames arrived since the last reorder
        self._ordered_at = 0.0
        self._aged_at = 0.0
        self._shown = 0

    def compose_view(self) -> ComposeResult:
        app = self.fleet_app
        yield NodeTable(app.fleet, app.clock, app.jobs.count_on, id="nodes")

    @property
    def table(self) -> NodeTable:
        return self.query_one(NodeTable)

    def on_mount(self) -> None:
        bind_node_actions(self, self.fleet_app.read_only)
        self.table.sort_column = self.sort_column
        self.table.focus()
        self.fleet_changed(None)

    def view_label(self) -> str:
        total = len(self.fleet_app.fleet.nodes)
        if not self.filter_text:
            return f"nodes {total}"
        return f"nodes /{self.filter_text} {self._shown} of {total}"

    def fleet_changed(self, changes: Changes | None) -> None:
        table = self.table
        now = time.monotonic()
        if changes is None:
            table.invalidate_all()
            self._reorder()
        else:
            if changes.nodes:
                table.invalidate(changes.nodes)
                self._pending = True
            if self._pending and now - self._ordered_at >= REORDER_S:
                self._reorder()
            if now - self._aged_at >= 1.0:
                # "seen 4s" ages on nodes that send nothing: redraw what is on screen.
                self._aged_at = now
                table.invalidate(table.visible_keys())
        super().fleet_changed(changes)

    def _reorder(self) -> None:
        nodes = self.fleet_app.fleet.nodes
        f = self._filter
        names = [n for n, node in nodes.items() if node_matches(f, node)] if f else list(nodes)
        self._shown = len(names)
        self.table.set_keys(sort_names(nodes, names, self.sort_column, self.sort_reverse,
                                       self.fleet_app.jobs.count_on))
        self._pending = False
        self._ordered_at = time.monotonic()

    def jobs_changed(self) -> None:
        self.table.invalidate_all()  # the JOBS column
        if self.sort_column == "jobs":
            self._reorder()

    # -- filter and sort -------------------------------------------------------------------

    FILTER_KEYS = NODE_KEYS

    def filter_changed(self) -> None:
        self._reorder()
        super().fleet_changed(None)  # the status bar shows the filter and the count

    def on_line_table_sort_changed(self, message: LineTable.SortChanged) -> None:
        self.sort_column, self.sort_reverse = message.column, message.reverse
        self._reorder()

    def on_node_table_node_selected(self, message: NodeTable.NodeSelected) -> None:
        self.fleet_app.open_node(message.name)

    def _focus_body(self) -> None:
        self.table.focus()

    def action_node_action(self, name: str) -> None:
        key = self.table.cursor_key
        if key is not None:
            self.fleet_app.request_operation(name, [str(key)])
