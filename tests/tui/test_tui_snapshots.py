"""SVG snapshots of the main screens over the fixture fleet (fixed seed, fake clock, UTC).

Update after a deliberate visual change with `pytest tests/tui --snapshot-update`, and look
at the SVGs before committing them.
"""

from __future__ import annotations

from types import SimpleNamespace

from fleet_fixture import T0, XID_NODE, make_app
from ops_fixture import give_reason, make_ops_app, preview, ready, until

from console.state import audit as audit_mod
from console.tui.widgets.job_table import AuditTable, JobTable
from console.tui.widgets.node_table import NodeTable


class TestFleetScreen:
    def test_80x24(self, snap_compare) -> None:
        assert snap_compare(make_app(), terminal_size=(80, 24))

    def test_120x40(self, snap_compare) -> None:
        assert snap_compare(make_app(), terminal_size=(120, 40))

    def test_high_contrast_read_only(self, snap_compare) -> None:
        app = make_app(read_only=True, theme_name="fleetops-high-contrast")
        assert snap_compare(app, terminal_size=(120, 40))


class TestNodesScreen:
    def test_sorted_by_health(self, snap_compare) -> None:
        async def run_before(pilot) -> None:
            await pilot.app.run_command("nodes")
            table = pilot.app.screen.query_one(NodeTable)
            table._sort("health", True)
            await pilot.pause()

        assert snap_compare(make_app(), terminal_size=(120, 30), run_before=run_before)

    def test_light_theme_80x24(self, snap_compare) -> None:
        async def run_before(pilot) -> None:
            await pilot.app.run_command("nodes")
            await pilot.pause()

        app = make_app(theme_name="fleetops-light")
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


class TestNodeScreen:
    def test_node_with_a_lost_device(self, snap_compare) -> None:
        async def run_before(pilot) -> None:
            await pilot.app.run_command(f"node {XID_NODE}")
            await pilot.pause()

        assert snap_compare(make_app(), terminal_size=(120, 50), run_before=run_before)


class TestEventsScreen:
    def test_events(self, snap_compare) -> None:
        async def run_before(pilot) -> None:
            await pilot.app.run_command("events")
            await pilot.pause()

        assert snap_compare(make_app(), terminal_size=(120, 24), run_before=run_before)


class TestHelpScreen:
    def test_help(self, snap_compare) -> None:
        assert snap_compare(make_app(), terminal_size=(100, 40), press=["question_mark"])


class TestJobsScreen:
    def test_jobs_with_flags(self, snap_compare, tmp_path) -> None:
        async def run_before(pilot) -> None:
            await ready(pilot)
            await pilot.app.run_command("jobs")
            pilot.app.screen.query_one(JobTable).move_cursor_to("j-108")
            await pilot.pause()

        assert snap_compare(make_ops_app(tmp_path), terminal_size=(140, 30),
                            run_before=run_before)


class TestPlanScreen:
    def test_drain_preview(self, snap_compare, tmp_path) -> None:
        async def run_before(pilot) -> None:
            await ready(pilot)
            await pilot.app.run_command(f"drain {XID_NODE}")
            await give_reason(pilot, "xid 79 on gpu3")
            await preview(pilot)

        assert snap_compare(make_ops_app(tmp_path), terminal_size=(120, 30),
                            run_before=run_before)

    def test_impossible_move(self, snap_compare, tmp_path) -> None:
        async def run_before(pilot) -> None:
            await ready(pilot)
            await pilot.app.run_command("move j-114 j-101 domestic")
            await give_reason(pilot, "free the A100s")
            await preview(pilot)

        assert snap_compare(make_ops_app(tmp_path), terminal_size=(120, 30),
                            run_before=run_before)


class TestAuditScreen:
    def test_after_a_drain_and_a_cordon(self, snap_compare, tmp_path, monkeypatch) -> None:
        # The audit log stamps entries with time.time(): pin it for a stable picture.
        monkeypatch.setattr(audit_mod, "time", SimpleNamespace(time=lambda: T0 + 60))

        async def run(pilot, command: str, reason: str) -> None:
            app = pilot.app
            await app.run_command(command)
            await give_reason(pilot, reason)
            await preview(pilot)
            await pilot.press("y")
            await until(pilot, lambda: not app.operations.busy, "the outcome")
            await pilot.press("escape")

        async def run_before(pilot) -> None:
            await ready(pilot)
            await run(pilot, f"drain {XID_NODE}", "xid 79 on gpu3")
            await run(pilot, "cordon xn-a100-01", "thermal: device 1 throttles")
            await pilot.app.run_command("audit")
            table = pilot.app.screen.query_one(AuditTable)
            await until(pilot, lambda: len(table.keys) == 4, "the audit entries")
            pilot.app.clear_notifications()  # the outcomes' toasts: not what this is about
            await pilot.pause()

        assert snap_compare(make_ops_app(tmp_path), terminal_size=(140, 20),
                            run_before=run_before)
