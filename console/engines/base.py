"""The engine interface: where jobs live and how nodes are taken in and out of service.

Every mutating call is idempotent, so a journaled plan can be re-run after a crash at any
step: moving a job to where it already is, draining a draining node, resuming an active one
are no-ops. Errors are EngineError with one line for the operator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from console.model.jobs import AdminState, Job, Placement


class EngineError(Exception):
    """An engine call failed; the message is one line (what, where, why)."""


class UnknownJob(EngineError):
    """The engine has no such job (never had, or it finished and was forgotten)."""


class EngineRefused(EngineError):
    """The engine refused a placement because the fleet is not as the caller assumed (the
    target node is not active, a device is held by another job): a conflict to re-plan, not a
    failure to retry as it is."""


class Engine(ABC):
    name: str = ""
    # Whether `move` puts a job on exactly the device indices asked for (the embedded engine
    # does; Slurm picks the indices on the target nodes itself).
    places_devices: bool = True

    @abstractmethod
    def jobs(self) -> list[Job]:
        """Every job the engine knows that is not finished (pending, running, requeued)."""

    @abstractmethod
    def job(self, job_id: str) -> Job:
        """One job; EngineError if unknown."""

    @abstractmethod
    def admin_states(self) -> dict[str, AdminState]:
        """Admin state of every node the engine knows (absent: active)."""

    def holders(self, node: str) -> dict[int, str]:
        """device index -> id of the job holding it, on `node` (engines that place devices
        themselves answer for what they know)."""
        return {d: j.id for j in self.jobs() for p in j.placement if p.node == node
                for d in p.devices}

    @abstractmethod
    def cordon(self, node: str, reason: str) -> None: ...

    @abstractmethod
    def uncordon(self, node: str) -> None: ...

    @abstractmethod
    def drain(self, node: str, reason: str) -> None:
        """Draining now; the engine reports `drained` once no job is placed on the node."""

    @abstractmethod
    def resume(self, node: str) -> None: ...

    @abstractmethod
    def move(self, job_id: str, target: tuple[Placement, ...], pool: str) -> None:
        """Place the job exactly on `target` (in `pool`); a no-op if it is already there.
        EngineRefused if a target node the job is not on already is not active, or a target
        device is held by another job."""

    @abstractmethod
    def requeue(self, job_id: str) -> None:
        """Back to pending in its pool, off every node; a no-op if already pending."""

    def close(self) -> None:  # noqa: B027 - optional
        pass
