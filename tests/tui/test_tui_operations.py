"""Operations from the console against a real embedded engine, journal and audit log:
jobs and their flags, drain/move/cordon flows with preview and progress, read-only mode,
proposed drains. Engine calls run on the app's ops thread: tests wait for their results."""

from __future__ import annotations

from pathlib import Path

from fleet_fixture import XID_NODE, screen_text
from ops_fixture import USER, engine, give_reason, make_ops_app, preview, ready, until
from test_tui_views import SIZE, capture_notes, command
from textual.widgets import Button, DataTable, Input

from agents.wire import Event
from console.state.audit import Audit
from console.tui.app import FleetApp
from console.tui.screens.audit import AuditScreen
from console.tui.screens.jobs import JobsScreen
from console.tui.screens.node import NodeScreen
from console.tui.screens.nodes import NodesScreen
from console.tui.screens.plan import PlanScreen
from console.tui.screens.progress import ProgressScreen
from console.tui.screens.reason import ReasonScreen
from console.tui.widgets.dc_panel import DcPanel
from console.tui.widgets.job_table import AuditTable, JobTable
from console.tui.widgets.node_table import NodeTable


async def test_jobs_view_lists_jobs_and_flags_what_looks_wrong(tmp_path: Path) -> None:
    async with make_ops_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await command(pilot, "jobs")
        assert isinstance(app.screen, JobsScreen)
        table = app.screen.query_one(JobTable)
        assert len(table.keys) == 19 and table.keys[0] == "j-101"
        text = screen_text(app)
        assert "▲ j-108 ocr-batch: no process on xn-mlu590-01[0,2]" in text
        assert "▲ xn-dcu-01[0-3]: busy with no job placed there" in text
        assert app.jobs.job_flag("j-118") == ""  # on a stale node: not judged
        assert "jobs 19" in text

        await pilot.press("slash")
        app.screen.query_one("CommandInput").query_one(Input).value = "flag=yes"
        await pilot.press("enter")
        await pilot.pause()
        assert table.keys == ["j-108"]
        app.screen.apply_filter("node=hz-h100-01 owner=alice,bob")
        assert table.keys == ["j-101", "j-102"]
        app.screen.apply_filter("")

        table.move_cursor_to("j-104")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen) and app.screen.node_name == XID_NODE
        jobs = app.screen.query_one("#jobs", DataTable)
        assert [jobs.get_row_at(i)[0] for i in range(jobs.row_count)] == ["j-104", "j-105"]

        await command(pilot, "nodes")
        nodes = app.screen.query_one(NodeTable)
        assert nodes.row_cells("hz-h100-01")[10] == ("3", "")
        await command(pilot, "fleet")
        panels = {p.dc: p.jobs for p in app.screen.query(DcPanel)}
        assert panels == {"hangzhou": "9", "xining": "6", "singapore": "2", "frankfurt": "1"}


async def test_a_job_placed_on_devices_without_processes_on_the_node_view(
        tmp_path: Path) -> None:
    async with make_ops_app(tmp_path).run_test(size=(120, 60)) as pilot:
        app = await ready(pilot)
        await command(pilot, "node xn-mlu590-01")
        text = screen_text(app)
        assert "▲ no process on device 0,2" in text
        await command(pilot, "node xn-dcu-01")
        assert "busy with no job placed there" in screen_text(app)


