"""Plan execution: step by step, journaled before and after every engine call, audited, re-checked.

Crash safety rests on two facts. The journal commits `started` (with what the engine had
before) before the engine call and `done` after it, so a restarted console knows the one step
that may be half done. Engine calls are idempotent, so resume() simply redoes that step, and
rollback() restores the recorded `before` state, which is a no-op where nothing happened. A
job is never placed twice: engine moves are atomic and the engine refuses double-booking.

Team safety rests on three more. A plan runs only under its lease (lease.py): one runner per
plan, whatever runs it (run, resume, rollback, in any console). Before each step the state
the step assumed is read again (recheck.py); a step whose assumption broke is re-planned from
the fleet as it is now, with the planner's own rules, or refused with a sentence, and a drain
ends by re-planning whatever landed on its nodes meanwhile, so a done drain leaves its nodes
empty. And a rollback leaves alone what later work changed (rollback.py).

The executor blocks on disk and on the engine: the TUI calls it from a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from console.engines.base import Engine, EngineError, EngineRefused, UnknownJob
from console.model.placement import fmt_placement
from console.model.secrets import redact
from console.ops.rollback import Undo
from console.planning import guardrails
from console.planning.outcome import EXIT_CODES, Outcome, StepResult, describe
from console.planning.plan import JOB_ACTIONS, NODE_ACTIONS, Plan, Step
from console.planning.recheck import Check, Now, check
from console.state.audit import Audit
from console.state.identity import Actor
from console.state.journal import (
    GuardrailTripped,
    Journal,
    JournaledPlan,
    JournalError,
    StepRecord,
)
from console.state.lease import Heartbeat, LeaseHeld, Owner

__all__ = ["EXIT_CODES", "REASON_REQUIRED", "Executor", "Outcome", "StepResult", "describe",
           "fmt_placement"]

# progress(n, total, step, state): n is the step's 0-based index in the plan; state is
# started, done, skipped or failed (a resumed run first reports the steps already done).
Progress = Callable[[int, int, Step, str], None]
REASON_REQUIRED = ("drain", "move", "evacuate")
# Re-plans within one run, at most: a fleet changing faster than a plan runs stops it (partial,
# resumable) instead of chasing it forever.
MAX_REPLANS = 3


class Executor:
    def __init__(self, engine: Engine, journal: Journal, audit: Audit, *,
                 actor: Actor | None = None, world: Any = None,
                 limits: guardrails.Limits | None = None, dry_run: bool = False):
        self.engine = engine
        self.journal = journal
        self.audit = audit
        self.actor = actor or audit.actor  # who the journal, the leases and the audit name
        # What execution reads besides the engine (world.World: telemetry, planner); without
        # one, steps are re-checked against the engine only and a conflict is refused.
        self.world = world
        self.limits = limits or guardrails.Limits()
        self.dry_run = dry_run

    def _checkpoint(self, phase: str, n: int, when: str) -> None:
        """Test seam, a no-op: called once the journal says step `n` started (when="before")
        and after its engine call returned (when="after"); phase is "run" or "undo". The
        crash tests override it to SIGKILL the process there."""

    # -- guardrails -----------------------------------------------------------------------

    def guard(self, plan: Plan, journal: Any = None) -> list[str]:
        """The guardrails this plan trips now (a sentence each). `journal`: what reads plans in
        flight and recent closures (default this executor's journal; run() passes the reader
        of the transaction that stores the plan, so two plans cannot both slip under)."""
        if self.world is None or not guardrails.closing_nodes(plan):
            return []
        journal = journal or self.journal
        views = self.world.views(self.engine.admin_states())
        since = time.time() - self.limits.window_s
        return guardrails.refusals(plan, views, journal.closing_in_flight(),
                                   journal.closed_since(since), self.limits)

    # -- forward --------------------------------------------------------------------------

    def run(self, plan: Plan, reason: str = "", progress: Progress | None = None, *,
            force: str = "") -> Outcome:
        """Run a new plan. `force`: the operator's reason to override its guardrails."""
        # Secrets pasted into a reason are masked before the journal, the engine (node
        # reasons) or the audit log see them, whichever front end built the plan.
        reason = redact((reason or plan.reason).strip())
        if plan.kind in REASON_REQUIRED and not reason:
            raise ValueError(f"a reason is required for {plan.kind}")
        force = redact(force.strip())
        plan = dataclasses.replace(plan, reason=reason, steps=tuple(
            dataclasses.replace(s, reason=redact(s.reason)) for s in plan.steps))
        if not plan.possible:
            outcome = Outcome(
                "impossible", None, plan,
                refused=[StepResult(n, s, s.reason) for n, s in enumerate(plan.steps)
                         if s.action == "refuse"],
                pending=[StepResult(n, s) for n, s in enumerate(plan.steps)
                         if s.action != "refuse"])
            self.audit.record(plan.kind, plan.targets, reason, plan, outcome.summary())
            return outcome
        if self.dry_run:
            outcome = Outcome("dry-run", None, plan,
                              pending=[StepResult(n, s) for n, s in enumerate(plan.steps)])
            self.audit.record(plan.kind, plan.targets, reason, plan, outcome.summary())
            return outcome
        owner = Owner.of(self.actor)
        tripped = self.guard(plan)
        if not tripped or force:
            plan = dataclasses.replace(plan, guardrails=tuple(tripped))
            try:  # the check again, in the transaction that stores the plan
                plan_id = self.journal.begin(plan, self.actor.label, owner, guard=None if force
                                             else lambda reader: self.guard(plan, reader))
            except GuardrailTripped as exc:
                tripped = exc.sentences
        if tripped and not force:
            outcome = Outcome("refused", None, plan, notes=tripped)
            self.audit.record(plan.kind, plan.targets, reason, plan, outcome.summary())
            return outcome
        if tripped:
            self._audit("override", plan_id, plan, force,
                        "guardrails overridden: " + "; ".join(tripped))
        self._audit(plan.kind, plan_id, plan, reason, "started")
        with self._leased(plan_id, owner) as beat:
            outcome = self._forward(plan_id, progress, beat)
        if tripped:
            outcome.notes.append(f"override ({force}): " + "; ".join(tripped))
        self._audit(plan.kind, plan_id, plan, reason, outcome.summary())
        return outcome

    def resume(self, plan_id: int, progress: Progress | None = None) -> Outcome:
        """Finish a plan from its first step not done, re-planning what the fleet no longer
        allows. A rollback in progress is finished instead: once undoing has begun, going
        forward again would fight it."""
        owner = Owner.of(self.actor)
        self._acquire(plan_id, owner, "resume-plan")
        try:
            jp = self.journal.load(plan_id)
            if jp.status in ("rolling-back", "rolled-back"):
                return self._rollback(plan_id, "", progress, owner)
            if jp.status == "done":  # nothing to do: say so, and do not audit work not done
                return Outcome("done", plan_id, jp.plan, already=True, done=[
                    StepResult(r.n, r.step, r.detail) for r in jp.steps if r.state == "done"])
            if self.dry_run:
                return self._dry("resume-plan", plan_id, jp)
            self._audit("resume-plan", plan_id, jp.plan, jp.plan.reason, "started")
            with self._beating(plan_id, owner) as beat:
                outcome = self._forward(plan_id, progress, beat)
            self._audit("resume-plan", plan_id, jp.plan, jp.plan.reason, outcome.summary())
            return outcome
        finally:
            self._release(plan_id, owner)

    def _acquire(self, plan_id: int, owner: Owner, action: str) -> None:
        """Take the plan's lease; a refusal (someone else runs it) is audited, then raised."""
        try:
            self.journal.acquire(plan_id, owner)
        except LeaseHeld as exc:
            jp = self.journal.load(plan_id)
            self._audit(action, plan_id, jp.plan, "", f"refused: {exc}")
            raise

    def _dry(self, action: str, plan_id: int, jp: JournaledPlan) -> Outcome:
        outcome = Outcome("dry-run", plan_id, jp.plan)
        self._audit(action, plan_id, jp.plan, jp.plan.reason, f"dry-run: {action} of plan "
                                                               f"{plan_id} not executed")
        return outcome

    @contextlib.contextmanager
    def _leased(self, plan_id: int, owner: Owner) -> Iterator[Heartbeat]:
        try:
            with self._beating(plan_id, owner) as beat:
                yield beat
        finally:
            self._release(plan_id, owner)

    def _beating(self, plan_id: int, owner: Owner) -> Heartbeat:
        return Heartbeat(lambda: self.journal.renew(plan_id, owner))

    def _release(self, plan_id: int, owner: Owner) -> None:
        with contextlib.suppress(JournalError):  # it lapses on its own
            self.journal.release(plan_id, owner)

    def _forward(self, plan_id: int, progress: Progress | None, beat: Heartbeat) -> Outcome:
        jp = self.journal.load(plan_id)
        out = Outcome("done", plan_id, jp.plan)
        seen: set[int] = set()
        replans = 0
        while True:
            jp = self.journal.load(plan_id)
            out.plan, total = jp.plan, len(jp.plan.steps)
            replanned = False
            for i, rec in enumerate(jp.steps):
                n, step = rec.n, rec.step
                if n in seen:
                    continue
                seen.add(n)
                if rec.state in ("done", "skipped"):
                    (out.done if rec.state == "done" else out.skipped).append(
                        StepResult(n, step, rec.detail))
                    if progress:
                        progress(n, total, step, rec.state)
                    continue
                if beat.lost.is_set():
                    return self._fail(out, jp, i, "this console lost the plan's lease (it "
                                                  "stalled past the lease's lifetime)")
                try:
                    verdict = self._check(step)
                except Exception as exc:  # the engine cannot be read: stop, resumable
                    return self._fail(out, jp, i, _error(exc))
                if verdict.kind == "skip":
                    self.journal.mark(plan_id, n, "skipped", verdict.sentence)
                    out.skipped.append(StepResult(n, step, verdict.sentence))
                    if progress:
                        progress(n, total, step, "skipped")
                    continue
                if verdict.kind == "ok":
                    try:
                        detail = self._step(jp, rec, progress, total)
                    except EngineRefused as exc:
                        verdict = Check("conflict", _error(exc))
                    except _StepFailed as exc:
                        return self._fail(out, jp, i, exc.error)
                    else:
                        out.done.append(StepResult(n, step, detail))
                        if progress:
                            progress(n, total, step, "done")
                        continue
                # The fleet changed under this step: re-plan what is left, or refuse it.
                superseded = self._replan(jp, rec, verdict.sentence) \
                    if replans < MAX_REPLANS else None
                if superseded:
                    replans += 1
                    for r in superseded:
                        seen.add(r.n)
                        out.replanned.append(StepResult(r.n, r.step, verdict.sentence if r is rec
                                                        else "re-planned with it"))
                    replanned = True
                    break
                self._refuse(out, plan_id, rec, verdict.sentence, progress, total)
            if replanned:
                continue
            if replans < MAX_REPLANS and self._sweep(jp):
                replans += 1
                continue
            break
        if not (out.failed or out.conflicts):
            self.journal.set_status(plan_id, "done")
        else:
            out.status = "partial"
        return out

    def _step(self, jp: JournaledPlan, rec: StepRecord, progress: Progress | None,
              total: int) -> str:
        """Journal, call the engine, journal; _StepFailed for anything but a refusal."""
        n, step = rec.n, rec.step
        try:
            before = self._snapshot(step)
            self.journal.mark(jp.id, n, "started", before=before)
        except EngineRefused:
            raise
        except Exception as exc:  # nothing of this step ran
            raise _StepFailed(_error(exc)) from None
        if progress:
            progress(n, total, step, "started")
        self._checkpoint("run", n, "before")
        try:
            detail = self._apply(jp.plan, step)
        except EngineRefused:
            raise
        except Exception as exc:
            raise _StepFailed(_error(exc)) from None
        self._checkpoint("run", n, "after")
        try:
            self.journal.mark(jp.id, n, "done", detail)
        except JournalError as exc:
            # The step ran but the journal cannot say so: it stays "started", and a resume
            # redoes it, which is harmless (engine calls are idempotent).
            raise _StepFailed(f"{exc} (the step itself ran)") from None
        return detail

    def _refuse(self, out: Outcome, plan_id: int, rec: StepRecord, sentence: str,
                progress: Progress | None, total: int) -> None:
        """Not executed: its assumption broke and it could not be re-planned. The other steps
        go on (they do not depend on it); the plan ends partial, resumable."""
        detail = f"refused: {sentence}"
        with contextlib.suppress(JournalError):
            self.journal.mark(plan_id, rec.n, "failed", detail)
        out.conflicts.append(StepResult(rec.n, rec.step, sentence))
        if progress:
            progress(rec.n, total, rec.step, "failed")

    def _fail(self, out: Outcome, jp: JournaledPlan, i: int, error: str) -> Outcome:
        rec = jp.steps[i]
        with contextlib.suppress(JournalError):  # the journal may be what failed
            self.journal.mark(jp.id, rec.n, "failed", error)
        out.status = "partial"
        out.failed.append(StepResult(rec.n, rec.step, error))
        out.pending = [StepResult(r.n, r.step) for r in jp.steps[i + 1:]
                       if r.state not in ("done", "skipped")]
        return out

    # -- re-checking and re-planning ------------------------------------------------------

    def _now(self) -> Now:
        engine = self.engine

        def job(job_id: str):
            try:
                return engine.job(job_id)
            except UnknownJob:
                return None

        telemetry = self.world.telemetry if self.world is not None else (lambda node: None)
        return Now(engine.admin_states(), job, engine.holders, telemetry, engine.places_devices)

    def _check(self, step: Step) -> Check:
        return check(step, self._now())

    def drift(self, plan: Plan) -> list[str]:
        """What no longer holds of a plan not yet run (the TUI preview and the CLI prompt ask
        again when this is not empty)."""
        now = self._now()
        out = []
        for step in plan.steps:
            verdict = check(step, now)
            if verdict.kind != "ok":
                out.append(verdict.sentence)
        return out

    def fresh(self, plan: Plan, jobs: list[str] | None = None) -> Plan | None:
        """The same request planned again on the fleet as it is now; None for plans that
        place nothing (cordon, resume...) or without a world to plan on."""
        if self.world is None or plan.kind not in ("drain", "move", "evacuate"):
            return None
        planner = self.world.planner(self.engine)
        if plan.kind == "drain":
            return planner.drain([n for n in plan.targets if n in planner.nodes], plan.reason)
        if plan.kind == "move":
            wanted = [j for j in (jobs if jobs is not None else plan.targets)
                      if j in planner.jobs and not (planner.jobs[j].pool == plan.pool
                                                    and planner.jobs[j].placement)]
            return planner.move(wanted, plan.pool or "", plan.reason)
        return planner.evacuate(plan.targets[0], plan.pool, plan.reason)

    def _replan(self, jp: JournaledPlan, rec: StepRecord, why: str) -> list[StepRecord] | None:
        """Replace this step and every job step not yet done by the plan made now; returns
        the steps replaced, None if it cannot re-plan."""
        if rec.step.action not in JOB_ACTIONS or self.world is None:
            return None
        open_steps = [r for r in jp.steps
                      if r.step.action in JOB_ACTIONS and r.state not in ("done", "skipped")]
        jobs = list(dict.fromkeys(r.step.job for r in open_steps if r.step.job))
        try:
            fresh = self.fresh(jp.plan, jobs)
        except Exception:  # the planner refuses the request now (a node left the inventory)
            return None
        if fresh is None:
            return None
        new = [dataclasses.replace(s, reason=redact(s.reason)) for s in fresh.steps
               if s.action in JOB_ACTIONS]
        self.journal.append_steps(jp.id, [r.n for r in open_steps], new,
                                  f"the fleet changed: {why}")
        return open_steps

    def _sweep(self, jp: JournaledPlan) -> bool:
        """After the last step of a drain or an evacuation: jobs that reached its nodes while
        it ran (another operator's move that won the race) are planned away too."""
        if jp.plan.kind not in ("drain", "evacuate") or self.world is None:
            return False
        try:
            fresh = self.fresh(jp.plan)
        except Exception:
            return False
        new = [s for s in (fresh.steps if fresh else ()) if s.action in JOB_ACTIONS]
        if not new:
            return False
        arrived = ", ".join(dict.fromkeys(s.job or "" for s in new))
        self.journal.append_steps(jp.id, [], [dataclasses.replace(s, reason=redact(
            f"arrived since the plan was made; {s.reason}")) for s in new],
            f"jobs arrived: {arrived}")
        return True

    # -- engine calls ---------------------------------------------------------------------

    def _snapshot(self, step: Step) -> dict[str, Any]:
        """What the engine has now for the step's node or job: what rollback restores."""
        if step.action in NODE_ACTIONS:
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
            e.move(job_id, step.target, step.target_pool or e.job(job_id).pool)
        else:
            raise EngineError(f"step {step.action} {job_id or node}: cannot be executed")
        return ""

    # -- rollback -------------------------------------------------------------------------

    def rollback(self, plan_id: int, reason: str = "",
                 progress: Progress | None = None) -> Outcome:
        """Undo every step that started, newest first, restoring what the engine had before
        it, except where later work changed it since (left alone, and said so). Journaled like
        a run: a rollback killed halfway is resumed. Takes the plan's lease."""
        owner = Owner.of(self.actor)
        self._acquire(plan_id, owner, "rollback")
        try:
            return self._rollback(plan_id, reason, progress, owner)
        finally:
            self._release(plan_id, owner)

    def _rollback(self, plan_id: int, reason: str, progress: Progress | None,
                  owner: Owner) -> Outcome:
        jp = self.journal.load(plan_id)
        if jp.status == "rolled-back":
            return Outcome("rolled-back", plan_id, jp.plan, rollback=True, already=True,
                           done=[StepResult(r.n, r.step, r.detail) for r in jp.undo
                                 if r.state == "done"])
        if self.dry_run:
            return self._dry("rollback", plan_id, jp)
        self._audit("rollback", plan_id, jp.plan, reason, "started")
        with self._beating(plan_id, owner):
            out = Undo(self, plan_id, reason).run(progress)
        self._audit("rollback", plan_id, jp.plan, reason, out.summary())
        return out

    def _audit(self, action: str, plan_id: int, plan: Plan, reason: str, outcome: str) -> None:
        self.audit.record(action, plan.targets, reason,
                          {"id": plan_id, **dataclasses.asdict(plan)}, outcome)


class _StepFailed(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _error(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, EngineError) else f"{type(exc).__name__}: {text}"
