"""Plan execution: step by step, journaled before and after every engine call, audited.

Crash safety rests on two facts. The journal commits `started` (with what the engine had
before) before the engine call and `done` after it, so a restarted console knows the one step
that may be half done. Engine calls are idempotent, so resume() simply redoes that step, and
rollback() restores the recorded `before` state, which is a no-op where nothing happened. A
job is never placed twice: engine moves are atomic and the engine refuses double-booking.

The executor blocks on disk and on the engine: the TUI calls it from a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from console.ops.audit import Audit, redact
from console.ops.engines.base import Engine, EngineError
from console.ops.journal import Journal, JournaledPlan, JournalError, StepRecord
from console.ops.model import Placement
from console.ops.plan import Plan, Step

Status = Literal["done", "partial", "impossible", "rolled-back"]
# progress(n, total, step, state): n is the step's 0-based index in the plan; state is
# started, done or failed (a resumed run first reports the steps already done as done).
Progress = Callable[[int, int, Step, str], None]
REASON_REQUIRED = ("drain", "move", "evacuate")
EXIT_CODES: dict[str, int] = {"done": 0, "rolled-back": 0, "impossible": 1, "partial": 3}
_NODE_ACTIONS = ("cordon", "uncordon", "drain", "resume")


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
    failed: list[StepResult] = field(default_factory=list)
    pending: list[StepResult] = field(default_factory=list)
    refused: list[StepResult] = field(default_factory=list)
    rollback: bool = False  # the lists are undo steps of a rollback
    already: bool = False  # the plan was already done (or rolled back): nothing ran now

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def summary(self) -> str:
        """One line (the audit log's outcome)."""
        if self.status == "impossible":
            return f"impossible: {len(self.refused)} refused, nothing done"
        if self.already:
            return f"already {self.status}: nothing to do"
        verb = "undone" if self.rollback else "done"
        parts = [f"{len(self.done)} {verb}"]
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
        rows = [("refused", r) for r in self.refused] + [(verb, r) for r in self.done] + \
               [("FAILED", r) for r in self.failed] + [(f"not {verb}", r) for r in self.pending]
        for label, r in rows:
            tail = f": {r.detail}" if r.detail else ""
            lines.append(f"  {label:<10} {r.n + 1}/{total} {describe(r.step)}{tail}")
        if self.status == "partial":
            lines.append(
                f"Nothing is lost: every job is on its old or its new devices. {name} is "
                f"journaled: resume it to finish{'' if self.rollback else ' or roll it back'}."
            )
        elif self.status == "impossible":
            lines.append("Nothing was done: a plan runs only if every job has somewhere to go.")
        return lines


def fmt_placement(placement: Sequence[Placement]) -> str:
    """n1[0-3,6] + n2[0-7]"""
    parts = []
    for p in placement:
        runs: list[list[int]] = []
        for d in sorted(p.devices):
            if runs and d == runs[-1][-1] + 1:
                runs[-1].append(d)
            else:
                runs.append([d])
        parts.append(p.node + "[" + ",".join(
            f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs) + "]")
    return " + ".join(parts) or "nowhere"


def describe(step: Step) -> str:
    if step.action in _NODE_ACTIONS:
        return f"{step.action} {step.node}"
    if step.action == "move":
        pool = f" ({step.target_pool})" if step.target_pool else ""
        return f"move {step.job} {fmt_placement(step.source)} -> {fmt_placement(step.target)}{pool}"
    return f"{step.action} {step.job}"


def _norm(placement: Sequence[Placement]) -> frozenset[tuple[str, tuple[int, ...]]]:
    return frozenset((p.node, tuple(sorted(p.devices))) for p in placement)


def _nodes(placement: Sequence[Placement]) -> frozenset[tuple[str, tuple[int, ...]]]:
    return frozenset((p.node, ()) for p in placement)


def _placements(raw: list[list[Any]]) -> tuple[Placement, ...]:
    return tuple(Placement(node, tuple(devices)) for node, devices in raw)


class Executor:
    def __init__(self, engine: Engine, journal: Journal, audit: Audit):
        self.engine = engine
        self.journal = journal
        self.audit = audit

    def _checkpoint(self, phase: str, n: int, when: str) -> None:
        """Test seam, a no-op: called once the journal says step `n` started (when="before")
        and after its engine call returned (when="after"); phase is "run" or "undo". The
        crash tests override it to SIGKILL the process there."""

    # -- forward --------------------------------------------------------------------------

    def run(self, plan: Plan, user: str, reason: str = "",
            progress: Progress | None = None) -> Outcome:
        # Secrets pasted into a reason are masked before the journal, the engine (node
        # reasons) or the audit log see them, whichever front end built the plan.
        reason = redact((reason or plan.reason).strip())
        if plan.kind in REASON_REQUIRED and not reason:
            raise ValueError(f"a reason is required for {plan.kind}")
        plan = dataclasses.replace(plan, reason=reason, steps=tuple(
            dataclasses.replace(s, reason=redact(s.reason)) for s in plan.steps))
        if not plan.possible:
            outcome = Outcome(
                "impossible", None, plan,
                refused=[StepResult(n, s, s.reason) for n, s in enumerate(plan.steps)
                         if s.action == "refuse"],
                pending=[StepResult(n, s) for n, s in enumerate(plan.steps)
                         if s.action != "refuse"],
            )
            self.audit.record(plan.kind, plan.targets, reason, plan, outcome.summary(), user)
            return outcome
        plan_id = self.journal.begin(plan, user)
        self._audit(plan.kind, plan_id, plan, user, reason, "started")
        outcome = self._forward(self.journal.load(plan_id), progress)
        self._audit(plan.kind, plan_id, plan, user, reason, outcome.summary())
        return outcome

    def resume(self, plan_id: int, user: str | None = None,
               progress: Progress | None = None) -> Outcome:
        """Finish a plan from its first step not done. A rollback in progress is finished
        instead: once undoing has begun, going forward again would fight it."""
        jp = self.journal.load(plan_id)
        if jp.status in ("rolling-back", "rolled-back"):
            return self.rollback(plan_id, user, progress=progress)
        if jp.status == "done":  # nothing to do: say so, and do not audit work not done
            return Outcome("done", plan_id, jp.plan, already=True, done=[
                StepResult(r.n, r.step, r.detail) for r in jp.steps])
        user = user or getpass.getuser()
        self._audit("resume-plan", plan_id, jp.plan, user, jp.plan.reason, "started")
        outcome = self._forward(jp, progress)
        self._audit("resume-plan", plan_id, jp.plan, user, jp.plan.reason, outcome.summary())
        return outcome

    def _forward(self, jp: JournaledPlan, progress: Progress | None) -> Outcome:
        plan, total = jp.plan, len(jp.plan.steps)
        out = Outcome("done", jp.id, plan)
        for i, rec in enumerate(jp.steps):
            n, step = rec.n, rec.step
            if rec.state in ("done", "skipped"):
                out.done.append(StepResult(n, step, rec.detail))
                if progress:
                    progress(n, total, step, "done")
                continue
            try:
                before = self._snapshot(step)
            except Exception as exc:  # any failure, not only EngineError, is a partial run
                return self._fail(out, jp, i, _error(exc))
            try:
                self.journal.mark(jp.id, n, "started", before=before)
            except JournalError as exc:  # nothing of this step ran: stop before it
                return self._fail(out, jp, i, str(exc))
            if progress:
                progress(n, total, step, "started")
            self._checkpoint("run", n, "before")
            try:
                detail = self._apply(plan, step)
            except Exception as exc:
                return self._fail(out, jp, i, _error(exc))
            self._checkpoint("run", n, "after")
            try:
                self.journal.mark(jp.id, n, "done", detail)
            except JournalError as exc:
                # The step ran but the journal cannot say so: it stays "started", and a
                # resume redoes it, which is harmless (engine calls are idempotent).
                return self._fail(out, jp, i, f"{exc} (the step itself ran)")
            out.done.append(StepResult(n, step, detail))
            if progress:
                progress(n, total, step, "done")
        self.journal.set_status(jp.id, "done")
        return out

    def _fail(self, out: Outcome, jp: JournaledPlan, i: int, error: str) -> Outcome:
        rec = jp.steps[i]
        with contextlib.suppress(JournalError):  # the journal may be what failed
            self.journal.mark(jp.id, rec.n, "failed", error)
        out.status = "partial"
        out.failed.append(StepResult(rec.n, rec.step, error))
        out.pending = [StepResult(r.n, r.step) for r in jp.steps[i + 1:]]
        return out

    def _snapshot(self, step: Step) -> dict[str, Any]:
        """What the engine has now for the step's node or job: what rollback restores."""
        if step.action in _NODE_ACTIONS:
            return {"admin": self.engine.admin_states().get(step.node or "", "active")}
        job = self.engine.job(step.job or "")
        return {"placement": [[p.node, list(p.devices)] for p in job.placement],
                "pool": job.pool, "state": job.state}

    def _apply(self, plan: Plan, step: Step) -> str:
        e, node, job_id = self.engine, step.node or "", step.job or ""
        reason = plan.reason or step.reason
        if step.action == "cordon":
            e.cordon(node, reason)
        elif step.action == "uncordon":
            e.uncordon(node)
        elif step.action == "drain":
            e.drain(node, reason)
        elif step.action == "resume":
            e.resume(node)
        elif step.action == "requeue":
            e.requeue(job_id)
        elif step.action == "move":
            job = e.job(job_id)
            # A job moved by someone else since planning is not ours to move again; its own
            # target is fine (this step's first attempt got that far before a crash). An
            # engine that picks device indices itself (Slurm) is compared by nodes only, and
            # a job it holds off every node on the way to its target (requeued, pending) is
            # in transit, not "moved by someone".
            norm = _norm if e.places_devices else _nodes
            now = norm(job.placement)
            known = (norm(step.source), norm(step.target))
            if step.source and now not in known and not (
                    not e.places_devices and not job.placement):
                raise EngineError(f"move {job_id}: moved since the plan was made "
                                  f"(now on {fmt_placement(job.placement)})")
            e.move(job_id, step.target, step.target_pool or job.pool)
        else:
            raise EngineError(f"step {step.action} {job_id or node}: cannot be executed")
        return ""

    # -- rollback -------------------------------------------------------------------------

    def rollback(self, plan_id: int, user: str | None = None, reason: str = "",
                 progress: Progress | None = None) -> Outcome:
        """Undo every step that started, newest first, restoring what the engine had before
        it. A job whose old devices are now someone else's is requeued instead (and the
        account says so). Journaled like a run: a rollback killed halfway is resumed.
        progress gets the position in the rollback and the number of steps to undo."""
        user = user or getpass.getuser()
        jp = self.journal.load(plan_id)
        if jp.status == "rolled-back":
            return Outcome("rolled-back", plan_id, jp.plan, rollback=True, already=True,
                           done=[StepResult(r.n, r.step, r.detail) for r in jp.undo])
        why = f"rollback of plan {plan_id}" + (f": {reason}" if reason else "")
        self._audit("rollback", plan_id, jp.plan, user, reason, "started")
        self.journal.begin_undo(plan_id)
        jp = self.journal.load(plan_id)
        out = Outcome("rolled-back", plan_id, jp.plan, rollback=True)
        total = len(jp.undo)
        for i, rec in enumerate(jp.undo):
            if rec.state == "done":
                out.done.append(StepResult(rec.n, rec.step, rec.detail))
                if progress:
                    progress(i, total, rec.step, "done")
                continue
            self.journal.mark(plan_id, rec.n, "started", phase="undo")
            if progress:
                progress(i, total, rec.step, "started")
            self._checkpoint("undo", rec.n, "before")
            try:
                detail = self._restore(rec, why)
            except Exception as exc:
                error = _error(exc)
                self.journal.mark(plan_id, rec.n, "failed", error, phase="undo")
                out.status = "partial"
                out.failed.append(StepResult(rec.n, rec.step, error))
                out.pending = [StepResult(r.n, r.step) for r in jp.undo[i + 1:]]
                break
            self._checkpoint("undo", rec.n, "after")
            self.journal.mark(plan_id, rec.n, "done", detail, phase="undo")
            out.done.append(StepResult(rec.n, rec.step, detail))
            if progress:
                progress(i, total, rec.step, "done")
        else:
            self.journal.set_status(plan_id, "rolled-back")
        self._audit("rollback", plan_id, jp.plan, user, reason, out.summary())
        return out

    def _restore(self, rec: StepRecord, why: str) -> str:
        before = rec.before or {}
        if "admin" in before:
            return self._restore_node(rec.step.node or "", before["admin"], why)
        return self._restore_job(rec.step.job or "", before)

    def _restore_node(self, node: str, want: str, why: str) -> str:
        def closed(state: str) -> str:  # drained is draining with nothing left on it
            return "draining" if state == "drained" else state

        now, want = closed(self.engine.admin_states().get(node, "active")), closed(want)
        if now == want:
            return f"{node} already {want}"
        if want == "active" or (want == "cordoned" and now != "active"):
            self.engine.resume(node)
        if want == "cordoned":
            self.engine.cordon(node, why)
        elif want == "draining":
            self.engine.drain(node, why)
        return f"{node} {now} -> {want}"

    def _restore_job(self, job_id: str, before: dict[str, Any]) -> str:
        job = self.engine.job(job_id)
        if job.state not in ("pending", "running", "requeued"):
            return f"{job_id} is {job.state}: left alone"
        want = _placements(before.get("placement", []))
        if not want:
            if job.placement:
                self.engine.requeue(job_id)
                return f"{job_id} requeued (it was not placed before)"
            return f"{job_id} already unplaced"
        pool = before.get("pool") or job.pool
        if _norm(job.placement) == _norm(want) and job.pool == pool:
            return f"{job_id} already on {fmt_placement(want)}"
        held = {(p.node, d): j.id for j in self.engine.jobs() if j.id != job_id
                for p in j.placement for d in p.devices}
        taken = [(p.node, d) for p in want for d in p.devices if (p.node, d) in held]
        if taken:
            self.engine.requeue(job_id)
            node, device = taken[0]
            return (f"{job_id} requeued instead: device {device} of {node} is now held by "
                    f"{held[(node, device)]}")
        self.engine.move(job_id, want, pool)
        return f"{job_id} back on {fmt_placement(want)}"

    def _audit(self, action: str, plan_id: int, plan: Plan, user: str | None, reason: str,
               outcome: str) -> None:
        self.audit.record(action, plan.targets, reason,
                          {"id": plan_id, **dataclasses.asdict(plan)}, outcome, user)


def _error(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, EngineError) else f"{type(exc).__name__}: {text}"