async def test_drain_from_the_nodes_view_runs_with_progress_and_is_audited(
        tmp_path: Path) -> None:
    async with make_ops_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await command(pilot, "nodes")
        app.screen.query_one(NodeTable).move_cursor_to(XID_NODE)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ReasonScreen), "the reason")
        await pilot.press("enter")  # a drain needs a reason: the question stays
        await pilot.pause()
        assert isinstance(app.screen, ReasonScreen)
        assert "a reason is required" in screen_text(app)
        await give_reason(pilot, "xid 79 on gpu3")

        plan = await preview(pilot)
        assert [s.action for s in plan.plan.steps] == ["drain", "move", "move"]
        text = screen_text(app)
        assert "move     j-104" in text and "hz-h20-01[1,5,7]" in text
        assert "job j-105 in pool nvidia: to hz-h20-01" in text

        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ProgressScreen), "progress")
        progress = app.screen
        await until(pilot, lambda: progress.outcome is not None, "the outcome")
        await pilot.pause()
        assert progress.outcome.status == "done"
        text = screen_text(app)
        assert "✔ 3/3 move j-104 hz-h100-02[0-2] -> hz-h20-01[1,5,7]" in text
        assert "plan 1 (drain hz-h100-02): done: 3 done" in text

        check = engine(tmp_path)
        assert check.admin_states() == {XID_NODE: "drained"}
        assert {j.id: j.placed_nodes for j in check.jobs()}["j-104"] == ("hz-h20-01",)
        check.close()
        await until(pilot, lambda: app.fleet.nodes[XID_NODE].admin == "drained", "the admin")
        assert app.jobs.count_on(XID_NODE) == 0

        await pilot.press("escape")
        await command(pilot, "audit")
        assert isinstance(app.screen, AuditScreen)
        audit = app.screen.query_one(AuditTable)
        await until(pilot, lambda: len(audit.keys) == 2, "the audit entries")
        newest = audit.entries[audit.keys[0]]
        assert (newest["action"], newest["user"], newest["targets"], newest["reason"],
                newest["outcome"]) == ("drain", USER, [XID_NODE], "xid 79 on gpu3",
                                       "done: 3 done")

        # ...and back into service: resume with `R` from the node view
        await command(pilot, f"node {XID_NODE}")
        await pilot.press("R")
        await give_reason(pilot, "")  # optional for resume
        await preview(pilot)
        await pilot.press("y")
        await until(pilot, lambda: app.fleet.nodes[XID_NODE].admin == "active", "resumed")


async def test_escape_at_the_preview_changes_nothing(tmp_path: Path) -> None:
    app = make_ops_app(tmp_path)
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, f"drain {XID_NODE}")
        await give_reason(pilot, "maintenance")
        await preview(pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PlanScreen)
        assert "cancelled; nothing was done" in notes[-1][0]
        assert not app.operations.busy
    check = engine(tmp_path)
    assert check.admin_states() == {}
    assert {j.id: j.placed_nodes for j in check.jobs()}["j-104"] == (XID_NODE,)
    check.close()
    assert Audit(tmp_path / "audit.db").entries() == []


async def test_an_impossible_move_shows_why_and_cannot_run(tmp_path: Path) -> None:
    async with make_ops_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await command(pilot, "jobs")
        app.screen.query_one(JobTable).move_cursor_to("j-114")
        await pilot.press("m")
        await give_reason(pilot, "free the A100s")
        plan = await preview(pilot)
        assert not plan.plan.possible
        text = screen_text(app)
        assert "refuse   j-114" in text
        assert plan.plan.refusals[0].reason[:40] in text.replace("\n", " ")
        assert "✖ impossible: 1 job(s) have nowhere to go; nothing will be done" in text
        assert plan.query_one("#execute", Button).disabled
        await pilot.press("y", "enter")
        await pilot.pause()
        assert app.screen is plan  # nothing to execute
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
    assert Audit(tmp_path / "audit.db").entries() == []


async def test_move_a_job_to_the_other_pool_by_command(tmp_path: Path) -> None:
    async with make_ops_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await command(pilot, "move j-103 domestic")
        await give_reason(pilot, "rebalance")
        plan = await preview(pilot)
        assert plan.plan.possible and plan.plan.steps[0].target_pool == "domestic"
        await pilot.press("enter")
        await until(pilot, lambda: app.jobs.jobs["j-103"].pool == "domestic", "the move")


