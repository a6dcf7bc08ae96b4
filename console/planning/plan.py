"""Plans: what an operation will do, step by step, with a sentence for every refusal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from console.model.jobs import Placement

PlanKind = Literal["drain", "move", "evacuate", "cordon", "uncordon", "resume"]
StepAction = Literal[
    "cordon",    # stop new placements on a node
    "uncordon",  # allow them again
    "drain",     # mark a node draining (drained once its jobs are gone)
    "resume",    # return a drained/cordoned node to service
    "move",      # job: from `source` to `target`
    "requeue",   # job: back to pending in its pool (no target now)
    "refuse",    # job: cannot go anywhere acceptable; `reason` says why
]


NODE_ACTIONS: tuple[str, ...] = ("cordon", "uncordon", "drain", "resume")
JOB_ACTIONS: tuple[str, ...] = ("move", "requeue", "refuse")
CLOSING: tuple[str, ...] = ("cordon", "drain")  # node steps that take a node out of service


@dataclass(frozen=True, slots=True)
class Step:
    action: StepAction
    reason: str  # why this target, or why none; a sentence for people
    job: str | None = None  # job id for job steps
    node: str | None = None  # node for node steps
    source: tuple[Placement, ...] = ()
    target: tuple[Placement, ...] = ()
    target_pool: str | None = None
    # Node steps: the admin state the plan saw (cordoned, ...); execution refuses to reopen a
    # node that someone closed further since. None: not recorded (plans from older versions).
    seen: str | None = None


@dataclass(frozen=True)
class Plan:
    kind: PlanKind
    targets: tuple[str, ...]  # nodes or job ids the request named
    steps: tuple[Step, ...]
    reason: str = ""  # the operator's reason (required for drain and move)
    notes: tuple[str, ...] = field(default_factory=tuple)  # warnings that do not block
    pool: str | None = None  # move: the pool the jobs go to; evacuate: the pool emptied
    made_at: float = 0.0  # when it was planned (epoch seconds): "planned 3 min ago"
    # Guardrails the plan trips (guardrails.py), each a sentence; it runs only when forced.
    guardrails: tuple[str, ...] = field(default_factory=tuple)

    @property
    def refusals(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action == "refuse")

    @property
    def possible(self) -> bool:
        """A plan with any refused job is impossible as a whole (exit code 1)."""
        return not self.refusals
