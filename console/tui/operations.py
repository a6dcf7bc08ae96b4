"""Operations from the console: reason -> plan -> preview -> confirm -> run, with progress.

The same Ops as the CLI (engine, journal, audit, planner, executor), every call on the one
ops thread (ops_link.py), so what the console does is journaled and audited exactly like
`fleetops drain`. Nothing runs without the operator's `y`: a drain the console proposes
after a DRAIN-class Xid waits in `proposals` until someone reviews it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.xid import DRAIN_CLASSES
from console.model.text import clean
from console.ops.executor import Outcome, Progress
from console.planning.plan import Plan
from console.planning.plan_diff import plan_changes
from console.state.lease import LeaseHeld
from console.tui.commands import suggest
from console.tui.ops_link import JobsLoaded, JobsSnapshot, OpsLink, error_line, read_jobs
from console.tui.screens.plan import PlanScreen
from console.tui.screens.progress import ProgressScreen
from console.tui.screens.reason import ReasonScreen

if TYPE_CHECKING:
    from agents.wire import DeviceInfo, DeviceSample, Event
    from console.model.fleet import FleetState
    from console.ops.session import Ops
    from console.tui.app import FleetApp

JOBS_REFRESH_S = 2.0
LIVE_REFRESH_S = 1.0  # while a plan runs, jobs are re-read from its own thread this often
SNAPSHOT_WAIT_S = 5.0  # the ops thread waits this long for the UI loop's copy of the fleet
NODE_KINDS = ("cordon", "uncordon", "resume")
REASON_REQUIRED = ("drain", "move", "evacuate")
QUESTIONS = {
    "drain": "moves every job off, then keeps the node out of service.",
    "cordon": "stops new placements; running jobs stay.",
    "uncordon": "allows placements again.",
    "resume": "returns the node to service.",
    "move": "moves the job, whole, to the other pool.",
    "evacuate": "cordons the nodes and moves every job out of the data center.",
}


class PlanStopped(Exception):
    """Raised from the progress callback after a step is journaled done: the console is
    quitting. The plan stays open in the journal; `:plan resume ID` finishes it."""


@dataclass(frozen=True)
class Proposal:
    node: str
    reason: str  # the drain's reason, pre-filled: "xid 79 on gpu3 (auto-proposed)"


@dataclass(frozen=True, slots=True)
class _NodeSnap:
    """What planning reads of a node (see fleet_views.node_views), taken on the loop."""

    devices_info: list[DeviceInfo]
    samples: list[DeviceSample]
    link: str


@dataclass(frozen=True)
class _FleetSnap:
    nodes: dict[str, _NodeSnap]


def fleet_snapshot(fleet: FleetState) -> _FleetSnap:
    """The fleet as the planner sees it, copied on the loop so the ops thread never reads
    state the loop is changing (sample lists are replaced, never mutated, so copying the
    references is enough)."""
    return _FleetSnap({n: _NodeSnap(list(s.devices_info), list(s.samples), s.link)
                       for n, s in fleet.nodes.items()})


def make_plan(ops: Ops, kind: str, targets: list[str], pool: str | None, reason: str) -> Plan:
    """On the ops thread: the plan for an action, on the live fleet the ops carry."""
    if kind in NODE_KINDS:
        return ops.node_plan(kind, targets, reason)
    planner = ops.planner()
    if kind == "drain":
        return ops.finish(planner.drain(targets, reason))
    if kind == "move":
        return ops.finish(planner.move(targets, pool or "", reason))
    if kind == "evacuate":
        return ops.finish(planner.evacuate(targets[0], pool, reason))
    raise ValueError(f"unknown operation {kind!r}")


def proposal_for(node: str, e: Event) -> tuple[str, str] | None:
    """(what happened, the drain's reason) for an event that calls for a drain, else None."""
    where = f" on device {e.device_index}" if e.device_index is not None else ""
    gpu = f" on gpu{e.device_index}" if e.device_index is not None else ""
    if e.event == "xid" and e.action_class in DRAIN_CLASSES:
        return f"Xid {e.code}{where}", f"xid {e.code}{gpu} (auto-proposed)"
    if e.event == "device-lost":
        return f"device lost{where}", f"device-lost{gpu} (auto-proposed)"
    return None


class Operations:
    def __init__(self, app: FleetApp, factory: Callable[[], Ops] | None) -> None:
        self.app = app
        self.link = OpsLink(self._opener(factory)) if factory is not None else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_snapshot: _FleetSnap | None = None
        self.proposals: list[Proposal] = []
        self.busy = False  # an action is between its first question and its outcome
        self._loading = False
        self._last_error: str | None = None
        self._unfinished_checked = False
        self._stop = threading.Event()  # set on quit: a running plan stops after its step

    @property
    def attached(self) -> bool:
        return self.link is not None

    def _opener(self, factory: Callable[[], Ops]) -> Callable[[], Ops]:
        def open_ops() -> Ops:  # on the ops thread
            ops = factory()
            ops.attach(self.live_fleet)  # execution re-checks against the live fleet
            return ops

        return open_ops

    def live_fleet(self) -> _FleetSnap:
        """On the ops thread: a copy of the live fleet, taken on the UI loop (which owns it).
        If the loop does not answer in time (quitting), the last copy."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return self._last_snapshot or fleet_snapshot(self.app.fleet)
        done: concurrent.futures.Future[_FleetSnap] = concurrent.futures.Future()

        def take() -> None:
            if not done.cancelled():
                done.set_result(fleet_snapshot(self.app.fleet))

        try:
            loop.call_soon_threadsafe(take)
            self._last_snapshot = done.result(timeout=SNAPSHOT_WAIT_S)
        except (RuntimeError, concurrent.futures.TimeoutError):
            done.cancel()
        return self._last_snapshot or _FleetSnap({})

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.link is not None:
            self.app.run_worker(self._poll(), name="jobs", group="jobs", exit_on_error=False)

    def stop(self) -> None:
        self._stop.set()
        if self.link is not None:
            self.link.close()

    # -- jobs and admin states ------------------------------------------------------------

    async def _poll(self) -> None:
        while True:
            if await self.refresh_jobs() and not self._unfinished_checked:
                self._unfinished_checked = True
                await self._check_unfinished()
            await asyncio.sleep(JOBS_REFRESH_S)

    async def refresh_jobs(self) -> bool:
        """Read jobs and admin states on the ops thread and apply them; True on success."""
        if self.link is None or self._loading:
            return False
        self._loading = True
        try:
            snapshot = await self.link.call(read_jobs)
        except Exception as exc:
            self._error("jobs", exc)
            return False
        finally:
            self._loading = False
        self._last_error = None
        self.apply_jobs(snapshot)
        return True

    def apply_jobs(self, snapshot: JobsSnapshot) -> None:
        app = self.app
        changed = app.jobs.set_jobs(snapshot.jobs, app.clock())
        fleet = app.fleet
        for name, node in fleet.nodes.items():
            admin = snapshot.admin.get(name, "active")
            if node.admin != admin:  # set_admin marks the node changed: only when it is
                fleet.set_admin(name, admin)
        # A node already draining needs no proposal any more.
        kept = [p for p in self.proposals if fleet.nodes[p.node].admin in ("active", "cordoned")]
        if len(kept) != len(self.proposals):
            self.proposals = kept
            app.refresh_bindings()
        if changed:
            app.jobs_changed()

    async def _check_unfinished(self) -> None:
        assert self.link is not None
        try:
            ids = await self.link.call(lambda ops: ops.journal.unfinished())
        except Exception as exc:
            self._error("journal", exc)
            return
        for pid in ids[-3:]:
            self.app.notify(f"plan {pid} was left unfinished: :plan resume {pid} or "
                            f":plan rollback {pid}", title="journal", severity="warning",
                            timeout=20)

    async def read_audit(self, limit: int) -> list[dict] | None:
        if self.link is None:
            return None
        try:
            return await self.link.call(lambda ops: ops.audit.entries(limit=limit))
        except Exception as exc:
            self._error("audit", exc)
            return None

    def _error(self, title: str, exc: BaseException) -> None:
        """One notification per distinct failure, not one every refresh."""
        line = error_line(exc)
        if line != self._last_error:
            self._last_error = line
            self.app.notify(line, title=title, severity="error", timeout=10)

    # -- proposed drains ------------------------------------------------------------------

    def events_arrived(self, events: list[tuple[str, Event]]) -> None:
        app = self.app
        for node, event in events:
            found = proposal_for(node, event)
            state = app.fleet.nodes[node].admin if node in app.fleet.nodes else None
            if found is None or state in (None, "draining", "drained"):
                continue
            if any(p.node == node for p in self.proposals):
                continue  # one pending proposal per node
            what, reason = found
            if app.read_only or not self.attached:
                why = "read-only" if app.read_only else "no operations engine attached"
                app.notify(f"node {node}: {clean(what, 60)} (drain recommended; {why})",
                           title="drain recommended", severity="warning", timeout=20)
                continue
            self.proposals.append(Proposal(node, reason))
            app.notify(f"node {node}: {clean(what, 60)} (drain recommended) — press D to review "
                       "the drain plan", title="drain proposed", severity="warning", timeout=30)
            app.refresh_bindings()

    def review_proposal(self) -> None:
        """The newest pending proposal's drain plan, its reason filled in; nothing runs until
        the operator confirms. Answered either way, it is no longer pending."""
        if not self.proposals:
            self.app.notify("no drain is proposed", title="proposals")
            return
        p = self.proposals[-1]
        self.request("drain", [p.node], reason=p.reason, proposal=p)

    def _answered(self, proposal: Proposal) -> None:
        if proposal in self.proposals:
            self.proposals.remove(proposal)
            self.app.refresh_bindings()

    # -- actions --------------------------------------------------------------------------

    def _may_start(self, what: str) -> bool:
        app = self.app
        if app.read_only:
            app.notify(f"read-only: {what} changes the fleet and is refused", title=what,
                       severity="error")
            return False
        if self.link is None:
            app.notify(f"{what}: no operations engine attached", title=what, severity="warning")
            return False
        if self.busy:
            app.notify("another operation is in progress: wait for its outcome", title=what,
                       severity="warning")
            return False
        self.busy = True
        return True

    def request(self, kind: str, targets: list[str], *, pool: str | None = None,
                reason: str | None = None, proposal: Proposal | None = None) -> None:
        if self._may_start(kind):
            self.app.run_worker(self._flow(kind, targets, pool, reason, proposal),
                                group="operation", exit_on_error=False)

    def journal_action(self, verb: str, plan_id: int) -> None:
        """`:plan resume ID` / `:plan rollback ID`."""
        if self._may_start(f"plan {verb}"):
            self.app.run_worker(self._journal_flow(verb, plan_id), group="operation",
                                exit_on_error=False)

    async def _flow(self, kind: str, targets: list[str], pool: str | None, reason: str | None,
                    proposal: Proposal | None) -> None:
        app = self.app
        title = f"{kind} {' '.join(targets)}" + (f" → {pool}" if pool else "")
        try:
            if reason is None:
                subject = f"{kind.capitalize()} {' '.join(targets)}" + (
                    f" to pool {pool}" if pool and kind == "move" else "")
                reason = await app.push_screen_wait(ReasonScreen(
                    title, f"{clean(subject, 200)}: {QUESTIONS.get(kind, '')}\nWhy?",
                    required=kind in REASON_REQUIRED))
                if reason is None:
                    return
            plan = await self._plan(kind, targets, pool, reason)
            if plan is None:
                return
            changed: list[str] = []
            while True:
                screen = PlanScreen(plan, title=f"plan: {title}", changed=changed,
                                    dry_run=self.dry_run)
                go = await app.push_screen_wait(screen)
                if proposal is not None:
                    self._answered(proposal)
                if not go:
                    app.notify(f"{title}: cancelled; nothing was done", title=kind)
                    return
                # The preview may have been open for minutes: look again before running.
                fresh, changed = await self._recheck(plan, kind, targets, pool, reason)
                if not changed:
                    break
                plan = fresh
            force = screen.force_reason
            await self._execute(title, len(plan.steps), lambda ops, progress: ops.executor.run(
                plan, reason or "", progress, force=force))
        except Exception as exc:
            app.notify(error_line(exc), title=kind, severity="error", timeout=10)
        finally:
            self.busy = False

    async def _plan(self, kind: str, targets: list[str], pool: str | None,
                    reason: str) -> Plan | None:
        app, link = self.app, self.link
        assert link is not None
        if kind in (*NODE_KINDS, "drain"):
            unknown = [n for n in targets if n not in app.fleet.nodes]
            if unknown:
                app.notify(f"no node named {clean(unknown[0], 60)!r}"
                           f"{suggest(unknown[0], list(app.fleet.nodes))}", title=kind,
                           severity="error")
                return None
        return await link.call(lambda ops: make_plan(ops, kind, targets, pool, reason))

    async def _recheck(self, plan: Plan, kind: str, targets: list[str], pool: str | None,
                       reason: str) -> tuple[Plan, list[str]]:
        """(the plan made now, what changed since `plan` was made)."""
        assert self.link is not None

        def again(ops: Ops) -> tuple[Plan, list[str]]:
            fresh = make_plan(ops, kind, targets, pool, reason)
            drift = ops.executor.drift(plan)
            return fresh, list(dict.fromkeys([*drift, *plan_changes(plan, fresh)]))

        return await self.link.call(again)

    @property
    def dry_run(self) -> bool:
        return self.app.dry_run

    async def _journal_flow(self, verb: str, plan_id: int) -> None:
        app = self.app
        assert self.link is not None
        try:
            jp = await self.link.call(lambda ops: ops.journal.load(plan_id))
            done = sum(1 for r in jp.steps if r.state in ("done", "skipped"))
            what = "roll back" if verb == "rollback" else "resume"
            title = (f"{what} plan {plan_id} ({jp.plan.kind} {' '.join(jp.plan.targets)}): "
                     f"{jp.status}, {done} of {len(jp.plan.steps)} steps done")
            held = await self.link.call(lambda ops: ops.journal.lease(plan_id))
            if held is not None and held.alive(time.time()):
                app.notify(clean(LeaseHeld(held).args[0], 300), title=f"plan {verb}",
                           severity="error", timeout=15)
                return
            if not await app.push_screen_wait(PlanScreen(jp.plan, title=title,
                                                         dry_run=self.dry_run)):
                app.notify(f"plan {plan_id}: cancelled; nothing was done", title=f"plan {verb}")
                return
            if verb == "rollback":
                await self._execute(f"roll back plan {plan_id}", len(jp.steps),
                                    lambda ops, p: ops.executor.rollback(plan_id, progress=p))
            else:
                await self._execute(f"resume plan {plan_id}", len(jp.plan.steps),
                                    lambda ops, p: ops.executor.resume(plan_id, p))
        except Exception as exc:
            app.notify(error_line(exc), title=f"plan {verb}", severity="error", timeout=10)
        finally:
            self.busy = False

    async def _execute(self, title: str, total: int,
                       run: Callable[[Ops, Progress], Outcome]) -> Outcome | None:
        """Run on the ops thread with a live progress screen; the outcome is shown there and
        as a notification (the screen may have been closed meanwhile)."""
        app, link = self.app, self.link
        assert link is not None
        screen = ProgressScreen(title, total)
        await app.push_screen(screen)

        def work(ops: Ops) -> Outcome:  # on the ops thread
            last = time.monotonic()

            def progress(n: int, total: int, step: Any, state: str) -> None:
                nonlocal last
                screen.post_message(ProgressScreen.Progressed(n, total, step, state))
                if state == "done" and self._stop.is_set():
                    raise PlanStopped("stopped: the console quit")
                if state == "done" and time.monotonic() - last >= LIVE_REFRESH_S:
                    last = time.monotonic()  # the periodic refresh waits behind this plan
                    app.post_message(JobsLoaded(read_jobs(ops)))

            return run(ops, progress)

        app.operations_running += 1
        try:
            outcome = await link.call(work)
        except Exception as exc:
            line = error_line(exc)
            if screen.is_attached:
                screen.fail(line)
            app.notify(f"{title}: {line}", title="operation", severity="error", timeout=15)
            return None
        finally:
            app.operations_running -= 1
            await self.refresh_jobs()
        if screen.is_attached:
            screen.finish(outcome)
        app.notify(outcome.summary(), title=title,
                   severity="information" if outcome.exit_code == 0 else "error",
                   timeout=10 if outcome.exit_code == 0 else 30)
        return outcome