async def test_cordon_then_uncordon_by_key(tmp_path: Path) -> None:
    async with make_ops_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await command(pilot, "nodes")
        app.screen.query_one(NodeTable).move_cursor_to("sg-h100-01")
        for key, state in (("c", "cordoned"), ("u", "active")):
            await pilot.press(key)
            await give_reason(pilot, "")
            await preview(pilot)
            await pilot.press("y")
            await until(pilot, lambda s=state: app.fleet.nodes["sg-h100-01"].admin == s, state)
            await until(pilot, lambda: not app.operations.busy, "the outcome")
            await pilot.press("escape")


async def test_read_only_offers_no_action_and_refuses_commands(tmp_path: Path) -> None:
    app = make_ops_app(tmp_path, read_only=True)
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "nodes")
        await pilot.press("r", "c", "R")
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen)
        await command(pilot, "jobs")
        assert isinstance(app.screen, JobsScreen)  # reading jobs is fine
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        assert notes == []
        await command(pilot, f"drain {XID_NODE}")
        assert "read-only: :drain changes the fleet and is refused" in notes[-1][0]
        await command(pilot, "plan rollback 1")
        assert "refused" in notes[-1][0]
        assert not isinstance(app.screen, ReasonScreen)


async def test_a_drain_class_xid_proposes_a_drain_and_waits(tmp_path: Path) -> None:
    app = make_ops_app(tmp_path)
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert not app.check_action("proposals", ())
        event = Event(v=1, node=XID_NODE, seq=999, ts=app.clock(), event="xid", severity="crit",
                      message="GPU has fallen off the bus", device_index=3, code=79,
                      action_class="DRAIN")
        app.fleet.apply(XID_NODE, event, app.clock())
        app.fleet.apply(XID_NODE, event, app.clock())  # the same again: one proposal
        app.refresh_fleet()
        proposed = [n for n, _kw in notes if "drain recommended" in n]
        assert proposed == [f"node {XID_NODE}: Xid 79 on device 3 (drain recommended) — "
                            "press D to review the drain plan"]
        assert len(app.operations.proposals) == 1 and app.check_action("proposals", ())

        await pilot.press("D")
        plan = await preview(pilot)
        assert plan.plan.kind == "drain" and plan.plan.reason == "xid 79 on gpu3 (auto-proposed)"
        assert "reason: xid 79 on gpu3 (auto-proposed)" in screen_text(app)
        await pilot.pause(0.3)
        check = engine(tmp_path)
        assert check.admin_states() == {}  # proposed, never executed on its own
        check.close()
        await pilot.press("escape")  # answered: no longer pending
        await pilot.pause()
        assert app.operations.proposals == []


async def test_rollback_a_journaled_plan_by_command(tmp_path: Path) -> None:
    async with make_ops_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await command(pilot, f"drain {XID_NODE}")
        await give_reason(pilot, "test")
        await preview(pilot)
        await pilot.press("y")
        await until(pilot, lambda: app.jobs.count_on(XID_NODE) == 0, "the drain")
        await until(pilot, lambda: not app.operations.busy, "the outcome")
        await pilot.press("escape")
        await command(pilot, "plan rollback 1")
        plan = await preview(pilot)
        assert plan.title_text.startswith("roll back plan 1 (drain hz-h100-02): done")
        await pilot.press("y")
        await until(pilot, lambda: app.jobs.count_on(XID_NODE) == 2, "the rollback")
        await until(pilot, lambda: app.fleet.nodes[XID_NODE].admin == "active", "active")


async def test_without_an_engine_jobs_and_audit_say_so() -> None:
    from fleet_fixture import make_app

    app = make_app()
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        for key in ("4", "5"):
            await pilot.press(key)
            await pilot.pause()
            assert "no operations engine attached" in notes[-1][0]
        await command(pilot, f"drain {XID_NODE}")
        assert "no operations engine attached" in notes[-1][0]


