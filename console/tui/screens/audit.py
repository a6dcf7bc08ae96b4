"""The Audit view: who did what, when, why, with which outcome; newest first.

Read through the ops thread (the audit log is SQLite) when shown, every few seconds while
shown (a CLI on another terminal writes to it too), and after each operation.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from console.tui.filtering import (
    AUDIT_KEYS,
    EMPTY,
    Filter,
    audit_matches,
)
from console.tui.screens.base import FleetView
from console.tui.widgets.job_table import AuditTable

RELOAD_S = 5.0
LIMIT = 2000  # the newest entries; `fleetops audit` has them all


class AuditScreen(FleetView):
    VIEW = "audit"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._filter: Filter = EMPTY
        self.entries: list[dict] = []  # newest first
        self._shown = 0
        self._loading = False

    def compose_view(self) -> ComposeResult:
        yield AuditTable(id="audit")

    @property
    def table(self) -> AuditTable:
        return self.query_one(AuditTable)

    def on_mount(self) -> None:
        self.table.empty_text = "reading the audit log…"
        self.table.focus()
        self.set_interval(RELOAD_S, self.reload, name="audit-reload")
        self.reload()
        self.fleet_changed(None)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.is_mounted:
            self.reload()

    def view_label(self) -> str:
        total = len(self.entries)
        if not self.filter_text:
            return f"audit {total}"
        return f"audit /{self.filter_text} {self._shown} of {total}"

    def reload(self) -> None:
        """Read the newest entries on the ops thread; a slow read is never queued twice."""
        if not self._loading:
            self._loading = True
            self.run_worker(self._load(), group="audit", exit_on_error=False)

    async def _load(self) -> None:
        try:
            entries = await self.fleet_app.operations.read_audit(LIMIT)
        finally:
            self._loading = False
        if entries is None:
            self.table.empty_text = "the audit log could not be read"
            self.table.refresh()
            return
        self.entries = list(reversed(entries))
        self.table.empty_text = "the audit log is empty"
        self._show()

    def _show(self) -> None:
        f = self._filter
        shown = [e for e in self.entries if audit_matches(f, e)] if f else self.entries
        self._shown = len(shown)
        self.table.set_entries(shown)
        super().fleet_changed(None)

    FILTER_KEYS = AUDIT_KEYS

    def filter_changed(self) -> None:
        self._show()

    def _focus_body(self) -> None:
        self.table.focus()
