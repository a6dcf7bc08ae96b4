"""Why? The first question of every action: the reason goes to the plan and the audit log."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class ReasonScreen(ModalScreen[str | None]):
    """Enter: the reason (stripped); Esc: None. A required reason cannot be left empty."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    ReasonScreen { align: center middle; }
    ReasonScreen > Vertical {
        width: 72; max-width: 100%; height: auto;
        border: round $primary; border-title-color: $text-primary; border-title-style: bold;
        background: $surface; padding: 0 1;
    }
    ReasonScreen Input { margin: 1 0 0 0; }
    ReasonScreen #error { color: $text-error; height: auto; }
    ReasonScreen .hint { color: $foreground-muted; }
    """

    def __init__(self, title: str, question: str, *, required: bool, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.required = required
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(Content(self.question))
            need = "required: it goes to the audit log" if self.required else \
                "optional; it goes to the audit log"
            yield Input(self.value, placeholder=f"reason ({need})", id="reason")
            yield Label("", id="error")
            yield Label("Enter: preview the plan · Esc: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        reason = event.value.strip()
        if self.required and not reason:
            self.query_one("#error", Label).update("a reason is required")
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)
