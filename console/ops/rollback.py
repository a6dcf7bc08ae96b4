"""Rolling a plan back without undoing anyone else's work.

Every step that started is undone, newest first, by restoring what the engine had before it
(recorded in the journal before the step's first attempt). But a team works on the same fleet:
since this plan ran, a later plan may have drained the node this one cordoned, or moved the job
this one moved, and someone may have changed either outside fleetops (scontrol, another tool).
Before undoing a step, then, the rollback looks for such later work, in the journal (a done
step of another plan, not itself rolled back, on the same node or job) and in the engine (the
node or job is neither as this plan left it nor as it found it). Where it finds some, that step
is left alone and the account says why ("j-1045: left where plan 38 put it"), never silently
undone. A job whose old place no longer takes it (its node closed, its devices taken) stays
where it runs, also with a sentence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from console.engines.base import EngineRefused, UnknownJob
from console.model.jobs import Placement
from console.model.placement import fmt_placement, same_place
from console.planning.outcome import Outcome, StepResult
from console.state.journal import StepRecord, subject

if TYPE_CHECKING:
    from console.ops.executor import Executor, Progress

_VERB = {"drain": "drained", "cordon": "cordoned", "uncordon": "uncordoned",
         "resume": "resumed", "move": "moved", "requeue": "requeued"}


def _closed(state: str) -> str:
    return "draining" if state == "drained" else state  # drained is draining, emptied


def _placements(raw: list[list[Any]]) -> tuple[Placement, ...]:
    return tuple(Placement(node, tuple(devices)) for node, devices in raw)


def left_by(action: str, before: str) -> set[str]:
    """Admin states (closed-equivalent) a node step leaves its node in."""
    if action == "drain":
        return {"draining"}
    if action == "cordon":
        return {"cordoned"} if before == "active" else {_closed(before)}
    if action == "resume":
        return {"active"}
    if action == "uncordon":
        return {"active"} if before == "cordoned" else {_closed(before)}
    return set()


class Undo:
    def __init__(self, executor: Executor, plan_id: int, reason: str) -> None:
        self.ex = executor
        self.plan_id = plan_id
        self.why = f"rollback of plan {plan_id}" + (f": {reason}" if reason else "")

    def run(self, progress: Progress | None) -> Outcome:
        ex, pid = self.ex, self.plan_id
        ex.journal.begin_undo(pid)
        jp = ex.journal.load(pid)
        run = {r.n: r for r in jp.steps}
        out = Outcome("rolled-back", pid, jp.plan, rollback=True)
        total = len(jp.undo)
        self._reopen_homes(jp.undo, run)
        jp = ex.journal.load(pid)  # the rows it opened are started now
        for i, rec in enumerate(jp.undo):
            step = rec.step
            if rec.state in ("done", "skipped"):
                (out.done if rec.state == "done" else out.skipped).append(
                    StepResult(rec.n, step, rec.detail))
                if progress:
                    progress(i, total, step, rec.state)
                continue
            try:
                # A row already started was being undone when the last rollback stopped: its
                # node or job may be half way, as this rollback left it; finish it.
                left = self._later_work(run[rec.n], rec) if rec.state == "pending" else None
                if left is None:
                    ex.journal.mark(pid, rec.n, "started", phase="undo")
                    if progress:
                        progress(i, total, step, "started")
                    ex._checkpoint("undo", rec.n, "before")
                    detail, left = self._restore(rec)
                    if left is None:
                        ex._checkpoint("undo", rec.n, "after")
                        ex.journal.mark(pid, rec.n, "done", detail, phase="undo")
                        out.done.append(StepResult(rec.n, step, detail))
                        if progress:
                            progress(i, total, step, "done")
                        continue
            except Exception as exc:
                from console.ops.executor import _error

                error = _error(exc)
                ex.journal.mark(pid, rec.n, "failed", error, phase="undo")
                out.status = "partial"
                out.failed.append(StepResult(rec.n, step, error))
                out.pending = [StepResult(r.n, r.step) for r in jp.undo[i + 1:]]
                return out
            ex.journal.mark(pid, rec.n, "skipped", left, phase="undo")
            out.skipped.append(StepResult(rec.n, step, left))
            if progress:
                progress(i, total, step, "skipped")
        ex.journal.set_status(pid, "rolled-back")
        return out

    def _reopen_homes(self, undo: tuple[StepRecord, ...], run: dict[int, StepRecord]) -> None:
        """Jobs go back to nodes that this plan closed (a drain's own node): the engine takes
        no job on a closed node, so such a node is opened first (its undo row marked started)
        and closed again by that row, after the jobs are back."""
        homes = {p.node for r in undo if r.state in ("pending", "started")
                 for p in _placements((r.before or {}).get("placement", []))}
        engine = self.ex.engine
        for r in undo:
            node = r.step.node
            if (node not in homes or r.state not in ("pending", "started")
                    or "admin" not in (r.before or {})):
                continue
            if r.state == "pending" and self._later_work(run[r.n], r) is not None:
                continue  # someone closed it since: leave it, and its jobs where they are
            if engine.admin_states().get(node, "active") != "active":
                self.ex.journal.mark(self.plan_id, r.n, "started", phase="undo")
                engine.resume(node)

    # -- what changed since ---------------------------------------------------------------

    def _later_work(self, ran: StepRecord, undo: StepRecord) -> str | None:
        """Why this step must be left as it is, or None to undo it."""
        step, name = ran.step, subject(ran.step) or ""
        for touch in reversed(self.ex.journal.touches(name, ran.updated_at, self.plan_id)):
            verb = _VERB.get(touch.action, touch.action)
            if step.node is not None:
                state = self.ex.engine.admin_states().get(name, "active")
                return f"{name}: left {state}: plan {touch.plan_id} {verb} it since"
            where = self._job_where(name)
            return f"{name}: left where plan {touch.plan_id} put it ({where})"
        before = undo.before or {}
        if step.node is not None:
            now = _closed(self.ex.engine.admin_states().get(name, "active"))
            was = _closed(before.get("admin", "active"))
            after = left_by(step.action, was)
            if now != was and now not in after:
                return (f"{name}: left {now}: changed outside fleetops since this plan "
                        f"{_VERB.get(step.action, step.action)} it")
            return None
        try:
            job = self.ex.engine.job(name)
        except UnknownJob:
            return f"{name}: no longer known to the engine: nothing to undo"
        by_device = self.ex.engine.places_devices
        was_at = _placements(before.get("placement", []))
        after_at = step.target if step.action == "move" else ()
        if (not same_place(job.placement, was_at, by_device)
                and not same_place(job.placement, after_at, by_device)
                and not (not by_device and not job.placement)):
            return (f"{name}: left on {fmt_placement(job.placement)}: moved outside fleetops "
                    "since this plan")
        return None

    def _job_where(self, job_id: str) -> str:
        try:
            return fmt_placement(self.ex.engine.job(job_id).placement)
        except UnknownJob:
            return "finished"

    # -- restoring ------------------------------------------------------------------------

    def _restore(self, rec: StepRecord) -> tuple[str, str | None]:
        """(what was done, None) or ("", why it was left)."""
        before = rec.before or {}
        if "admin" in before:
            return self._restore_node(rec.step.node or "", before["admin"]), None
        return self._restore_job(rec.step.job or "", before)

    def _restore_node(self, node: str, want: str) -> str:
        engine = self.ex.engine
        now, want = _closed(engine.admin_states().get(node, "active")), _closed(want)
        if now == want:
            return f"{node} already {want}"
        if want == "active" or (want == "cordoned" and now != "active"):
            engine.resume(node)
        if want == "cordoned":
            engine.cordon(node, self.why)
        elif want == "draining":
            engine.drain(node, self.why)
        return f"{node} {now} -> {want}"

    def _restore_job(self, job_id: str, before: dict[str, Any]) -> tuple[str, str | None]:
        engine = self.ex.engine
        job = engine.job(job_id)
        if job.state not in ("pending", "running", "requeued"):
            return f"{job_id} is {job.state}: left alone", None
        want = _placements(before.get("placement", []))
        if not want:
            if job.placement:
                engine.requeue(job_id)
                return f"{job_id} requeued (it was not placed before)", None
            return f"{job_id} already unplaced", None
        pool = before.get("pool") or job.pool
        if same_place(job.placement, want) and job.pool == pool:
            return f"{job_id} already on {fmt_placement(want)}", None
        here = f"{job_id}: left on {fmt_placement(job.placement)}"
        admin = engine.admin_states()
        own = set(job.placed_nodes)
        for p in want:
            state = admin.get(p.node, "active")
            if p.node not in own and state != "active":
                return "", f"{here}: its old node {p.node} is {state} now"
            held = engine.holders(p.node) if engine.places_devices else {}
            taken = [d for d in p.devices if held.get(d, job_id) != job_id]
            if taken:
                return "", (f"{here}: device {taken[0]} of {p.node} is held by "
                            f"{held[taken[0]]} now")
        try:
            engine.move(job_id, want, pool)
        except EngineRefused as exc:  # closed or taken between the look and the move
            return "", f"{here}: {exc}"
        return f"{job_id} back on {fmt_placement(want)}", None
