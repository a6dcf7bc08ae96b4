"""The operations model: jobs, where they run, what the planner may look at. Pure data.

A planner never reads FleetState or an engine directly: the caller builds NodeViews (from the
live fleet and the engine's admin states) and Jobs (from the engine), so planning is a pure
function, tested without sockets and fast at fleet scale.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Literal

from console.model.states import ADMIN_STATES, AdminState  # noqa: F401 (re-exported)

Pool = Literal["nvidia", "domestic"]
JobState = Literal["pending", "running", "requeued", "completed", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class Placement:
    """Devices of one node that a job holds (indices as the node's agent reports them)."""

    node: str
    devices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    name: str
    owner: str
    pool: Pool
    nodes: int  # how many nodes
    devices_per_node: int
    mem_per_device_mib: int  # what one device must hold
    runtime: str  # a key of the runtime matrix: cuda, cuda-compatible, cann, portable, ...
    priority: int = 0
    state: JobState = "pending"
    allowed_regions: tuple[str, ...] | None = None  # None: anywhere
    placement: tuple[Placement, ...] = ()

    @property
    def placed_nodes(self) -> tuple[str, ...]:
        return tuple(p.node for p in self.placement)


@dataclass(frozen=True, slots=True)
class NodeView:
    """What the planner knows of one node."""

    name: str
    dc: str
    region: str
    pool: Pool
    model: str | None  # device model (catalog key); None until the agent said hello
    devices: int
    mem_per_device_mib: int
    link: str = "live"  # connection state from the fleet (live, stale, down, ...)
    admin: AdminState = "active"
    unhealthy_devices: frozenset[int] = frozenset()  # devices in crit health
    health: str = "ok"  # worst device health

    @property
    def schedulable(self) -> bool:
        """A node jobs may be placed on: live, active, not critical."""
        return self.link == "live" and self.admin == "active" and self.health != "crit"


@dataclass(frozen=True, slots=True)
class DcPolicy:
    name: str
    region: str
    allowed_models: frozenset[str] | None = None  # None: every model is a placement target
    domestic_target: float | None = None


@dataclass(frozen=True)
class Policy:
    dcs: dict[str, DcPolicy] = field(default_factory=dict)

    def allows(self, dc: str, model: str | None) -> bool:
        p = self.dcs.get(dc)
        return p is None or p.allowed_models is None or (model in p.allowed_models)


@dataclass(frozen=True)
class RuntimeMatrix:
    """runtime -> device models that can run it (configurable; default in runtimes.toml)."""

    runs_on: dict[str, frozenset[str]]

    def compatible(self, runtime: str, model: str | None) -> bool:
        return model is not None and model in self.runs_on.get(runtime, frozenset())

    @classmethod
    def default(cls) -> RuntimeMatrix:
        return _default_matrix()

    def with_overrides(self, overrides: dict[str, list[str]]) -> RuntimeMatrix:
        merged = dict(self.runs_on)
        merged.update({k: frozenset(v) for k, v in overrides.items()})
        return RuntimeMatrix(merged)


@cache
def _default_matrix() -> RuntimeMatrix:
    raw = tomllib.loads(resources.files("console.planning").joinpath("runtimes.toml").read_text())
    return RuntimeMatrix({k: frozenset(v) for k, v in raw["runtimes"].items()})
