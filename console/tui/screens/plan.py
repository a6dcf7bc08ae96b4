"""The plan preview: every step (action, job or node, from, to, why) before anything runs.

Refusals are red with their sentence, notes yellow; an impossible plan says so and cannot be
executed. A plan over a guardrail says which, in red, and runs only after `f` and a reason for
the override (audited). When the fleet changed since the plan shown last (another operator
drained a target while the preview was open), the new plan comes with what changed, and is
asked about again. `y`/Enter executes (dismisses True), `n`/Esc cancels (False): nothing has
changed until then. Everything shown is plan data or node/job names, drawn as Content, never
markup.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Static

from console.model.placement import fmt_placement
from console.model.text import clean
from console.planning.plan import Plan, Step
from console.tui.widgets.dc_panel import MUTED, TONE

ACTION_TONE = {"move": "ok", "requeue": "warn", "refuse": "crit"}  # node steps: accent
INDENT = 5  # the why line sits under the action column


def _fit(text: str, width: int) -> str:
    size = cell_len(text)
    return text + " " * (width - size) if size <= width else text[: max(0, width - 1)] + "…"


def step_cells(step: Step) -> tuple[str, str, str]:
    """(job or node, from, to) as the CLI's table shows them."""
    to = fmt_placement(step.target) if step.target else "—"
    if step.target_pool:
        to += f" ({step.target_pool})"
    return (step.job or step.node or "", fmt_placement(step.source) if step.source else "—", to)


