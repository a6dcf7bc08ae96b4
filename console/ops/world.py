"""What planning and execution read besides the engine: the fleet's telemetry and the inventory.

The engine knows jobs and admin states; whether a node is live and its devices healthy comes
from telemetry. The CLI has a snapshot taken when it planned; the TUI has the live fleet, read
here through a function that copies it on the UI loop. Either way the executor asks the world
again before each step, so a node that went down while a plan waited for its `y` is seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from console.engines.base import Engine
from console.model.inventory import Inventory
from console.model.jobs import NodeView, RuntimeMatrix
from console.planning.fleet_views import node_views, policy_from
from console.planning.planner import Planner

# A fleet snapshot younger than this is reused: steps run back to back do not each copy a
# 10,000-node fleet.
REUSE_S = 1.0


class World:
    def __init__(self, inventory: Inventory, fleet: Callable[[], Any], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inventory = inventory
        self._source = fleet
        self._clock = clock
        self._fleet: Any = None
        self._at = float("-inf")
        self._telemetry: dict[str, NodeView] | None = None

    def _current(self) -> Any:
        if self._clock() - self._at > REUSE_S:
            self._fleet = self._source()
            self._at = self._clock()
            self._telemetry = None
        return self._fleet

    def views(self, admin: dict[str, str]) -> list[NodeView]:
        """Every inventory node as the planner sees it, `admin` from the engine."""
        return node_views(self._current(), self.inventory, admin)

    def telemetry(self, node: str) -> NodeView | None:
        """The node's link and health now (its admin state is the engine's business)."""
        fleet = self._current()
        if self._telemetry is None:
            self._telemetry = {v.name: v for v in node_views(fleet, self.inventory, {})}
        return self._telemetry.get(node)

    def planner(self, engine: Engine) -> Planner:
        """A planner on the fleet as it is now: telemetry, the engine's admin states and jobs."""
        admin = engine.admin_states()
        return Planner(self.views(admin), engine.jobs(), policy_from(self.inventory),
                       RuntimeMatrix.default())
