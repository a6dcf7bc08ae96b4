"""Pilot tests: every view driven by keys (and the mouse) over the fixture fleet."""

from __future__ import annotations

from typing import Any

from fleet_fixture import AUTH_FAILED, HOSTILE_PROCESS, XID_NODE, make_app, screen_text
from textual.widgets import DataTable, Input

from console.tui.app import FleetApp
from console.tui.rows import util_pct
from console.tui.screens.events import EventsScreen
from console.tui.screens.fleet import FleetScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.node import NodeScreen
from console.tui.screens.nodes import NodesScreen
from console.tui.widgets.command_input import CommandInput
from console.tui.widgets.dc_panel import DcPanel
from console.tui.widgets.event_table import EventTable
from console.tui.widgets.node_table import NodeTable
from console.tui.widgets.sparkline import MetricSpark

SIZE = (120, 40)


def capture_notes(app: FleetApp) -> list[tuple[str, dict[str, Any]]]:
    notes: list[tuple[str, dict[str, Any]]] = []
    app.notify = lambda message, **kw: notes.append((str(message), kw))  # type: ignore
    return notes


async def command(pilot, text: str) -> None:
    """`:text` Enter. The text is set, not typed: Pilot spends ~40 ms a key, and typing
    is covered by test_typed_command_and_filter."""
    await pilot.press("colon")
    pilot.app.screen.query_one(CommandInput).query_one(Input).value = text
    await pilot.press("enter")
    await pilot.pause()


async def test_typed_command_and_filter() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"nodes", "enter")
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen)
        await pilot.press("slash", *"pool=domestic", "enter")
        await pilot.pause()
        assert len(app.screen.query_one(NodeTable).keys) == 4


async def test_first_screen_is_the_fleet_with_a_panel_per_dc() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert [p.dc for p in app.screen.query(DcPanel)] == [
            "hangzhou", "xining", "singapore", "frankfurt"]
        text = screen_text(app)
        assert "● 4 live" in text
        assert "target 72% ▼ below" in text
        assert "⊘ sg-a100-01 auth-failed: permissio" in text
        assert "◌ 1 connecting" in text  # status bar


async def test_nodes_view_filter_sort_and_drill_down() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "nodes")
        assert isinstance(app.screen, NodesScreen)
        table = app.screen.query_one(NodeTable)
        assert len(table.keys) == 12 and table.keys[0] == "fra-a100-01"

        await pilot.press("slash")
        app.screen.query_one(CommandInput).query_one(Input).value = "dc=xining"
        await pilot.press("enter")
        await pilot.pause()
        assert sorted(table.keys) == ["xn-910b-01", "xn-a100-01", "xn-dcu-01", "xn-mlu590-01"]
        assert "nodes /dc=xining 4 of 12" in screen_text(app)

        await pilot.press("escape")  # Esc clears the filter before it goes back
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen) and len(table.keys) == 12

        table.move_cursor_to(XID_NODE)
        util_x = sum(c.width + 1 for c in table.columns[:6]) + 1
        await pilot.click(NodeTable, offset=(util_x, 0))  # click the UTIL% header
        await pilot.pause()
        assert table.sort_column == "util" and not table.sort_reverse
        utils = [util_pct(app.fleet.nodes[n]) for n in table.keys]
        assert utils[-2:] == [None, None]
        assert utils[:-2] == sorted(utils[:-2])
        assert table.cursor_key == XID_NODE  # the cursor followed its node

        await pilot.press("S")
        await pilot.pause()
        assert table.sort_reverse and util_pct(app.fleet.nodes[table.keys[0]]) == max(
            u for u in utils if u is not None)
        assert table.cursor_key == XID_NODE

        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen) and app.screen.node_name == XID_NODE
        assert len(app.screen.query(MetricSpark)) == 8 * 4
        assert app.screen.query_one("#processes", DataTable).row_count > 0
        text = screen_text(app)
        assert "#3 ✖ crit  device lost" in text
        assert "Xid 79" in text

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen)


async def test_invalid_filter_says_why_in_the_prompt() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "nodes")
        await pilot.press("slash", *"foo=1")
        await pilot.pause()
        error = app.screen.query_one("#error")
        assert "unknown key 'foo'" in str(error.render())
        await pilot.press("escape")
        await pilot.pause()
        assert not app.screen.query_one(CommandInput).is_open
        assert len(app.screen.query_one(NodeTable).keys) == 12