def step_lines(plan: Plan, width: int) -> list[Content]:
    """The steps as a table whose why column wraps under each step, for `width` cells."""
    cells = [step_cells(s) for s in plan.steps]
    subject_w = min(24, max([len("JOB / NODE"), *(cell_len(c[0]) for c in cells)]))
    # FROM gets up to half of what is left (multi-node placements are long); TO the rest.
    room = max(20, (width - (3 + 2 + 8 + 1 + subject_w + 1 + 3)) // 2)
    from_w = min(room, max([len("FROM"), *(cell_len(c[1]) for c in cells)]))
    head = f"{'#':>3}  {'ACTION':<8} {_fit('JOB / NODE', subject_w)} {_fit('FROM', from_w)}   TO"
    lines = [Content.styled(head, f"bold {MUTED}")]
    why_width = max(10, width - INDENT)
    for n, (step, (subject, source, target)) in enumerate(zip(plan.steps, cells, strict=True), 1):
        tone = TONE[ACTION_TONE.get(step.action, "info")]
        lines.append(Content.assemble(
            f"{n:>3}  ", (f"{step.action:<8}", tone), " ", (_fit(subject, subject_w), "bold"),
            " ", _fit(source, from_w), (" → " if step.target else "   ", MUTED), target))
        why = Content.styled(clean(step.reason, 600), TONE["crit"] if step.action == "refuse"
                             else MUTED)
        lines += [Content(" " * INDENT) + part for part in why.wrap(why_width)]
    return lines


def summary(plan: Plan) -> Content:
    counts = Counter(s.action for s in plan.steps)
    parts = " · ".join(f"{n} {action}" for action, n in counts.items())
    reason = f"reason: {clean(plan.reason, 200)}" if plan.reason else "no reason given"
    return Content.assemble((reason, "bold"), "\n", (f"{len(plan.steps)} step(s): {parts}", MUTED))


def verdict(plan: Plan, *, dry_run: bool = False, forced: bool = False) -> Content:
    if not plan.steps:
        return Content.styled("nothing to do", MUTED)
    if not plan.possible:
        return Content.styled(f"✖ impossible: {len(plan.refusals)} job(s) have nowhere to go; "
                              "nothing will be done", TONE["crit"])
    if plan.guardrails and not forced:
        return Content.assemble(("✖ over a guardrail: ", TONE["crit"]), "f overrides it (asks "
                                "why; audited) · n/Esc cancels: nothing has changed yet")
    if dry_run:
        return Content.assemble(("dry-run mode: ", TONE["warn"]), "y/Enter records this plan in "
                                "the audit log and executes nothing · n/Esc cancels")
    return Content.assemble(("✔ ", TONE["ok"]), f"y/Enter executes these {len(plan.steps)} "
                            "step(s) · n/Esc cancels: nothing has changed yet")


class PlanSteps(Widget):
    """The steps; the why sentences wrap to whatever width the modal has."""

    DEFAULT_CSS = "PlanSteps { height: auto; }"

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan
        self._cache: tuple[int, list[Content]] | None = None

    def _lines(self, width: int) -> list[Content]:
        if self._cache is None or self._cache[0] != width:
            self._cache = (width, step_lines(self.plan, width))
        return self._cache[1]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Content:
        return Content("\n").join(self._lines(self.content_size.width))


class PlanScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "execute", "Execute"),
        Binding("f", "override", "Override guardrail"),
        Binding("n,escape", "cancel", "Cancel"),
    ]

    DEFAULT_CSS = """
    PlanScreen { align: center middle; }
    PlanScreen > Vertical {
        width: 90%; max-width: 150; height: auto; max-height: 90%;
        border: round $primary; border-title-color: $text-primary; border-title-style: bold;
        background: $surface; padding: 0 1;
    }
    PlanScreen #steps { height: auto; max-height: 100%; margin: 1 0 0 0; }
    PlanScreen #notes { color: $text-warning; height: auto; margin: 1 0 0 0; }
    PlanScreen #changed { color: $text-warning; height: auto; margin: 1 0 0 0; }
    PlanScreen #guardrails { color: $text-error; height: auto; margin: 1 0 0 0; }
    PlanScreen #verdict { height: auto; margin: 1 0 0 0; }
    PlanScreen #buttons { height: auto; align-horizontal: right; }
    PlanScreen Button { margin: 0 0 0 2; min-width: 16; }
    """

    def __init__(self, plan: Plan, title: str | None = None, *,
                 changed: list[str] | None = None, dry_run: bool = False) -> None:
        super().__init__()
        self.plan = plan
        self.title_text = title or f"plan: {plan.kind} {' '.join(plan.targets)}"
        self.changed = changed or []  # what changed since the plan shown before this one
        self.dry_run = dry_run
        self.force_reason = ""  # the operator's reason to override the plan's guardrails

    def compose(self) -> ComposeResult:
        plan = self.plan
        with Vertical() as box:
            box.border_title = clean(self.title_text, 120)
            changed = Static(Content("\n").join(
                [Content.styled("The fleet changed since the plan you confirmed; nothing has "
                                "been done. This is the plan now. What changed:", "bold"),
                 *(Content(f"  - {clean(c, 300)}") for c in self.changed)]), id="changed")
            changed.display = bool(self.changed)
            yield changed
            yield Static(summary(plan), id="summary")
            with VerticalScroll(id="steps"):
                yield PlanSteps(plan)
            notes = Static(Content("\n").join(
                Content(f"note: {clean(n, 400)}") for n in plan.notes), id="notes")
            notes.display = bool(plan.notes)
            yield notes
            guards = Static(Content("\n").join(
                Content(clean(g, 400)) for g in plan.guardrails), id="guardrails")
            guards.display = bool(plan.guardrails)
            yield guards
            yield Static(verdict(plan, dry_run=self.dry_run), id="verdict")
            with Horizontal(id="buttons"):
                yield Button("Execute  y", id="execute", variant="error",
                             disabled=not self.executable)
                yield Button("Cancel  n", id="cancel")

    @property
    def executable(self) -> bool:
        return (self.plan.possible and bool(self.plan.steps)
                and (not self.plan.guardrails or bool(self.force_reason)))

    def on_mount(self) -> None:
        # Not a button: Enter must mean Execute only through the binding, which checks.
        self.query_one("#steps").focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "execute":
            return self.executable
        if action == "override":
            return bool(self.plan.guardrails) and self.plan.possible and not self.force_reason
        return True

    def action_override(self) -> None:
        from console.tui.screens.reason import ReasonScreen

        def answered(reason: str | None) -> None:
            if not reason:
                return
            self.force_reason = reason
            self.query_one("#verdict", Static).update(
                verdict(self.plan, dry_run=self.dry_run, forced=True))
            self.query_one("#execute", Button).disabled = False
            self.refresh_bindings()

        self.app.push_screen(ReasonScreen(
            "override guardrail", "This plan is over a guardrail ([policy]). Why must it run "
            "anyway? (the audit log keeps the answer)", required=True), answered)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "execute":
            self.action_execute()
        else:
            self.action_cancel()

    def action_execute(self) -> None:
        if self.executable:
            self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