async def test_a_step_that_fails_leaves_a_partial_plan_to_resume_or_roll_back(
        tmp_path: Path, monkeypatch) -> None:
    from console.engines.base import EngineError
    from console.engines.embedded import EmbeddedEngine

    real_move = EmbeddedEngine.move

    def flaky(self, job_id, target, pool):  # the scheduler fails on j-104's move
        if job_id == "j-104":
            raise EngineError("move j-104: scheduler not responding")
        real_move(self, job_id, target, pool)

    monkeypatch.setattr(EmbeddedEngine, "move", flaky)
    app = make_ops_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, f"drain {XID_NODE}")
        await give_reason(pilot, "xid 79")
        await preview(pilot)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ProgressScreen), "progress")
        progress = app.screen
        await until(pilot, lambda: progress.outcome is not None, "the outcome")
        await pilot.pause()
        assert progress.outcome.status == "partial"
        text = screen_text(app)
        assert "plan 1 (drain hz-h100-02): partial: 2 done, step 3 failed" in text
        assert "resume or roll back: :plan resume 1  or  :plan rollback 1" in text
        await pilot.press("escape")
        await until(pilot, lambda: not app.operations.busy, "the end of the flow")

    monkeypatch.setattr(EmbeddedEngine, "move", real_move)
    app = make_ops_app(tmp_path, seed=False)  # a later console is told about it
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: any("left unfinished" in n for n, _ in notes), "the note")
        await command(pilot, "plan rollback 1")
        await preview(pilot)
        await pilot.press("y")
        await until(pilot, lambda: app.fleet.nodes[XID_NODE].admin == "active", "rolled back")
        check = engine(tmp_path)
        assert {j.id: j.placed_nodes for j in check.jobs()}["j-105"] == (XID_NODE,)
        check.close()


async def test_a_plan_confirmed_after_its_target_was_drained_asks_again(tmp_path: Path) -> None:
    """Another operator drains the drain's target while the preview is open: `y` does not run
    the stale plan; the new plan comes with what changed, and only its `y` runs it."""
    app = make_ops_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, f"drain {XID_NODE}")
        await give_reason(pilot, "xid 79")
        first = await preview(pilot)
        targets = {p.node for s in first.plan.steps for p in s.target}
        assert targets == {"hz-h20-01"}
        other = engine(tmp_path)  # the second operator, in another console
        other.drain("hz-h20-01", "RMA, do not use")
        other.close()
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen)
                    and app.screen is not first, "the plan made again")
        again = app.screen
        assert any("hz-h20-01 is draining now" in c for c in again.changed), again.changed
        text = screen_text(app)
        assert "The fleet changed since the plan you confirmed; nothing has been done" in text
        assert "hz-h20-01" not in {p.node for s in again.plan.steps for p in s.target}
        check = engine(tmp_path)
        assert check.admin_states().get(XID_NODE, "active") == "active"  # nothing ran yet
        check.close()
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ProgressScreen), "progress")
        progress = app.screen
        await until(pilot, lambda: progress.outcome is not None, "the outcome")
        assert progress.outcome.status == "done", progress.outcome.account()
        check = engine(tmp_path)
        placed = {j.id: j.placed_nodes for j in check.jobs()}
        assert "hz-h20-01" not in placed["j-104"] + placed["j-105"]  # the drained node: none
        assert set(check.holders("hz-h20-01").values()) == {"j-106", "j-107"}
        assert check.jobs_on(XID_NODE) == []
        check.close()


async def test_evacuate_a_data_center_pool(tmp_path: Path) -> None:
    async with make_ops_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await command(pilot, "evacuate singapore nvidia")
        await give_reason(pilot, "power work")
        plan = await preview(pilot)
        assert plan.plan.kind == "evacuate" and plan.plan.targets == ("singapore", "nvidia")
        assert plan.plan.steps[0].action == "cordon"
        await pilot.press("n")
        await command(pilot, "evacuate atlantis")
        assert not isinstance(app.screen, ReasonScreen)


