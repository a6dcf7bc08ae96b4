"""The Node view: one node's devices with their history, health, processes, events, jobs.

Everything shown here that the node sent (model, process names, reasons, messages, agent
and driver versions) is cleaned and drawn as plain Content, never as markup.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Label, Static

from agents.wire import DeviceSample
from console.model.fleet import Changes, NodeState
from console.model.text import clean
from console.tui.actions import bind_node_actions
from console.tui.job_rows import STATE_TONE
from console.tui.rows import age, event_row, health_cell, link_cell, num, recommended_action
from console.tui.screens.base import FleetView
from console.tui.widgets.dc_panel import TONE
from console.tui.widgets.sparkline import MetricSpark

METRICS = (("util", "util", 100.0, "%"), ("mem", "mem", 100.0, "%"),
           ("temp", "temp", 100.0, "°C"), ("power", "power", 100.0, "%"))


PROCESS_COLUMNS = ("processes", (("DEV", 3), ("PID", 8), ("PROCESS", 40), ("MEMORY MiB", 10)))
EVENT_COLUMNS = ("events", (("TIME", 8), ("DEV", 3), ("EVENT", 16), ("SEVERITY", 8),
                            ("MESSAGE", 44), ("RECOMMENDED ACTION", 60)))
JOB_COLUMNS = ("jobs", (("JOB", 8), ("NAME", 20), ("OWNER", 10), ("POOL", 8), ("STATE", 8),
                        ("DEVICES", 9), ("FLAG", 40)))


def _styled(cell: tuple[str, str]) -> Content:
    text, tone = cell
    return Content.styled(text, TONE.get(tone, ""))


class DeviceRow(Horizontal):
    """`#0 H100 ✔ ok` then four sparklines: utilisation, memory, temperature, power."""

    DEFAULT_CSS = """
    DeviceRow { height: 1; }
    DeviceRow > .device { width: 20; }
    DeviceRow > .metric { width: 1fr; }
    DeviceRow > .header { color: $text-muted; text-style: bold; }
    """

    def __init__(self, index: int, *, header: bool = False) -> None:
        super().__init__()
        self.index = index
        self.header = header

    def compose(self) -> ComposeResult:
        if self.header:
            yield Label("DEVICE", classes="device header")
            for title in ("UTILISATION", "MEMORY USED", "TEMPERATURE", "POWER OF LIMIT"):
                yield Label(title, classes="metric header")
            return
        yield Label("", classes="device")
        for key, _label, scale, _unit in METRICS:
            yield MetricSpark("", scale=scale, id=key)

    def show(self, sample: DeviceSample | None, model: str, node: NodeState) -> None:
        health = health_cell(sample.health if sample else None)
        self.query_one(".device", Label).update(Content.assemble(
            (f"#{self.index:<2} ", "$foreground-muted"), f"{clean(model, 8):<8} ", _styled(health)))
        history = node.history
        for key, _label, _scale, unit in METRICS:
            series = history.series(self.index, key) if history and self.index < \
                history.devices else []
            latest = _latest(sample, key)
            text = "—" if latest is None else f"{latest:.0f}{unit}"
            self.query_one(f"#{key}", MetricSpark).show(series, text)


def device_header() -> Horizontal:
    """Column titles over the device rows, laid out like a DeviceRow."""
    return DeviceRow(-1, header=True)


def _latest(s: DeviceSample | None, key: str) -> float | None:
    if s is None:
        return None
    if key == "util":
        return s.util_pct
    if key == "temp":
        return s.temp_c
    if key == "mem":
        return 100 * s.mem_used_mib / s.mem_total_mib if (
            s.mem_used_mib is not None and s.mem_total_mib) else None
    return s.power_w if s.power_w is None or not s.power_limit_w else \
        100 * s.power_w / s.power_limit_w


class NodeScreen(FleetView):
    VIEW = "node"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "app.focus_next", "Next table", show=False),
    ]

    DEFAULT_CSS = """
    NodeScreen #body { padding: 0 1; }
    NodeScreen #head { height: auto; padding: 1 0 0 0; }
    NodeScreen #error { height: auto; color: $text-error; }
    NodeScreen #devices { height: auto; }
    NodeScreen #reasons, NodeScreen #jobs-note { height: auto; }
    NodeScreen DataTable { height: auto; max-height: 16; }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.node_name = name
        self._rows: dict[str, tuple] = {}

    def view_label(self) -> str:
        return f"node {self.node_name}"

    @property
    def node(self) -> NodeState:
        return self.fleet_app.fleet.nodes[self.node_name]

    def compose_view(self) -> ComposeResult:
        with VerticalScroll(id="body"):
            yield Static(id="head")
            yield Static(id="error")
            yield Label("DEVICES", classes="section")
            yield device_header()
            yield Vertical(id="devices")
            yield Label("HEALTH", classes="section")
            yield Static(id="reasons")
            yield Label("PROCESSES", classes="section")
            yield DataTable(id="processes", cursor_type="row", zebra_stripes=True)
            yield Label("RECENT EVENTS", classes="section")
            yield DataTable(id="events", cursor_type="row", zebra_stripes=True)
            yield Label("JOBS", classes="section")
            yield Static(id="jobs-note")
            yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        bind_node_actions(self, self.fleet_app.read_only)
        # Fixed widths: DataTable does not measure Content cells, and node-supplied text
        # must not be able to push the other columns off screen anyway.
        for table_id, columns in PROCESS_COLUMNS, EVENT_COLUMNS, JOB_COLUMNS:
            table = self.query_one(f"#{table_id}", DataTable)
            for title, width in columns:
                table.add_column(title, width=width)
        self.fleet_changed(None)
        self.query_one("#body").focus()  # focusing a table would scroll the page to it

    def fleet_changed(self, changes: Changes | None) -> None:
        super().fleet_changed(changes)
        if changes is None or self.node_name in changes.nodes:
            self._show()
            self._jobs()

    def jobs_changed(self) -> None:
        self._jobs()

    # -- drawing ---------------------------------------------------------------------------

    def _show(self) -> None:
        node = self.node
        self.query_one("#head", Static).update(self._head(node))
        error = node.error if node.link != "live" else None
        box = self.query_one("#error", Static)
        box.display = bool(error)
        box.update(Content.styled(clean(error, 400), "bold $text-error") if error else "")
        self._devices(node)
        self.query_one("#reasons", Static).update(self._reasons(node))
        self._table("processes", [
            (str(d.index), str(p.pid), Content(clean(p.name)), num(p.used_mib).rjust(10))
            for d in node.samples for p in d.processes])
        rows = []
        for e in reversed(node.events):
            time_, _node, dev, kind, sev, message, _action = event_row(node.name, e)
            rows.append((time_[0], dev[0], _styled(kind), _styled(sev), Content(message[0]),
                         Content(recommended_action(e))))
        self._table("events", rows)

    def _jobs(self) -> None:
        """The jobs placed here, each flagged when its devices here show no process."""
        app = self.fleet_app
        index = app.jobs
        note = self.query_one("#jobs-note", Static)
        ids = index.on_node.get(self.node_name, [])
        if not index.loaded or not ids:
            note.display = True
            note.update(Content.styled(
                "— no job is placed on this node" if index.loaded else
                "— no operations engine attached" if not app.operations.attached else
                "— waiting for the operations engine", "$foreground-muted"))
        else:
            note.display = False
        flags = index.flags_of(self.node_name, app.clock())
        rows = []
        for job_id in ids:
            job = index.jobs[job_id]
            devices = next((p.devices for p in job.placement if p.node == self.node_name), ())
            idle = flags.idle.get(job_id)
            flag = _styled((f"▲ no process on device {','.join(map(str, idle))}", "warn")) \
                if idle else ""
            rows.append((job.id, Content(clean(job.name, 40)), Content(clean(job.owner, 20)),
                         job.pool, _styled((job.state, STATE_TONE.get(job.state, ""))),
                         ",".join(map(str, devices)), flag))
        if flags.busy:
            rows.append(("—", "", "", "", "", ",".join(map(str, flags.busy)),
                         _styled(("▲ busy with no job placed there", "warn"))))
        table = self.query_one("#jobs", DataTable)
        table.display = bool(rows)
        self._table("jobs", rows)

    def _head(self, node: NodeState) -> Content:
        hello = node.hello
        seen = "never" if node.last_seen is None else \
            f"{age(self.fleet_app.clock() - node.last_seen)} ago"
        parts: list = [(node.name, "bold $text-primary"), ("  ", ""), (node.dc, ""), " · ",
                       node.pool, " · ", _styled(link_cell(node.link))]
        if node.admin != "active":
            parts += [" · ", (node.admin, "$text-warning")]
        parts += [" · ", _styled(health_cell(node.health if node.reports else None)),
                  (f"  seen {seen}", "$foreground-muted")]
        if hello is not None:
            versions = f"agent {clean(hello.agent_version, 20)} on {clean(hello.hostname, 60)}"
            if hello.driver_version:
                versions += f" · driver {clean(hello.driver_version, 40)}"
            if hello.runtime_version:
                versions += f" · runtime {clean(hello.runtime_version, 40)}"
            parts += ["\n", (versions, "$foreground-muted")]
            if hello.node != node.name:
                parts += ["\n", (f"agent calls itself {clean(hello.node, 60)!r}",
                                 "$text-warning")]
        rejects = sum(node.rejects.values())
        if rejects:
            detail = ", ".join(f"{clean(k, 20)} {v}" for k, v in node.rejects.items())
            parts += ["\n", (f"{rejects} line(s) rejected: {detail}", "$text-warning")]
        return Content.assemble(*parts)

    def _devices(self, node: NodeState) -> None:
        box = self.query_one("#devices", Vertical)
        count = max(len(node.devices_info), len(node.samples))
        rows = list(box.query(DeviceRow))
        if len(rows) != count:
            box.remove_children()
            rows = [DeviceRow(i) for i in range(count)]
            box.mount_all(rows)
            self.call_after_refresh(self._show)  # the new rows draw once mounted
            return
        if not count:
            return
        samples = {s.index: s for s in node.samples}
        models = {d.index: d.model for d in node.devices_info}
        for row in rows:
            sample = samples.get(row.index)
            row.show(sample, models.get(row.index) or (sample.model if sample else "?"), node)

    def _reasons(self, node: NodeState) -> Content:
        if not node.reports:
            return Content.styled("— no report yet", "$foreground-muted")
        lines = []
        for d in node.samples:
            if d.health != "ok":
                cell = health_cell(d.health)
                reasons = clean("; ".join(d.reasons), 400) or "no reason given"
                lines.append(Content.assemble(f"#{d.index} ", _styled(cell), f"  {reasons}"))
        if not lines:
            return Content.styled("✔ every device passes its checks", "$text-success")
        return Content("\n").join(lines)

    def _table(self, table_id: str, rows: list[tuple]) -> None:
        """Refill a small table only when its rows changed, so its cursor stays put."""
        key = tuple(tuple(str(c) for c in r) for r in rows)
        if self._rows.get(table_id) == key:
            return
        self._rows[table_id] = key
        table = self.query_one(f"#{table_id}", DataTable)
        table.clear()
        table.add_rows(rows)

    def action_node_action(self, name: str) -> None:
        self.fleet_app.request_operation(name, [self.node_name])

