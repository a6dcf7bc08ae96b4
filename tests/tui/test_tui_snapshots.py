"""SVG snapshots of the main screens over the fixture fleet (fixed seed, fake clock, UTC).

Update after a deliberate visual change with `pytest tests/tui --snapshot-update`, and look
at the SVGs before committing them.
"""

from __future__ import annotations

from fleet_fixture import XID_NODE, make_app

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
