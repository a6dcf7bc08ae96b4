"""FleetApp: the operator console on top of FleetState.

Frames reach FleetState elsewhere (FanIn's tasks on this same loop, or a test); the app only
reads it, on one timer: every REFRESH_S it asks the fleet what changed and hands that to
the view on screen, which redraws only the changed rows and panels. So ingest runs at any
rate, the screen at the refresh rate, and a key press never waits behind a redraw of the
whole fleet.

Views are Textual modes (fleet, nodes, events, jobs, audit), each with its own stack for
drill-downs (Enter on a node pushes its Node view): `:nodes` switches mode, Esc/`-` pops the
stack and then goes back to the previous view, like k9s' `-`.

Jobs, admin states and every action come from the operations engine through `operations`
(operations.py), which does all its I/O on one thread of its own, never on this loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, ScreenStackError
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.widgets import Input

from console.model.fleet import FleetState
from console.model.job_flags import JobsIndex
from console.model.problems import FleetIndex
from console.model.text import clean
from console.tui.actions import DANGEROUS
from console.tui.commands import (
    CommandError,
    FleetCommands,
    completions,
    parse_command,
    suggest,
)
from console.tui.operations import Operations
from console.tui.ops_link import JobsLoaded
from console.tui.screens.audit import AuditScreen
from console.tui.screens.base import FleetView
from console.tui.screens.events import EventsScreen
from console.tui.screens.fleet import FleetScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.jobs import JobsScreen
from console.tui.screens.node import NodeScreen
from console.tui.screens.nodes import NodesScreen
from themes import DEFAULT_THEME, load_themes

if TYPE_CHECKING:
    from pathlib import Path

    from textual.screen import Screen

    from console.ops.session import Ops
    from console.telemetry.ssh import FanIn

REFRESH_S = 0.25  # 4 redraws a second: smooth enough, and cheap at 10,000 nodes
STALE_CHECK_S = 1.0  # mark_stale walks every node: once a second is plenty
VIEWS = ("fleet", "nodes", "events", "jobs", "audit")
ENGINE_VIEWS = ("jobs", "audit")  # nothing to show without an operations engine
QUIT_AGAIN_S = 5.0


class FleetApp(App[int]):
    TITLE = "fleetops"

    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: handled before the key is queued for the focused widget, so what is
        # typed right after ':' lands in the prompt (check_action lets ':' into inputs).
        Binding("colon", "command_mode", "Command", key_display=":", priority=True),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("escape,minus", "back", "Back"),
        Binding("q", "quit", "Quit"),
        Binding("1", "view('fleet')", "Fleet view", show=False),
        Binding("2", "view('nodes')", "Nodes view", show=False),
        Binding("3", "view('events')", "Events view", show=False),
        Binding("4", "view('jobs')", "Jobs view", show=False),
        Binding("5", "view('audit')", "Audit view", show=False),
        Binding("D", "proposals", "Review proposed drain"),
    ]

    MODES: ClassVar = {"fleet": FleetScreen, "nodes": NodesScreen, "events": EventsScreen,
                       "jobs": JobsScreen, "audit": AuditScreen}
    DEFAULT_MODE: ClassVar[str] = "fleet"
    COMMANDS: ClassVar = App.COMMANDS | {FleetCommands}

    def __init__(self, fleet: FleetState, *, fan_in: FanIn | None = None,
                 inventory_path: str = "", read_only: bool = False,
                 theme_name: str | None = None, clock: Callable[[], float] = time.time,
                 user_theme_dir: Path | None = None,
                 ops_factory: Callable[[], Ops] | None = None, dry_run: bool = False) -> None:
        super().__init__()
        self.fleet = fleet
        self.fan_in = fan_in
        self.inventory_path = inventory_path
        self.read_only = read_only
        self.clock = clock
        # [console] dry_run: every action is planned, previewed and audited, none executed.
        self.dry_run = dry_run
        self.index = FleetIndex(fleet)
        self.jobs = JobsIndex(fleet)
        self.operations = Operations(self, ops_factory)
        # Where node and job actions go (the operations engine, when one is attached).
        self.operation_handler: Callable[..., None] | None = \
            self.operations.request if self.operations.attached else None
        self.operations_running = 0
        self._quit_asked = float("-inf")
        self._startup_problems: list[str] = []
        self.fleet_themes = load_themes(user_theme_dir, self._startup_problems)
        for theme in self.fleet_themes.values():
            self.register_theme(theme)
        wanted = theme_name or DEFAULT_THEME
        if wanted not in self.available_themes:
            self._startup_problems.append(
                f"unknown theme {clean(wanted, 40)!r}, using {DEFAULT_THEME}"
                f"{suggest(wanted, list(self.available_themes))}")
            wanted = DEFAULT_THEME
        self.theme = wanted
        self._history: list[str] = []
        self._stale_checked = float("-inf")

    @property
    def mode(self) -> str:
        """What the status bar says the console may do: read-only, dry-run, or all."""
        return "read-only" if self.read_only else "dry-run" if self.dry_run else ""

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Toasts carry text from nodes, engines, Slurm and operators: never parse it as
        markup (a stray '[/b]' would raise, '[@click=...]' would become an action). Widgets
        pass markup=True by default, so the app ignores the flag."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    async def on_mount(self) -> None:
        for problem in self._startup_problems:
            self.notify(problem, title="theme", severity="warning", timeout=10)
        if self.fan_in is not None:
            self.run_worker(self.fan_in.start(), name="fan-in", group="fan-in",
                            exclusive=True)
        self.set_interval(REFRESH_S, self.refresh_fleet, name="fleet-refresh")
        self.operations.start()

    async def on_unmount(self) -> None:
        self.operations.stop()
        if self.fan_in is not None:
            await self.fan_in.stop()

    def refresh_fleet(self) -> None:
        """One tick: stale check, then what changed goes to the view on screen."""
        if not self.is_running:
            return  # shutting down: the screens are losing their widgets
        now = self.clock()
        # With a fan-in attached, its watchdog already marks silent nodes stale (O(nodes));
        # the app does it only when it is fed some other way (tests, benchmarks).
        if self.fan_in is None and now - self._stale_checked >= STALE_CHECK_S:
            self._stale_checked = now
            self.fleet.mark_stale(now)
        changes = self.fleet.take_changes()
        if changes.nodes:
            self.index.update(changes.nodes)
            self.jobs.mark(changes.nodes)
        if changes.events:
            self.index.add_events(changes.events)
            self.operations.events_arrived(changes.events)
        screen = self.top_screen
        if isinstance(screen, FleetView) and screen.is_mounted:
            screen.fleet_changed(changes)

    @property
    def top_screen(self) -> Screen | None:
        """The screen on top, or None in the instant a mode switch has not pushed it yet
        (timers and workers run then too)."""
        try:
            return self.screen
        except ScreenStackError:
            return None

    def jobs_changed(self) -> None:
        """The engine's jobs changed: the view on screen redraws what shows them."""
        if not self.is_running:
            return
        screen = self.top_screen
        if isinstance(screen, FleetView) and screen.is_mounted:
            screen.jobs_changed()

    def on_jobs_loaded(self, message: JobsLoaded) -> None:
        self.operations.apply_jobs(message.snapshot)

    # -- navigation ------------------------------------------------------------------------

    async def show_view(self, mode: str) -> bool:
        if mode in ENGINE_VIEWS and not self.operations.attached:
            self.notify(f"no {mode} view: no operations engine attached", title=f":{mode}",
                        severity="warning")
            return False
        if mode == self.current_mode:
            while len(self.screen_stack) > 1 and isinstance(self.screen, FleetView):
                await self.pop_screen()  # `:nodes` from a node goes back to the table
            return True
        self._history = [*self._history[-19:], self.current_mode]
        await self.switch_mode(mode)
        return True

    def open_node(self, name: str) -> bool:
        if name not in self.fleet.nodes:
            self.notify(f"no node named {clean(name, 60)!r}"
                        f"{suggest(name, list(self.fleet.nodes))}", title=":node",
                        severity="error")
            return False
        screen = self.screen
        if isinstance(screen, NodeScreen):
            if screen.node_name != name:
                self.switch_screen(NodeScreen(name))  # one node view deep, not a pile
        else:
            self.push_screen(NodeScreen(name))
        return True

    async def open_dc(self, dc: str) -> bool:
        if dc not in self.fleet.dc_meta:
            self.notify(f"no data center named {clean(dc, 60)!r}"
                        f"{suggest(dc, list(self.fleet.dc_meta))}", title=":dc",
                        severity="error")
            return False
        await self.show_view("nodes")
        screen = self.screen
        if isinstance(screen, NodesScreen):
            screen.apply_filter(f"dc={dc}")
        return True

    async def run_command(self, text: str) -> bool:
        """Run one `:` command; a mistake is a notification, never an exception."""
        try:
            cmd = parse_command(text)
        except CommandError as exc:
            self.notify(str(exc), title="command", severity="error")
            return False
        if cmd.spec.dangerous and self.read_only:
            self.notify(f"read-only: :{cmd.name} changes the fleet and is refused",
                        title=f":{cmd.name}", severity="error")
            return False
        if cmd.name in VIEWS:
            return await self.show_view(cmd.name)
        if cmd.name in ("cordon", "uncordon", "drain", "resume"):
            return self.request_operation(cmd.name, list(cmd.args))
        if cmd.name == "move":
            return self.request_operation("move", list(cmd.args[:-1]), pool=cmd.args[-1])
        if cmd.name == "evacuate":
            return self.request_evacuation(cmd.arg, cmd.args[1] if len(cmd.args) > 1 else None)
        if cmd.name == "plan":
            if not self.operations.attached:
                return self.request_operation("plan", [])
            self.operations.journal_action(cmd.args[0], int(cmd.args[1]))
        elif cmd.name == "proposals":
            self.action_proposals()
        elif cmd.name == "dc":
            return await self.open_dc(cmd.arg)
        elif cmd.name == "node":
            return self.open_node(cmd.arg)
        elif cmd.name == "theme":
            if cmd.arg not in self.available_themes:
                self.notify(f"no theme named {clean(cmd.arg, 40)!r}; themes: "
                            + ", ".join(sorted(self.available_themes)), title=":theme",
                            severity="error")
                return False
            self.theme = cmd.arg
        elif cmd.name == "help":
            self.action_help()
        elif cmd.name == "q":
            self.exit(0)
        return True

    def completions(self, value: str) -> list[str]:
        def names(command: str, position: int) -> list[str]:
            if command in ("dc", "evacuate") and position == 0:
                return list(self.fleet.dc_meta)
            if command == "evacuate" or (command == "move" and position > 0):
                return ["nvidia", "domestic"]
            if command == "theme":
                return sorted(self.available_themes)
            if command in ("node", "cordon", "uncordon", "drain", "resume"):
                return list(self.fleet.nodes)
            if command == "move":
                return list(self.jobs.jobs)
            if command == "plan" and position == 0:
                return ["resume", "rollback"]
            return []

        return completions(value, names)

    def request_operation(self, name: str, targets: list[str], *, pool: str | None = None,
                          reason: str | None = None) -> bool:
        """A node or job action from a view or a command; the operations engine does it."""
        if name in DANGEROUS and self.read_only:
            self.notify(f"read-only: {name} changes the fleet and is refused", title=name,
                        severity="error")
            return False
        if self.operation_handler is None:
            self.notify(f"{name} {', '.join(targets)}: no operations engine attached",
                        title=name, severity="warning")
            return False
        self.operation_handler(name, targets, pool=pool, reason=reason)
        return True

    def request_evacuation(self, dc: str, pool: str | None) -> bool:
        if dc not in self.fleet.dc_meta:
            self.notify(f"no data center named {clean(dc, 60)!r}"
                        f"{suggest(dc, list(self.fleet.dc_meta))}", title=":evacuate",
                        severity="error")
            return False
        return self.request_operation("evacuate", [dc], pool=pool)

    # -- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        screen = self.top_screen
        if action == "command_mode":
            return isinstance(screen, FleetView) and not isinstance(self.focused, Input)
        if action == "proposals":  # shown only when there is one to review, never read-only
            return (not self.read_only and bool(self.operations.proposals)
                    and isinstance(screen, FleetView))
        if action == "view":  # not from under a question or a plan preview
            return isinstance(screen, FleetView | HelpScreen)
        return True

    def action_proposals(self) -> None:
        if self.read_only:
            self.notify("read-only: drains are refused", title="proposals", severity="error")
            return
        self.operations.review_proposal()

    async def action_quit(self) -> None:
        # Quitting mid-plan stops it after the step in progress (the journal keeps the rest
        # for `:plan resume`): worth asking twice.
        now = time.monotonic()
        if self.operations_running and now - self._quit_asked > QUIT_AGAIN_S:
            self._quit_asked = now
            self.notify("an operation is running: q again to stop it after the step in "
                        "progress and quit (:plan resume finishes it later)",
                        title="quit", severity="warning")
            return
        self.exit(0)

    def action_command_mode(self) -> None:
        screen = self.screen
        if isinstance(screen, FleetView):
            screen.open_prompt(":")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_view(self, mode: str) -> None:
        await self.show_view(mode)

    async def action_back(self) -> None:
        screen = self.screen
        if isinstance(screen, FleetView) and screen.clear_filter():
            return
        if len(self.screen_stack) > 1:
            await self.pop_screen()
        elif self._history:
            await self.switch_mode(self._history.pop())
