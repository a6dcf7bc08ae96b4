"""Everything an operation needs, opened from the inventory, and the one way to plan.

The CLI and the TUI both go through here: the same engine, journal, audit log and planner,
so a drain typed in a terminal and one pressed in the console are the same code.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from console.core.fleet import FleetState
from console.core.inventory import EmbeddedEngine as EmbeddedSettings
from console.core.inventory import Inventory
from console.ops import audit as audit_mod
from console.ops import journal as journal_mod
from console.ops.audit import Audit
from console.ops.engines.base import Engine, EngineError
from console.ops.executor import Executor
from console.ops.fleet_views import node_views, policy_from
from console.ops.journal import Journal
from console.ops.model import RuntimeMatrix
from console.ops.plan import Plan, Step
from console.ops.planner import Planner

NODE_ACTIONS = ("cordon", "uncordon", "resume")


def open_engine(inventory: Inventory) -> Engine:
    settings = inventory.engine
    if isinstance(settings, EmbeddedSettings):
        from console.ops.engines.embedded import EmbeddedEngine

        return EmbeddedEngine(settings.db_path)
    from console.ops.engines.slurm_setup import slurm_engine

    return slurm_engine(settings, inventory)


def engine_exists(inventory: Inventory) -> bool:
    """False for an embedded engine whose database was never created (read commands do not
    create one just to say every node is active)."""
    settings = inventory.engine
    return not isinstance(settings, EmbeddedSettings) or Path(settings.db_path).exists()


def journal_path(inventory: Inventory) -> Path:
    path = inventory.console.journal_path
    return Path(path) if path else journal_mod.default_path()


def audit_path(inventory: Inventory) -> Path:
    path = inventory.console.audit_path
    return Path(path) if path else audit_mod.default_path()


@dataclass
class Ops:
    inventory: Inventory
    engine: Engine
    journal: Journal
    audit: Audit
    executor: Executor

    @classmethod
    def open(cls, inventory: Inventory) -> Ops:
        """Open the engine, journal and audit log; if one fails, close the ones already open
        (the TUI retries every few seconds: a failure must not leak connections)."""
        with ExitStack() as opened:
            engine = open_engine(inventory)
            opened.callback(engine.close)
            journal = Journal(journal_path(inventory))  # its Store makes the directory
            opened.callback(journal.close)
            audit = Audit(audit_path(inventory))
            opened.pop_all()
        return cls(inventory, engine, journal, audit, Executor(engine, journal, audit))

    def close(self) -> None:
        for part in (self.engine, self.journal, self.audit):
            part.close()

    def __enter__(self) -> Ops:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def planner(self, fleet: FleetState) -> Planner:
        admin = self.engine.admin_states()
        views = node_views(fleet, self.inventory, {n: admin.get(n, "active")
                                                   for n in fleet.nodes})
        return Planner(views, self.engine.jobs(), policy_from(self.inventory),
                       RuntimeMatrix.default())


def node_plan(kind: str, nodes: list[str], reason: str) -> Plan:
    """cordon / uncordon / resume: one step per node, nothing to place."""
    return Plan(kind=kind, targets=tuple(nodes), reason=reason,  # type: ignore[arg-type]
                steps=tuple(Step(action=kind, node=n, reason=reason or kind)  # type: ignore[arg-type]
                            for n in nodes))


__all__ = ["NODE_ACTIONS", "EngineError", "Ops", "engine_exists", "node_plan", "open_engine"]