async def test_events_newest_first_with_actions_and_enter_opens_the_node() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "events")
        assert isinstance(app.screen, EventsScreen)
        table = app.screen.query_one(EventTable)
        times = [table.events[k][1].ts for k in table.keys]
        assert len(times) == 5 and times == sorted(times, reverse=True)
        actions = [table.row_cells(k)[-1][0] for k in table.keys]
        assert "drain the node and reboot it; RMA if it recurs" in actions
        assert "drain the node's jobs and investigate the device" in actions
        assert "RECOMMENDED ACTION" in screen_text(app)
        await pilot.press("slash")
        app.screen.query_one(CommandInput).query_one(Input).value = "event=xid"
        await pilot.press("enter")
        await pilot.pause()
        assert len(table.keys) == 1
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen) and app.screen.node_name == XID_NODE


async def test_help_lists_every_key_and_command() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("Static").render())
        for expected in (":theme NAME", ":node NAME", ":dc NAME", "Command palette",
                         "Filter", "Sort", "Cordon", "Drain", "esc -"):
            assert expected in text, expected
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)


async def test_read_only_never_binds_dangerous_actions() -> None:
    app = make_app(read_only=True)
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "nodes")
        assert "c" not in app.screen._bindings.key_to_bindings
        await pilot.press("c", "r")
        await pilot.pause()
        assert notes == []
        app.request_operation("drain", [XID_NODE])
        assert notes[-1][1]["severity"] == "error"
        assert "read-only" in screen_text(app)
        await pilot.press("question_mark")
        await pilot.pause()
        assert "Cordon" not in str(app.screen.query_one("Static").render())


async def test_dangerous_action_without_an_engine_says_so() -> None:
    app = make_app()
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "nodes")
        await pilot.press("c")
        await pilot.pause()
        assert notes and "no operations engine" in notes[-1][0]


async def test_commands_theme_dc_node_and_mistakes() -> None:
    app = make_app()
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "theme fleetops-light")
        assert app.theme == "fleetops-light"
        await command(pilot, "theme nope")
        assert app.theme == "fleetops-light" and "no theme named 'nope'" in notes[-1][0]

        await command(pilot, "node nosuchnode")
        assert isinstance(app.screen, FleetScreen)
        assert notes[-1][1]["severity"] == "error" and "nosuchnode" in notes[-1][0]

        await command(pilot, "dc xining")
        assert isinstance(app.screen, NodesScreen)
        assert app.screen.filter_text == "dc=xining"

        await command(pilot, f"node {AUTH_FAILED}")
        assert isinstance(app.screen, NodeScreen)
        assert "permission denied (publickey)" in screen_text(app)

        await command(pilot, "jobs")
        assert "operations engine" in notes[-1][0]
        await command(pilot, "bogus")
        assert "unknown command :bogus" in notes[-1][0]

        await pilot.press("minus")  # back from the node to the nodes
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen)
        await pilot.press("escape", "escape")  # clear the filter, then back to the fleet
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)

        await command(pilot, "q")
    assert app.return_value == 0


async def test_enter_on_a_dc_panel_and_the_mouse() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right")  # second panel: xining
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen) and app.screen.filter_text == "dc=xining"
        await pilot.press("escape", "escape")
        await pilot.pause()
        await pilot.click(DcPanel, offset=(5, 3))  # the first panel
        await pilot.pause()
        assert app.screen.filter_text == "dc=hangzhou"
        await pilot.click(NodeTable, offset=(2, 2))  # select the second row...
        await pilot.click(NodeTable, offset=(2, 2))  # ...and open it
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen) and app.screen.node_name == XID_NODE


async def test_node_supplied_text_is_shown_neutralised() -> None:
    app = make_app(hostile_process=True)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "node hz-h100-01")
        text = screen_text(app)
        assert "[bold red]x[/]" in text  # markup shown literally, not applied
        assert "pwned" not in text and "\x1b" not in text and "\x07" not in text
        table = app.screen.query_one("#processes", DataTable)
        names = [str(table.get_row_at(i)[2]) for i in range(table.row_count)]
        assert "[bold red]x[/]" in names and HOSTILE_PROCESS not in names


async def test_palette_offers_the_same_commands() -> None:
    from console.tui.commands import FleetCommands

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        provider = FleetCommands(app.screen)
        titles = [hit.text async for hit in provider.discover()]
        assert {":nodes", ":events", ":dc xining", ":theme fleetops-high-contrast"} <= {
            str(t) for t in titles}
        hits = [hit async for hit in provider.search("node hz-h100-02")]
        assert hits
        best = max(hits, key=lambda h: h.score)
        await best.command()
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen) and app.screen.node_name == XID_NODE


async def test_fan_in_starts_in_a_worker_and_stops_on_exit() -> None:
    class FakeFanIn:
        started = stopped = False

        async def start(self) -> None:
            self.started = True

        async def stop(self) -> None:
            self.stopped = True

    fan_in = FakeFanIn()
    app = make_app()
    app.fan_in = fan_in  # type: ignore[assignment]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert fan_in.started and not fan_in.stopped
        await pilot.press("q")
    assert fan_in.stopped
