"""What every fleet view shares: the `:`/`/` prompt, the status bar, the footer, refreshes.

The app calls `fleet_changed(changes)` on the active view once per refresh tick with what
changed since the last tick; `None` means "draw everything" (the view was just shown, or it
missed ticks while another view was on top).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input

from console.model.fleet import Changes
from console.tui.filtering import FilterError, parse_filter
from console.tui.widgets.command_input import CommandInput
from console.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from console.tui.app import FleetApp


class FleetView(Screen):
    VIEW: ClassVar[str] = ""

    DEFAULT_CSS = """
    FleetView { background: $background; }
    FleetView #chrome { dock: bottom; height: auto; }
    FleetView #chrome > * { dock: none; }
    FleetView .section {
        color: $text-primary; text-style: bold; padding: 1 0 0 0; height: auto;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self._filter_before = ""

    @property
    def fleet_app(self) -> FleetApp:
        return cast("FleetApp", self.app)

    def compose(self) -> ComposeResult:
        yield from self.compose_view()
        # One docked box: widgets docked to the same edge would overlap, not stack.
        with Vertical(id="chrome"):
            yield CommandInput(self.fleet_app.completions)
            yield StatusBar(self.view_label())
            yield Footer()

    def compose_view(self) -> ComposeResult:
        yield from ()

    def view_label(self) -> str:
        return self.VIEW

    # -- refresh ---------------------------------------------------------------------------

    def fleet_changed(self, changes: Changes | None) -> None:
        app = self.fleet_app
        self.query_one(StatusBar).set_status(self.view_label(), app.fleet.totals().nodes,
                                              app.inventory_path, app.mode,
                                              app.operations_running)

    def jobs_changed(self) -> None:
        """The engine's jobs changed (app.jobs); views that show jobs override this."""

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.fleet_changed(None)

    # -- prompt ----------------------------------------------------------------------------

    def open_prompt(self, mode: str, value: str = "") -> None:
        prompt = self.query_one(CommandInput)
        if mode == "/":
            self._filter_before = self.filter_text
        prompt.open(":" if mode == ":" else "/", value)

    # The filter keys of this view (console/tui/filtering.py); None: the view has no filter.
    FILTER_KEYS: ClassVar[dict[str, tuple[str, ...] | None] | None] = None

    def apply_filter(self, text: str) -> str | None:
        """Filter the view by `text`; the error to show, or None."""
        if self.FILTER_KEYS is None:
            return "this view has no filter"
        try:
            parsed = parse_filter(text, self.FILTER_KEYS)
        except FilterError as exc:
            return str(exc)
        self._filter, self.filter_text = parsed, text.strip()
        if self.is_mounted:
            self.filter_changed()
        return None

    def filter_changed(self) -> None:
        """Show the rows the new filter lets through (views that filter override)."""

    def clear_filter(self) -> bool:
        """Esc on a filtered view clears the filter first; True when there was one."""
        if not self.filter_text:
            return False
        self.apply_filter("")
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("node_action", "job_action"):  # never bound read-only; refused anyway
            return not self.fleet_app.read_only
        # '/' is a priority binding (see FleetApp's ':'): let it into the prompt itself.
        return not (action == "filter" and isinstance(self.focused, Input))

    def action_filter(self) -> None:
        self.open_prompt("/", self.filter_text)

    async def on_command_input_submitted(self, message: CommandInput.Submitted) -> None:
        self._focus_body()
        if message.mode == ":":
            if message.value:
                await self.fleet_app.run_command(message.value)
            return
        error = self.apply_filter(message.value)
        if error:
            self.apply_filter(self._filter_before)
            self.notify(error, title="filter", severity="error")

    def on_command_input_changed(self, message: CommandInput.Changed) -> None:
        if message.mode == "/":
            self.query_one(CommandInput).show_error(self.apply_filter(message.value))

    def on_command_input_cancelled(self, message: CommandInput.Cancelled) -> None:
        if message.mode == "/":
            self.apply_filter(self._filter_before)
        self._focus_body()

    def _focus_body(self) -> None:
        """Give focus back to the view's main widget after the prompt closes."""
        self.focus_next()
