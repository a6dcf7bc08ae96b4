"""Jobs and audit entries on the Line API (a few thousand rows stay cheap to re-sort)."""

from __future__ import annotations

from collections.abc import Hashable

from textual import events
from textual.message import Message

from console.model.job_flags import JobsIndex
from console.tui.job_rows import audit_columns, audit_row, job_columns, job_row
from console.tui.rows import Cell
from console.tui.widgets.line_table import LineTable


class JobTable(LineTable):
    """Rows keyed by job id, drawn from the app's JobsIndex."""

    class JobSelected(Message):
        """Enter or a second click on a job."""

        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    def __init__(self, index: JobsIndex, *, id: str | None = None) -> None:
        self.index = index
        super().__init__(job_columns(), self._cells, empty_text="no jobs", id=id)

    def on_resize(self, event: events.Resize) -> None:
        # Multi-node placements are long: give the placement what the other columns leave.
        others = sum(c.width + 1 for c in self.columns if c.key != "placement")
        width = max(22, min(48, event.size.width - others - 2))
        if width != next(c.width for c in self.columns if c.key == "placement"):
            self.set_columns(job_columns(width))

    def _cells(self, key: Hashable) -> list[Cell]:
        job = self.index.jobs.get(str(key))
        if job is None:  # gone since the keys were set: the next reload drops the row
            return [(str(key), "muted")]
        return job_row(job, self.index.job_flag(job.id))

    def action_select(self) -> None:
        if self.keys:
            self.post_message(self.JobSelected(str(self.keys[self.cursor_row])))


class AuditTable(LineTable):
    """Audit entries, newest first, keyed by entry id (entries never change)."""

    def __init__(self, *, id: str | None = None) -> None:
        self.entries: dict[Hashable, dict] = {}
        super().__init__(audit_columns(), self._cells, sortable=False,
                         empty_text="the audit log is empty", id=id)

    def set_entries(self, entries: list[dict]) -> None:
        self.entries = {e["id"]: e for e in entries}
        self.set_keys(list(self.entries))

    def _cells(self, key: Hashable) -> list[Cell]:
        return audit_row(self.entries[key])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "select" and super().check_action(action, parameters)
