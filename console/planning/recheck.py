"""Does a step still hold? What execution re-reads before each step, as pure functions.

A plan is made from one reading of the fleet and may run minutes later, while other operators
work: a target may have been drained, its devices taken, the job moved or finished. Before each
step the executor reads the state the step depends on (from the engine, and the fleet's
telemetry) and asks here whether the step's assumptions still hold:

- ok: run it;
- skip: nothing left to do (the job finished, the node is already where the step would put it);
- conflict: an assumption broke; the sentence says which ("hz-2 is drained now"), and the
  executor re-plans or refuses the step, never runs it as planned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from console.model.jobs import Job, NodeView, Placement
from console.model.placement import fmt_placement, same_place
from console.planning.plan import Step

Kind = Literal["ok", "skip", "conflict"]
OPEN = ("pending", "running", "requeued")
# How far out of service an admin state is: reopening a node is refused once someone closed it
# further than the plan saw.
_CLOSED_RANK = {"active": 0, "cordoned": 1, "draining": 2, "drained": 2}


@dataclass(frozen=True, slots=True)
class Check:
    kind: Kind
    sentence: str = ""


OK = Check("ok")


@dataclass(frozen=True)
class Now:
    """The fleet as execution reads it for one step."""

    admin: Mapping[str, str]  # engine admin states (absent: active)
    job: Callable[[str], Job | None]  # engine's job now; None if unknown or finished
    holders: Callable[[str], Mapping[int, str]]  # node -> device -> job id holding it
    telemetry: Callable[[str], NodeView | None]  # link, health; None: not known
    places_devices: bool = True


def check(step: Step, now: Now) -> Check:
    if step.action in ("resume", "uncordon"):
        return _reopen(step, now)
    if step.action in ("cordon", "drain"):
        return OK  # closing a node is safe whatever happened to it since (idempotent)
    if step.action == "move":
        return _move(step, now)
    if step.action == "requeue":
        return _requeue(step, now)
    return OK


def _reopen(step: Step, now: Now) -> Check:
    node = step.node or ""
    state = now.admin.get(node, "active")
    if state == "active":
        return Check("skip", f"{node} is already active")
    if step.seen is not None and _CLOSED_RANK[state] > _CLOSED_RANK.get(step.seen, 0):
        return Check("conflict", f"{node} was {step.seen} when planned and is {state} now: "
                                 f"someone closed it since; not reopened")
    return OK


def _job_now(step: Step, now: Now) -> tuple[Job | None, Check | None]:
    job = now.job(step.job or "")
    if job is None:
        return None, Check("skip", f"{step.job} is no longer known to the engine")
    if job.state not in OPEN:
        return None, Check("skip", f"{step.job} is {job.state}: nothing to move")
    return job, None


def _move(step: Step, now: Now) -> Check:
    job, verdict = _job_now(step, now)
    if job is None:
        return verdict or OK
    pool = step.target_pool or job.pool
    if same_place(job.placement, step.target, now.places_devices) and job.pool == pool:
        return OK  # already there (a first attempt got that far): the engine call is a no-op
    in_transit = not now.places_devices and not job.placement  # Slurm holds it off every node
    if step.source and not in_transit and not same_place(job.placement, step.source,
                                                         now.places_devices):
        return Check("conflict", f"{job.id} moved since the plan was made (now on "
                                 f"{fmt_placement(job.placement)})")
    own = {p.node for p in job.placement}
    for part in step.target:
        if part.node in own:
            continue  # a part that stays where the job already runs: not a new placement
        sentence = target_refusal(part, job.id, now)
        if sentence:
            return Check("conflict", sentence)
    return OK


def target_refusal(part: Placement, job_id: str, now: Now) -> str | None:
    """Why `part` can no longer take the job, or None."""
    node = part.node
    state = now.admin.get(node, "active")
    if state != "active":
        return f"{node} is {state} now"
    view = now.telemetry(node)
    if view is not None:
        if view.link != "live":
            return f"{node} is {view.link} now"
        bad = sorted(set(part.devices) & view.unhealthy_devices)
        if bad:
            return f"device {bad[0]} of {node} is critical now"
    if now.places_devices:
        held = now.holders(node)
        taken = [(d, held[d]) for d in part.devices if d in held and held[d] != job_id]
        if taken:
            return f"device {taken[0][0]} of {node} is held by {taken[0][1]} now"
    return None


def _requeue(step: Step, now: Now) -> Check:
    job, verdict = _job_now(step, now)
    if job is None:
        return verdict or OK
    if not job.placement:
        return OK  # already off every node: the engine call is a no-op
    if step.source and not same_place(job.placement, step.source, now.places_devices):
        return Check("conflict", f"{job.id} moved since the plan was made (now on "
                                 f"{fmt_placement(job.placement)})")
    return OK
