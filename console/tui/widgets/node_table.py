"""Every node in one table: the Nodes view's Line-API table (see line_table.py)."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from textual.message import Message

from console.model.fleet import FleetState
from console.tui.rows import Cell, node_columns, node_row
from console.tui.widgets.line_table import LineTable

MAX_NAME_WIDTH = 28


class NodeTable(LineTable):
    """Rows keyed by node name; the owning screen decides their order."""

    DEFAULT_CSS = """
    NodeTable { height: 1fr; }
    """

    class NodeSelected(Message):
        """Enter or a second click on a node's row."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, fleet: FleetState, clock: Callable[[], float],
                 jobs: Callable[[str], int | None] | None = None, *,
                 id: str | None = None) -> None:
        self.fleet = fleet
        self.clock = clock
        self.jobs = jobs
        names = fleet.nodes.values()
        name_w = max((len(n.name) for n in names), default=4)
        dc_w = max((len(n.dc) for n in names), default=2)
        columns = node_columns(min(MAX_NAME_WIDTH, max(4, name_w)),
                               min(MAX_NAME_WIDTH, max(3, dc_w)))
        super().__init__(columns, self._cells, empty_text="no node matches the filter", id=id)

    def _cells(self, name: Hashable) -> list[Cell]:
        node = self.fleet.nodes[str(name)]
        return node_row(node, self.clock(), self.jobs(node.name) if self.jobs else None)

    def action_select(self) -> None:
        if self.keys:
            self.post_message(self.NodeSelected(str(self.keys[self.cursor_row])))
