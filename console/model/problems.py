"""What the Fleet view needs that FleetState does not total: admin states and problem nodes.

FleetState keeps per-pool totals by link state but not by admin state (cordoned, draining,
drained), and not which nodes are in trouble. Walking 10,000 nodes per refresh to find out
would cost a frame, so this index moves with the changed nodes only: `update(names)` is
O(len(names)). Pure: no Textual, no I/O.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from agents.wire import Event
from console.model.fleet import FleetState, NodeState
from console.model.states import FAILED_LINKS, HEALTH_STYLE, LINK_STYLE
from console.model.text import clean

RECENT_EVENTS = 20  # per data center, for the panel's "recent events" lines


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    rank: int  # 0 failed link, 1 critical device, 2 stale, 3 warning device
    node: str
    text: str = field(compare=False)
    tone: str = field(compare=False)  # "crit" or "warn"


def problem_of(node: NodeState) -> Problem | None:
    if node.link in FAILED_LINKS:
        symbol = LINK_STYLE.get(node.link, ("?", ""))[0]
        why = clean(node.error or node.link, 160)
        return Problem(0, node.name, f"{symbol} {node.name} {node.link}: {why}", "crit")
    health = node.health if node.reports else None
    if node.link == "stale":
        return Problem(2, node.name, f"◐ {node.name} stale: {clean(node.error or '', 120)}",
                       "warn")
    if health in ("crit", "warn"):
        worst = next((d for d in node.samples if d.health == health), None)
        reason = clean("; ".join(worst.reasons), 160) if worst and worst.reasons else health
        index = f"#{worst.index} " if worst else ""
        symbol = HEALTH_STYLE[health][0]
        return Problem(1 if health == "crit" else 3, node.name,
                       f"{symbol} {node.name} {index}{reason}", health)
    return None


class FleetIndex:
    def __init__(self, fleet: FleetState) -> None:
        self.fleet = fleet
        self.admin: dict[str, Counter] = {dc: Counter() for dc in fleet.dc_meta}
        self.problems: dict[str, dict[str, Problem]] = {dc: {} for dc in fleet.dc_meta}
        self.recent: dict[str, deque[tuple[str, Event]]] = {}
        self._admin_of: dict[str, str] = {}
        self.update(fleet.nodes)
        self.add_events(fleet.events)

    def add_events(self, pairs: Iterable[tuple[str, Event]]) -> None:
        """New (node, event) pairs, oldest first, as FleetState.events holds them."""
        nodes = self.fleet.nodes
        for name, event in pairs:
            node = nodes.get(name)
            if node is not None:
                self.recent.setdefault(node.dc, deque(maxlen=RECENT_EVENTS)).append(
                    (name, event))

    def update(self, names: Iterable[str]) -> None:
        nodes = self.fleet.nodes
        for name in names:
            node = nodes.get(name)
            if node is None:
                continue
            dc = node.dc
            old = self._admin_of.get(name)
            if old != node.admin:
                admin = self.admin.setdefault(dc, Counter())
                if old is not None:
                    admin[old] -= 1
                admin[node.admin] += 1
                self._admin_of[name] = node.admin
            problem = problem_of(node)
            problems = self.problems.setdefault(dc, {})
            if problem is None:
                problems.pop(name, None)
            else:
                problems[name] = problem

    def worst(self, dc: str, limit: int) -> list[Problem]:
        """The `limit` most urgent problems of a data center (failed links first)."""
        problems = self.problems.get(dc, {})
        if len(problems) <= limit:
            return sorted(problems.values())
        import heapq

        return heapq.nsmallest(limit, problems.values())


@dataclass
class DcView:
    """One data center's panel, computed from the fleet when that data center changed."""

    name: str
    region: str = ""
    country: str = ""
    links: Counter = field(default_factory=Counter)
    admin: Counter = field(default_factory=Counter)
    models: dict[str, Counter] = field(default_factory=dict)  # pool -> model -> devices
    devices: int = 0
    ok: int = 0
    warn: int = 0
    crit: int = 0
    util_pct: float | None = None
    mem_pct: float | None = None
    power_w: float = 0.0
    domestic_share: float | None = None
    domestic_target: float | None = None
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    recent: list[tuple[str, Event]] = field(default_factory=list)  # newest first

    @property
    def nodes(self) -> int:
        return sum(self.links.values())

    @property
    def failed(self) -> int:
        return sum(n for link, n in self.links.items() if link in FAILED_LINKS)


def dc_view(fleet: FleetState, index: FleetIndex, dc: str, max_problems: int = 12) -> DcView:
    meta = fleet.dc_meta.get(dc, {})
    total = fleet.totals(dc)
    models = {}
    for pool in ("nvidia", "domestic"):
        t = fleet.pool_totals.get((dc, pool))
        if t is not None and sum(t.nodes.values()) > 0:
            models[pool] = Counter({m: n for m, n in t.models.items() if n > 0})
    return DcView(
        name=dc, region=meta.get("region") or "", country=meta.get("country") or "",
        links=+total.nodes, admin=+index.admin.get(dc, Counter()), models=models,
        devices=total.devices, ok=total.ok, warn=total.warn, crit=total.crit,
        util_pct=total.util_pct,
        mem_pct=100 * total.mem_used_mib / total.mem_total_mib if total.mem_total_mib else None,
        power_w=total.power_w, domestic_share=fleet.domestic_share(dc),
        domestic_target=meta.get("domestic_target"),
        problems=index.worst(dc, max_problems),
        problem_count=len(index.problems.get(dc, {})),
        recent=list(reversed(index.recent.get(dc, ()))),
    )
