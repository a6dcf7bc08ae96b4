"""The Jobs view: every job the engine knows, where it runs, and what looks wrong.

On top, the problems: jobs whose placed devices show no process, devices busy with no job.
Flags are recomputed at most once a second while this view is shown (see jobs_index.py).
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import Static

from console.model.fleet import Changes
from console.planning.checks import other_pool
from console.tui.actions import JOB_ACTIONS, bind_node_actions
from console.tui.filtering import EMPTY, JOB_KEYS, Filter, job_matches
from console.tui.job_rows import sort_jobs
from console.tui.screens.base import FleetView
from console.tui.widgets.dc_panel import MUTED, TONE
from console.tui.widgets.job_table import JobTable
from console.tui.widgets.line_table import LineTable

FLAGS_S = 1.0
MAX_PROBLEMS = 5


class JobsScreen(FleetView):
    VIEW = "jobs"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/", priority=True),
    ]

    DEFAULT_CSS = """
    JobsScreen #problems { height: auto; padding: 0 1; background: $surface; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._filter: Filter = EMPTY
        self.sort_column = "id"
        self.sort_reverse = False
        self._shown = 0
        self._version = -1
        self._flags_at = float("-inf")

    def compose_view(self) -> ComposeResult:
        yield Static(id="problems")
        yield JobTable(self.fleet_app.jobs, id="jobs")

    @property
    def table(self) -> JobTable:
        return self.query_one(JobTable)

    def on_mount(self) -> None:
        bind_node_actions(self, self.fleet_app.read_only, JOB_ACTIONS)
        self.table.sort_column = self.sort_column
        self.table.focus()
        self.fleet_changed(None)

    def view_label(self) -> str:
        index = self.fleet_app.jobs
        if not index.loaded:
            return "jobs (waiting for the engine)"
        total = len(index.jobs)
        if not self.filter_text:
            return f"jobs {total}"
        return f"jobs /{self.filter_text} {self._shown} of {total}"

    def fleet_changed(self, changes: Changes | None) -> None:
        now = time.monotonic()
        if changes is None or now - self._flags_at >= FLAGS_S:
            self._flags_at = now
            self.fleet_app.jobs.refresh_flags(self.fleet_app.clock())
        if changes is None or self.fleet_app.jobs.version != self._version:
            self._reload()
        super().fleet_changed(changes)

    def jobs_changed(self) -> None:
        self.fleet_changed(None)

    def _reload(self) -> None:
        index = self.fleet_app.jobs
        self._version = index.version
        f = self._filter
        jobs = [j for j in index.jobs.values() if job_matches(f, j, bool(index.job_flag(j.id)))] \
            if f else list(index.jobs.values())
        self._shown = len(jobs)
        table = self.table
        table.empty_text = "no job matches the filter" if f and index.jobs else (
            "no jobs" if index.loaded else "waiting for the operations engine…")
        table.set_keys(sort_jobs(jobs, self.sort_column, self.sort_reverse, index.job_flag))
        table.invalidate_all()
        self._show_problems()

    def _show_problems(self) -> None:
        problems = self.fleet_app.jobs.problems()
        box = self.query_one("#problems", Static)
        if not problems:
            box.update(Content.styled("✔ every placed job shows its processes; no device is "
                                      "busy without a job", MUTED) if self.fleet_app.jobs.loaded
                       else "")
            return
        shown = problems[:MAX_PROBLEMS]
        lines = [Content.styled(f"▲ {text}", TONE["warn"]) for text, _key in shown]
        if len(problems) > len(shown):
            lines.append(Content.styled(f"… {len(problems) - len(shown)} more (/flag=yes for the "
                                        "jobs)", MUTED))
        box.update(Content("\n").join(lines))

    # -- filter, sort, open -----------------------------------------------------------------

    FILTER_KEYS = JOB_KEYS

    def filter_changed(self) -> None:
        self._reload()
        super().fleet_changed(None)

    def on_line_table_sort_changed(self, message: LineTable.SortChanged) -> None:
        self.sort_column, self.sort_reverse = message.column, message.reverse
        self._reload()

    def on_job_table_job_selected(self, message: JobTable.JobSelected) -> None:
        job = self.fleet_app.jobs.jobs.get(message.job_id)
        if job is None:
            return
        if not job.placement:
            self.notify(f"{job.id} is {job.state}: it is placed on no node", title="job")
            return
        self.fleet_app.open_node(job.placement[0].node)

    def _focus_body(self) -> None:
        self.table.focus()

    def action_job_action(self, name: str) -> None:
        key = self.table.cursor_key
        job = self.fleet_app.jobs.jobs.get(str(key)) if key is not None else None
        if job is not None:
            self.fleet_app.request_operation(name, [job.id], pool=other_pool(job.pool))
