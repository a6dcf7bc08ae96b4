"""The live fleet: data center -> pool -> node -> device, in memory, without I/O.

Frames come in through `apply(node, frame, now)`; the screens read the state and ask what
changed with `take_changes()`. Applying a frame costs in proportion to that frame: a node
keeps a small summary of its devices, and the data-center/pool totals move by the difference
between the node's old and new summary, so nothing walks the fleet per frame.

Frames are attributed to the inventory node whose connection delivered them, never to the
name a frame claims (a node cannot speak for another).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from agents.wire import DeviceInfo, DeviceSample, Event, Frame, Hello, Report
from console.model.history import NodeHistory
from console.model.inventory import Inventory
from console.model.states import LINK_STATES, LinkState  # noqa: F401 (re-exported)

STALE_AFTER_INTERVALS = 3
# Each node's share of the fleet-wide event log: a sustained 2 events/s, bursts of 120. A node
# spewing valid events keeps them in its own log but cannot push other nodes' out of the
# fleet's (the excess is counted as `event-flood`).
EVENT_RATE_PER_S = 2.0
EVENT_BURST = 120.0


@dataclass(slots=True)
class Summary:
    """What one node contributes to its data center's and pool's totals."""

    devices: int = 0
    util_sum: float = 0.0
    util_n: int = 0
    power_w: float = 0.0
    mem_used_mib: float = 0.0
    mem_total_mib: float = 0.0
    health: tuple[int, int, int] = (0, 0, 0)  # devices ok, warn, crit
    hottest_c: float | None = None


@dataclass(slots=True)
class Totals:
    """Sums over many nodes; `replace` moves them by the change in one node's summary."""

    nodes: Counter = field(default_factory=Counter)  # link state -> count
    admin: Counter = field(default_factory=Counter)  # admin state -> count
    devices: int = 0
    util_sum: float = 0.0
    util_n: int = 0
    power_w: float = 0.0
    mem_used_mib: float = 0.0
    mem_total_mib: float = 0.0
    ok: int = 0
    warn: int = 0
    crit: int = 0
    models: Counter = field(default_factory=Counter)  # model -> devices (from hello)

    def replace(self, old: Summary, new: Summary) -> None:
        """Move the sums from one node summary to its successor (once per report)."""
        self.devices += new.devices - old.devices
        self.util_sum += new.util_sum - old.util_sum
        self.util_n += new.util_n - old.util_n
        self.power_w += new.power_w - old.power_w
        self.mem_used_mib += new.mem_used_mib - old.mem_used_mib
        self.mem_total_mib += new.mem_total_mib - old.mem_total_mib
        if new.health != old.health:
            self.ok += new.health[0] - old.health[0]
            self.warn += new.health[1] - old.health[1]
            self.crit += new.health[2] - old.health[2]

    def merge(self, other: Totals) -> None:
        self.nodes.update(other.nodes)
        self.admin.update(other.admin)
        self.models.update(other.models)
        for name in ("devices", "util_sum", "util_n", "power_w", "mem_used_mib",
                     "mem_total_mib", "ok", "warn", "crit"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def util_pct(self) -> float | None:
        return self.util_sum / self.util_n if self.util_n else None


class NodeState:
    """One node: its link, the agent's hello, the latest sample of each device, history."""

    __slots__ = (
        "admin", "dc", "error", "events", "hello", "history", "interval_s", "labels",
        "last_seen", "last_seq", "link", "name", "pool", "rejects", "reported_name",
        "samples", "skew_s", "summary", "frames", "reports", "totals", "expected_interval_s",
        "event_tokens", "event_last",
    )

    def __init__(self, name: str, dc: str, pool: str, interval_s: float = 1.0,
                 labels: dict[str, str] | None = None) -> None:
        self.name = name
        self.dc = dc
        self.pool = pool
        self.labels = labels or {}
        self.interval_s = interval_s
        self.expected_interval_s = interval_s  # the inventory's word: a node cannot stretch it
        self.event_tokens = EVENT_BURST
        self.event_last = 0.0
        self.link: str = "connecting"
        self.admin: str = "active"  # active, cordoned, draining, drained (operations)
        self.error: str | None = None
        self.last_seen: float | None = None
        self.last_seq = -1
        self.hello: Hello | None = None
        self.reported_name: str | None = None
        self.samples: list[DeviceSample] = []
        self.history: NodeHistory | None = None
        self.summary = Summary()
        self.rejects: Counter = Counter()
        self.events: deque[Event] = deque(maxlen=100)
        self.skew_s: float | None = None
        self.frames = 0
        self.reports = 0
        self.totals: Totals | None = None  # its (dc, pool) totals, set by the fleet

    @property
    def devices_info(self) -> list[DeviceInfo]:
        return self.hello.devices if self.hello else []

    @property
    def health(self) -> str:
        _ok, warn, crit = self.summary.health
        return "crit" if crit else "warn" if warn else "ok"


@dataclass
class Changes:
    nodes: set[str]
    dcs: set[str]
    events: list[tuple[str, Event]]  # (node, event), oldest first


class FleetState:
    def __init__(self, inventory: Inventory | None = None, *, history_s: int = 300,
                 max_events: int = 10_000) -> None:
        self.nodes: dict[str, NodeState] = {}
        self.dc_meta: dict[str, dict] = {}
        self.pool_totals: dict[tuple[str, str], Totals] = {}
        self.events: deque[tuple[str, Event]] = deque(maxlen=max_events)
        self.history_s = history_s
        self._changed_nodes: set[str] = set()
        self._new_events: list[tuple[str, Event]] = []
        if inventory is not None:
            for dc in inventory.dcs:
                self.add_dc(dc.name, region=dc.region, country=dc.country,
                            domestic_target=dc.domestic_target)
                for n in dc.nodes:
                    self.add_node(n.name, dc.name, n.pool, interval_s=n.interval_s,
                                  labels=dict(n.labels))

    # -- building -----------------------------------------------------------------------

    def add_dc(self, name: str, **meta) -> None:
        self.dc_meta.setdefault(name, meta)
        for pool in ("nvidia", "domestic"):
            self.pool_totals.setdefault((name, pool), Totals())

    def add_node(self, name: str, dc: str, pool: str, *, interval_s: float = 1.0,
                 labels: dict[str, str] | None = None) -> NodeState:
        if name in self.nodes:
            raise ValueError(f"node {name!r} already in the fleet")
        self.add_dc(dc)
        node = self.nodes[name] = NodeState(name, dc, pool, interval_s, labels)
        node.totals = self.pool_totals[(dc, pool)]
        self.pool_totals[(dc, pool)].nodes[node.link] += 1
        self.pool_totals[(dc, pool)].admin[node.admin] += 1
        self._touch(node)
        return node

    # -- frames -------------------------------------------------------------------------

    def apply(self, name: str, frame: Frame, now: float) -> None:
        """Apply one decoded frame from node `name`'s connection."""
        node = self.nodes[name]
        if type(frame) is Hello:
            self._hello(node, frame)
        elif frame.seq <= node.last_seq:
            node.rejects["seq"] += 1  # a replay or a confused agent: keep the newer state
            return
        node.last_seq = frame.seq
        node.frames += 1
        node.last_seen = now
        node.skew_s = now - frame.ts
        if node.link != "live":
            self.set_link(name, "live")
        if type(frame) is Report:
            self._report(node, frame)
        elif type(frame) is Event:
            node.events.append(frame)
            node.event_tokens = min(EVENT_BURST, node.event_tokens
                                    + (now - node.event_last) * EVENT_RATE_PER_S)
            node.event_last = now
            if node.event_tokens >= 1.0:
                node.event_tokens -= 1.0
                self.events.append((name, frame))
                self._new_events.append((name, frame))
            else:
                node.rejects["event-flood"] += 1
            self._touch(node)

    def _hello(self, node: NodeState, hello: Hello) -> None:
        totals = self.pool_totals[(node.dc, node.pool)]
        if node.hello is not None:
            totals.models.subtract(d.model for d in node.hello.devices)
        totals.models.update(d.model for d in hello.devices)
        for model in [m for m, n in totals.models.items() if n <= 0]:
            del totals.models[model]
        node.hello = hello
        node.reported_name = hello.node
        # Stale detection uses the agent's interval, but never a longer one than the
        # inventory expects: a node cannot stay "live" for hours by claiming a long interval.
        node.interval_s = min(hello.interval_s, node.expected_interval_s)
        node.last_seq = -1  # a new stream starts its own sequence
        capacity = max(1, int(self.history_s / max(hello.interval_s, 0.1)))
        if node.history is None or node.history.devices != len(hello.devices):
            node.history = NodeHistory(len(hello.devices), capacity)
        self._touch(node)

    def _report(self, node: NodeState, report: Report) -> None:
        devices = report.devices
        node.samples = devices
        node.reports += 1
        history = node.history
        if history is None or history.devices < len(devices):
            history = node.history = NodeHistory(
                len(devices), history.capacity if history else self.history_s)
        u, un, pw, used, total, ok, warn, crit, hot = history.append(report.ts, devices)
        new = Summary(len(devices), u, un, pw, used, total, (ok, warn, crit), hot)
        node.totals.replace(node.summary, new)
        node.summary = new
        self._changed_nodes.add(node.name)

    def reject(self, name: str, reason: str) -> None:
        """Count a line from this node that was not a valid frame."""
        node = self.nodes[name]
        node.rejects[reason] += 1
        self._touch(node)

    def set_link(self, name: str, link: str, error: str | None = None) -> None:
        node = self.nodes[name]
        if link != node.link:
            counts = self.pool_totals[(node.dc, node.pool)].nodes
            counts[node.link] -= 1
            counts[link] += 1
            node.link = link
        if error is not None or link == "live":
            node.error = error
        self._touch(node)

    def set_admin(self, name: str, admin: str) -> None:
        node = self.nodes[name]
        if admin != node.admin:
            counts = self.pool_totals[(node.dc, node.pool)].admin
            counts[node.admin] -= 1
            counts[admin] += 1
            node.admin = admin
        self._touch(node)

    def mark_stale(self, now: float) -> list[str]:
        """Live nodes silent for STALE_AFTER_INTERVALS intervals turn stale. O(nodes), 1 Hz."""
        stale = []
        for node in self.nodes.values():
            if (node.link == "live" and node.last_seen is not None
                    and now - node.last_seen > STALE_AFTER_INTERVALS * node.interval_s):
                stale.append(node.name)
        for name in stale:
            silent = now - (self.nodes[name].last_seen or now)
            self.set_link(name, "stale", f"no frame for {silent:.1f}s")
        return stale

    # -- reading ------------------------------------------------------------------------

    def _touch(self, node: NodeState) -> None:
        self._changed_nodes.add(node.name)

    def take_changes(self) -> Changes:
        """What changed since the last call (the screens redraw only that). The data centers
        are derived here, per refresh, rather than recorded per frame."""
        nodes = self._changed_nodes
        changes = Changes(nodes, {self.nodes[n].dc for n in nodes}, self._new_events)
        self._changed_nodes, self._new_events = set(), []
        return changes

    def totals(self, dc: str | None = None, pool: str | None = None) -> Totals:
        out = Totals()
        for (d, p), t in self.pool_totals.items():
            if (dc is None or d == dc) and (pool is None or p == pool):
                out.merge(t)
        return out

    def domestic_share(self, dc: str | None = None) -> float | None:
        """Share of devices in the domestic pool (by devices the agents reported)."""
        dom = self.totals(dc, "domestic").models.total()
        allm = self.totals(dc).models.total()
        return dom / allm if allm else None
