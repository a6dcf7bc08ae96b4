"""The one-line prompt at the bottom: `:` for commands, `/` for the filter.

Hidden until opened. Enter submits, Esc cancels; both hide it and hand focus back. The
owner reports a problem with what was typed through `show_error`, shown on the same line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input, Label

Mode = Literal[":", "/"]


class PrefixSuggester(Suggester):
    """Completes the last word from a list the owner keeps current (commands, names)."""

    def __init__(self, words: Callable[[str], list[str]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.words = words

    async def get_suggestion(self, value: str) -> str | None:
        if not value or value.endswith(" "):
            return None
        for word in self.words(value):
            if word.startswith(value) and word != value:
                return word
        return None


class CommandInput(Horizontal):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    DEFAULT_CSS = """
    CommandInput {
        dock: bottom;
        height: 1;
        display: none;
        background: $panel;
    }
    CommandInput.-open { display: block; }
    CommandInput > #prompt { width: 2; padding: 0 0 0 1; color: $accent; text-style: bold; }
    CommandInput > Input {
        width: 1fr; height: 1; border: none; padding: 0; background: $panel;
    }
    CommandInput > Input:focus { border: none; background: $panel; }
    CommandInput > #error { width: auto; max-width: 60%; color: $text-error; padding: 0 1; }
    """

    class Submitted(Message):
        def __init__(self, mode: Mode, value: str) -> None:
            super().__init__()
            self.mode: Mode = mode
            self.value = value

    class Changed(Message):
        """Typed text so far (the filter previews as you type)."""

        def __init__(self, mode: Mode, value: str) -> None:
            super().__init__()
            self.mode: Mode = mode
            self.value = value

    class Cancelled(Message):
        def __init__(self, mode: Mode) -> None:
            super().__init__()
            self.mode: Mode = mode

    def __init__(self, completions: Callable[[str], list[str]] | None = None) -> None:
        super().__init__()
        self.mode: Mode = ":"
        self._completions = completions

    def compose(self) -> ComposeResult:
        yield Label(":", id="prompt")
        suggester = PrefixSuggester(self._complete) if self._completions else None
        yield Input(id="line", suggester=suggester, select_on_focus=False)
        yield Label("", id="error")

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self, mode: Mode, value: str = "") -> None:
        self.mode = mode
        self.query_one("#prompt", Label).update(mode)
        self.show_error(None)
        line = self.query_one(Input)
        line.value = value
        line.cursor_position = len(value)
        self.add_class("-open")
        # Focus now, not after a refresh as focus() does: keys typed right after ':' are
        # already queued and must land in the input, not on the view behind it.
        self.screen.set_focus(line)

    def close(self) -> None:
        self.remove_class("-open")
        self.show_error(None)
        self.screen.set_focus(None)  # the owner focuses what it wants next

    def show_error(self, message: str | None) -> None:
        self.query_one("#error", Label).update(message or "")

    def _complete(self, value: str) -> list[str]:
        if self.mode != ":" or self._completions is None:
            return []
        return self._completions(value)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.is_open:
            self.post_message(self.Changed(self.mode, event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.close()
        self.post_message(self.Submitted(self.mode, event.value.strip()))

    def action_cancel(self) -> None:
        self.close()
        self.post_message(self.Cancelled(self.mode))
