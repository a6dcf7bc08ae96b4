"""A plan running: step n of total, the step in progress, what is done; then the outcome.

Steps arrive as messages posted from the ops thread (the executor's progress callback). The
screen can be closed while the plan runs: the plan goes on, the status bar counts it, and the
outcome is also a notification.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, ProgressBar, Static

from console.model.text import clean
from console.planning.outcome import Outcome, describe
from console.planning.plan import Step as PlanStep
from console.tui.widgets.dc_panel import MUTED, TONE


class ProgressScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close"),
    ]

    DEFAULT_CSS = """
    ProgressScreen { align: center middle; }
    ProgressScreen > Vertical {
        width: 90%; max-width: 150; height: auto; max-height: 90%;
        border: round $accent; border-title-color: $text-primary; border-title-style: bold;
        background: $surface; padding: 0 1;
    }
    ProgressScreen ProgressBar { margin: 1 0 0 0; }
    ProgressScreen #now { height: auto; }
    ProgressScreen #log { height: auto; max-height: 100%; margin: 1 0 0 0; }
    ProgressScreen #outcome { height: auto; margin: 1 0 0 0; }
    ProgressScreen .hint { color: $foreground-muted; margin: 1 0 0 0; }
    """

    class Progressed(Message):
        """One progress report of the executor (n is 0-based; state started/done/failed)."""

        def __init__(self, n: int, total: int, step: PlanStep, state: str) -> None:
            super().__init__()
            self.n = n
            self.total = total
            self.step = step
            self.state = state

    def __init__(self, title: str, total: int) -> None:
        super().__init__()
        self.title_text = title
        self.total = total
        self.done: dict[object, Content] = {}  # step -> its line, in the order they ended
        self.outcome: Outcome | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = clean(self.title_text, 120) + " · running"
            yield ProgressBar(total=max(1, self.total), show_eta=False)
            yield Static(Content.styled("starting…", MUTED), id="now")
            with VerticalScroll(id="log"):
                yield Static("", id="done")
            yield Static("", id="outcome")
            yield Label("Esc: close — the plan runs on; the status bar counts it", classes="hint",
                        id="hint")

    @property
    def finished(self) -> bool:
        return self.outcome is not None or self.error is not None

    def on_progress_screen_progressed(self, message: Progressed) -> None:
        if self.finished:
            return
        self.total = message.total
        bar = self.query_one(ProgressBar)
        bar.update(total=max(1, message.total))
        line = f"{message.n + 1}/{message.total} {describe(message.step)}"
        if message.state == "started":
            self.query_one("#now", Static).update(Content.assemble(("now  ", MUTED), line))
            return
        symbol, tone = {"done": ("✔", "ok"), "skipped": ("·", "muted")}.get(
            message.state, ("✖", "crit"))
        self.done[message.n] = Content.assemble((f"{symbol} ", TONE[tone]), line)
        bar.update(progress=len(self.done))
        self._show_done()

    def _show_done(self) -> None:
        self.query_one("#done", Static).update(Content("\n").join(self.done.values()))
        self.query_one("#log", VerticalScroll).scroll_end(animate=False)

    def finish(self, outcome: Outcome) -> None:
        """The outcome: its account, red when only part was done, with how to go on. The
        list is redrawn from the outcome: the last progress messages may still be queued."""
        self.outcome = outcome
        ok = outcome.exit_code == 0
        total = len(outcome.plan.steps)
        verb = "undone" if outcome.rollback else "done"
        rows = [("✔", "ok", "", r) for r in outcome.done]
        rows += [("↻", "warn", "re-planned ", r) for r in outcome.replanned]
        rows += [("·", "muted", "left " if outcome.rollback else "skipped ", r)
                 for r in outcome.skipped]
        rows += [("✖", "crit", "refused ", r) for r in outcome.conflicts]
        rows += [("✖", "crit", "", r) for r in outcome.failed]
        rows += [("·", "muted", f"not {verb} ", r) for r in outcome.pending]
        rows.sort(key=lambda row: -row[3].n if outcome.rollback else row[3].n)
        self.done = {}
        for symbol, tone, label, r in rows:
            detail = f": {clean(r.detail, 300)}" if r.detail else ""
            self.done[(symbol, r.n)] = Content.assemble(
                (f"{symbol} ", TONE[tone]), f"{label}{r.n + 1}/{total} {describe(r.step)}{detail}")
        bar = self.query_one(ProgressBar)
        bar.update(total=max(1, total), progress=len(outcome.done))
        self._show_done()
        self.query_one("#now", Static).display = False
        lines = outcome.account()
        parts = [Content.styled(lines[0], TONE["ok" if ok else "crit"])]
        parts += [Content(clean(line, 400)) for line in lines[1:] if not line.startswith("  ")]
        if outcome.status == "partial" and outcome.plan_id is not None:
            pid = outcome.plan_id
            parts.append(Content.assemble(
                ("resume or roll back: ", TONE["crit"]), (f":plan resume {pid}", "bold"),
                ("  or  ", MUTED), (f":plan rollback {pid}", "bold")))
        self.query_one("#outcome", Static).update(Content("\n").join(parts))
        self._ended(outcome.status)

    def fail(self, error: str) -> None:
        """The run itself raised (the journal could not be written, the engine went away)."""
        self.error = error
        self.query_one("#now", Static).display = False
        self.query_one("#outcome", Static).update(Content.styled(
            f"✖ {clean(error, 400)}", TONE["crit"]))
        self._ended("failed")

    def _ended(self, status: str) -> None:
        box = self.query_one(Vertical)
        box.border_title = f"{clean(self.title_text, 120)} · {status}"
        self.query_one("#hint", Label).update("Esc/Enter: close")

    def action_close(self) -> None:
        self.dismiss(None)