async def test_the_palette_offers_node_actions_once_one_is_typed(tmp_path: Path) -> None:
    from console.tui.commands import FleetCommands

    for read_only in (False, True):
        app = make_ops_app(tmp_path / str(read_only), read_only=read_only)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            provider = FleetCommands(app.screen)
            titles = [t for t, _h, _c in provider._entries("drain hz", with_nodes=True)]
            assert (f":drain {XID_NODE}" in titles) != read_only
            assert not any(t.startswith(":cordon") for t in titles)


async def test_an_engine_that_cannot_open_is_one_error_line(tmp_path: Path) -> None:
    from fleet_fixture import build_fleet

    from console.engines.base import EngineError

    def broken():
        raise EngineError(f"embedded engine: cannot open {tmp_path}/jobs.db: disk I/O error")

    fleet, clock = build_fleet()
    app = FleetApp(fleet, clock=clock, ops_factory=broken)
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: notes, "the error")
        for _ in range(3):
            await app.operations.refresh_jobs()
        assert [n for n, kw in notes] == [
            f"embedded engine: cannot open {tmp_path}/jobs.db: disk I/O error"]
        assert notes[0][1]["severity"] == "error"
        await command(pilot, f"drain {XID_NODE}")
        await give_reason(pilot, "x")
        await until(pilot, lambda: not app.operations.busy, "the flow to end")
        assert "disk I/O error" in notes[-1][0] and not isinstance(app.screen, PlanScreen)
        await command(pilot, "jobs")
        assert "jobs (waiting for the engine)" in screen_text(app)


async def test_a_guardrail_blocks_the_preview_until_f_and_a_reason(tmp_path: Path) -> None:
    app = make_ops_app(tmp_path, extra="[policy]\nmax_nodes_per_window = 1\n")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "cordon sg-h100-01")
        await give_reason(pilot, "fan")
        await preview(pilot)
        await pilot.press("y")
        await until(pilot, lambda: app.fleet.nodes["sg-h100-01"].admin == "cordoned", "cordon")
        await until(pilot, lambda: not app.operations.busy, "the end of the first")
        await pilot.press("escape")
        await command(pilot, "cordon xn-a100-01")
        await give_reason(pilot, "thermal")
        plan = await preview(pilot)
        assert plan.plan.guardrails and "within 10 min" in plan.plan.guardrails[0]
        assert "over a guardrail" in screen_text(app)
        assert plan.query_one("#execute", Button).disabled
        await pilot.press("y")  # refused by the binding: nothing runs
        await pilot.pause()
        assert app.screen is plan
        await pilot.press("f")
        await give_reason(pilot, "planned maintenance window")
        await until(pilot, lambda: app.screen is plan and plan.force_reason, "the override")
        await pilot.press("y")
        await until(pilot, lambda: app.fleet.nodes["xn-a100-01"].admin == "cordoned", "forced")
    entries = Audit(tmp_path / "audit.db").entries()
    override = [e for e in entries if e["action"] == "override"]
    assert len(override) == 1 and override[0]["reason"] == "planned maintenance window"


async def test_dry_run_mode_says_so_and_executes_nothing(tmp_path: Path) -> None:
    app = make_ops_app(tmp_path, extra="dry_run = true\n")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert "dry-run" in screen_text(app)  # the status bar
        await command(pilot, f"drain {XID_NODE}")
        await give_reason(pilot, "xid 79")
        await preview(pilot)
        assert "dry-run mode: y/Enter records this plan in the audit log" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ProgressScreen), "progress")
        progress = app.screen
        await until(pilot, lambda: progress.outcome is not None, "the outcome")
        assert progress.outcome.status == "dry-run"
    check = engine(tmp_path)
    assert check.admin_states() == {} and check.jobs_on(XID_NODE)
    check.close()
    [entry] = Audit(tmp_path / "audit.db").entries()
    assert entry["outcome"].startswith("dry-run: ")
