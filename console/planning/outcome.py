"""What a plan's execution did, step by step, in words for people and in one line for the audit
log. Pure data: the executor fills it, the CLI prints it, the TUI shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from console.model.placement import fmt_placement
from console.planning.plan import NODE_ACTIONS, Plan, Step

Status = Literal["done", "partial", "impossible", "rolled-back", "refused", "dry-run"]
# The process exit code of each status (README, "Exit codes"): refused is a refusal like
# read-only mode; partial means some of the plan ran and the journal can finish it.
EXIT_CODES: dict[str, int] = {"done": 0, "rolled-back": 0, "dry-run": 0, "impossible": 1,
                              "refused": 2, "partial": 3}


def describe(step: Step) -> str:
    if step.action in NODE_ACTIONS:
        return f"{step.action} {step.node}"
    if step.action == "move":
        pool = f" ({step.target_pool})" if step.target_pool else ""
        return f"move {step.job} {fmt_placement(step.source)} -> {fmt_placement(step.target)}{pool}"
    return f"{step.action} {step.job}"


@dataclass(frozen=True)
class StepResult:
    n: int  # index in the plan
    step: Step
    detail: str = ""  # what happened, or the error


@dataclass
class Outcome:
    status: Status
    plan_id: int | None
    plan: Plan
    done: list[StepResult] = field(default_factory=list)
    failed: list[StepResult] = field(default_factory=list)  # the engine failed: retry
    pending: list[StepResult] = field(default_factory=list)
    refused: list[StepResult] = field(default_factory=list)  # the planner refused (impossible)
    # Not run as planned because the fleet changed under the plan: re-planned (the detail
    # says what replaced it) or refused at execution (the detail says why).
    replanned: list[StepResult] = field(default_factory=list)
    conflicts: list[StepResult] = field(default_factory=list)
    skipped: list[StepResult] = field(default_factory=list)  # nothing left to do, or (rollback)
    # left alone because later work changed it since
    notes: list[str] = field(default_factory=list)  # guardrails, overrides
    rollback: bool = False  # the lists are undo steps of a rollback
    already: bool = False  # the plan was already done (or rolled back): nothing ran now

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def summary(self) -> str:
        """One line (the audit log's outcome)."""
        if self.status == "impossible":
            return f"impossible: {len(self.refused)} refused, nothing done"
        if self.status == "refused":
            return "refused: " + "; ".join(self.notes)
        if self.status == "dry-run":
            return f"dry-run: {len(self.plan.steps)} step(s) planned, nothing executed"
        if self.already:
            return f"already {self.status}: nothing to do"
        verb = "undone" if self.rollback else "done"
        parts = [f"{len(self.done)} {verb}"]
        if self.replanned:
            parts.append(f"{len(self.replanned)} re-planned")
        if self.skipped:
            left = "left as later work made them" if self.rollback else "skipped"
            parts.append(f"{len(self.skipped)} {left}")
        parts += [f"step {r.n + 1} refused: {r.detail}" for r in self.conflicts]
        parts += [f"step {r.n + 1} failed: {r.detail}" for r in self.failed]
        if self.pending:
            parts.append(f"{len(self.pending)} not {verb}")
        return f"{self.status}: {', '.join(parts)}"

    def account(self) -> list[str]:
        """What was and was not done, for people (the CLI prints it, the TUI shows it)."""
        total = len(self.plan.steps)
        name = f"plan {self.plan_id}" if self.plan_id is not None else "plan"
        what = f"{'rollback of ' if self.rollback else ''}{name} ({self.plan.kind} " \
               f"{', '.join(self.plan.targets)})"
        lines = [f"{what}: {self.summary()}"]
        verb = "undone" if self.rollback else "done"
        rows = [("refused", r) for r in self.refused] + [(verb, r) for r in self.done]
        rows += [("re-planned", r) for r in self.replanned]
        rows += [("left" if self.rollback else "skipped", r) for r in self.skipped]
        rows += [("REFUSED", r) for r in self.conflicts] + [("FAILED", r) for r in self.failed]
        rows += [(f"not {verb}", r) for r in self.pending]
        for label, r in sorted(rows, key=lambda lr: lr[1].n if not self.rollback else -lr[1].n):
            tail = f": {r.detail}" if r.detail else ""
            lines.append(f"  {label:<10} {r.n + 1}/{total} {describe(r.step)}{tail}")
        lines += [f"  {note}" for note in self.notes if self.status != "refused"]
        if self.status == "partial":
            lines.append(
                f"Nothing is lost: every job is on its old or its new devices. {name} is "
                f"journaled: resume it to finish (it re-plans what the fleet no longer allows)"
                f"{'' if self.rollback else ' or roll it back'}.")
        elif self.status == "impossible":
            lines.append("Nothing was done: a plan runs only if every job has somewhere to go.")
        elif self.status == "refused":
            lines += [f"  {note}" for note in self.notes]
            lines.append("Nothing was done. To run it anyway: --force with a --reason (audited).")
        elif self.status == "dry-run":
            lines.append("Nothing was done: dry-run mode ([console] dry_run).")
        return lines
