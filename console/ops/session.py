"""Everything an operation needs, opened from the inventory, and the one way to plan.

The CLI and the TUI both go through here: the same engine, journal, audit log, planner,
guardrails and executor, so a drain typed in a terminal and one pressed in the console are the
same code.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.engines.base import Engine, EngineError
from console.model.inventory import EmbeddedEngine as EmbeddedSettings
from console.model.inventory import Inventory
from console.ops.executor import Executor
from console.ops.world import World
from console.planning.guardrails import Limits
from console.planning.plan import Plan, Step
from console.planning.planner import Planner
from console.state import audit as audit_mod
from console.state import journal as journal_mod
from console.state.audit import Audit
from console.state.identity import Actor, current
from console.state.journal import Journal

NODE_ACTIONS = ("cordon", "uncordon", "resume")


def open_engine(inventory: Inventory, *, readonly: bool = False) -> Engine:
    settings = inventory.engine
    if isinstance(settings, EmbeddedSettings):
        from console.engines.embedded import EmbeddedEngine

        return EmbeddedEngine(settings.db_path, readonly=readonly)
    from console.engines.slurm_setup import slurm_engine

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


def limits_from(inventory: Inventory) -> Limits:
    p = inventory.policy
    return Limits(p.max_out_of_service_share, p.max_nodes_per_window, p.window_s)


@dataclass
class Ops:
    inventory: Inventory
    engine: Engine
    journal: Journal
    audit: Audit
    executor: Executor

    @classmethod
    def open(cls, inventory: Inventory, *, readonly: bool = False,
             actor: Actor | None = None) -> Ops:
        """Open the engine, journal and audit log; if one fails, close the ones already open
        (the TUI retries every few seconds: a failure must not leak connections).
        `readonly`: for the read commands, which then work on files they may not write and
        beside a plan that holds the write lock. `actor`: who acts (default: this process's
        OS account; tests name one)."""
        actor = actor or current()
        with ExitStack() as opened:
            engine = open_engine(inventory, readonly=readonly)
            opened.callback(engine.close)
            journal = Journal(journal_path(inventory), readonly=readonly)
            opened.callback(journal.close)
            audit = Audit(audit_path(inventory), readonly=readonly, actor=actor)
            opened.pop_all()
        executor = Executor(engine, journal, audit, actor=actor,
                            limits=limits_from(inventory), dry_run=inventory.console.dry_run)
        return cls(inventory, engine, journal, audit, executor)

    def close(self) -> None:
        for part in (self.engine, self.journal, self.audit):
            part.close()

    def __enter__(self) -> Ops:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def attach(self, fleet: Callable[[], Any]) -> World:
        """Give execution the fleet's telemetry: `fleet()` returns the fleet (or a copy) as it
        is now; the executor asks again before each step."""
        world = World(self.inventory, fleet)
        self.executor.world = world
        return world

    def planner(self, fleet: Any = None) -> Planner:
        """A planner on the fleet now: `fleet` (a snapshot, attached for execution too), else
        the telemetry attached before."""
        world = self.attach(lambda: fleet) if fleet is not None else self.executor.world
        if world is None:
            raise ValueError("no fleet telemetry to plan on")
        return world.planner(self.engine)

    def finish(self, plan: Plan) -> Plan:
        """A plan as it is previewed: when it was made and the guardrails it trips."""
        return dataclasses.replace(plan, made_at=time.time(),
                                   guardrails=tuple(self.executor.guard(plan)))

    def node_plan(self, kind: str, nodes: list[str], reason: str) -> Plan:
        """cordon / uncordon / resume: one step per node, each with the admin state it saw."""
        admin = self.engine.admin_states()
        return self.finish(node_plan(kind, nodes, reason, admin))


def node_plan(kind: str, nodes: list[str], reason: str,
              admin: dict[str, str] | None = None) -> Plan:
    """cordon / uncordon / resume: one step per node, nothing to place."""
    seen = admin or {}
    return Plan(kind=kind, targets=tuple(nodes), reason=reason,  # type: ignore[arg-type]
                steps=tuple(Step(action=kind, node=n, reason=reason or kind,  # type: ignore[arg-type]
                                 seen=seen.get(n, "active") if admin is not None else None)
                            for n in nodes))


__all__ = ["NODE_ACTIONS", "EngineError", "Ops", "engine_exists", "node_plan", "open_engine"]
