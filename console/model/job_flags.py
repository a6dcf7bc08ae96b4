"""Jobs as the console sees them: by node, per data center, and what looks wrong. Pure.

The engine says where jobs are placed; the agents say what runs on each device. Where the
two disagree the operator wants to know: a job whose placed devices show no process (it
died, or never started), and a device busy with no job placed on it (someone runs outside
the scheduler). Both are computed per node, lazily: the fleet marks nodes dirty as frames
arrive and a view that shows flags asks for them, so nothing walks 10,000 nodes per tick.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from console.model.fleet import FleetState, NodeState
from console.model.jobs import Job, Placement
from console.model.placement import fmt_placement
from console.model.text import clean

_INF = float("inf")
GRACE_S = 15.0  # a job placed this recently may still be starting: no "no process" flag yet
BUSY_UTIL_PCT = 20.0  # above this, a device with no job on it is busy


@dataclass(frozen=True, slots=True)
class NodeFlags:
    idle: dict[str, tuple[int, ...]]  # job id -> its devices here that show no process
    busy: tuple[int, ...]  # devices busy with no job placed on them


NO_FLAGS = NodeFlags({}, ())


Since = dict[tuple[str, str], tuple[tuple[int, ...], float]]  # (job, node) -> devices, when


def node_flags(node: NodeState | None, held: dict[int, str], since: Since,
               now: float) -> NodeFlags:
    """Flags of one node from its latest samples; nothing for a node that is not live (its
    samples are old news) or has not reported yet."""
    if node is None or node.link != "live" or not node.reports:
        return NO_FLAGS
    idle: dict[str, list[int]] = {}
    busy: list[int] = []
    for s in node.samples:
        job = held.get(s.index)
        if job is None:
            if s.processes or (s.util_pct or 0.0) > BUSY_UTIL_PCT:
                busy.append(s.index)
        elif not s.processes and now - since.get((job, node.name), ((), -_INF))[1] >= GRACE_S:
            idle.setdefault(job, []).append(s.index)
    if not idle and not busy:
        return NO_FLAGS
    return NodeFlags({j: tuple(sorted(d)) for j, d in idle.items()}, tuple(sorted(busy)))


class JobsIndex:
    """The engine's jobs, indexed; `loaded` is False until an engine has answered once."""

    def __init__(self, fleet: FleetState) -> None:
        self.fleet = fleet
        self.loaded = False
        self.jobs: dict[str, Job] = {}
        self.on_node: dict[str, list[str]] = {}  # node -> ids of the jobs placed there
        self.held: dict[str, dict[int, str]] = {}  # node -> device -> job id
        self.per_dc: Counter[str] = Counter()  # jobs with a placement in the data center
        self.flags: dict[str, NodeFlags] = {}  # node -> flags, only nodes that have some
        self.version = 0  # bumped whenever jobs or flags change: views compare it
        self._list: list[Job] = []
        self._since: Since = {}  # when each job was first seen on its devices of a node
        self._dirty: set[str] = set()

    # -- jobs from the engine -----------------------------------------------------------------

    def set_jobs(self, jobs: list[Job], now: float) -> bool:
        """The engine's current jobs; True when anything changed."""
        if self.loaded and jobs == self._list:
            return False
        # What ran before the console started is not "just placed": no grace for it.
        first = not self.loaded
        self.loaded = True
        self._list = jobs
        old_held = self.held
        self.jobs = {j.id: j for j in jobs}
        self.on_node, self.held, self.per_dc = {}, {}, Counter()
        since: Since = {}
        nodes = self.fleet.nodes
        for job in jobs:
            dcs = set()
            for p in job.placement:
                self.on_node.setdefault(p.node, []).append(job.id)
                held = self.held.setdefault(p.node, {})
                for d in p.devices:
                    held[d] = job.id
                key = (job.id, p.node)
                old = self._since.get(key)  # other devices on the same node: it restarted
                since[key] = old if old is not None and old[0] == p.devices else (
                    p.devices, -_INF if first else now)
                node = nodes.get(p.node)
                if node is not None:
                    dcs.add(node.dc)
            self.per_dc.update(dcs)
        self._since = since
        self._dirty.update(n for n in old_held.keys() | self.held.keys()
                           if old_held.get(n) != self.held.get(n))
        if first:
            self._dirty.update(nodes)
        self.version += 1
        return True

    # -- flags ------------------------------------------------------------------------------

    def mark(self, names: Iterable[str]) -> None:
        """These nodes sent frames: their flags may have changed (computed when asked)."""
        if self.loaded:
            self._dirty.update(names)

    def refresh_flags(self, now: float) -> bool:
        """Recompute the flags of the nodes marked since the last call; True if any changed."""
        if not self._dirty:
            return False
        changed = False
        nodes = self.fleet.nodes
        for name in self._dirty:
            flags = node_flags(nodes.get(name), self.held.get(name, {}), self._since, now)
            if flags != self.flags.get(name, NO_FLAGS):
                changed = True
                if flags is NO_FLAGS:
                    del self.flags[name]
                else:
                    self.flags[name] = flags
        self._dirty.clear()
        if changed:
            self.version += 1
        return changed

    def flags_of(self, node: str, now: float) -> NodeFlags:
        """One node's flags, fresh (the Node view asks for its node only)."""
        return node_flags(self.fleet.nodes.get(node), self.held.get(node, {}), self._since, now)

    def job_flag(self, job_id: str) -> str:
        """`no process on n1[3] + n2[0-1]`, or "" (from the last refresh_flags)."""
        job = self.jobs.get(job_id)
        if job is None:
            return ""
        parts = [Placement(p.node, idle) for p in job.placement
                 if (idle := self.flags.get(p.node, NO_FLAGS).idle.get(job_id))]
        return f"no process on {fmt_placement(parts)}" if parts else ""

    def problems(self) -> list[tuple[str, str]]:
        """(text, key) of every flag: jobs first (key: job id), then nodes (key: node)."""
        out: list[tuple[str, str]] = []
        flagged = sorted({j for f in self.flags.values() for j in f.idle})
        for job_id in flagged:
            job = self.jobs.get(job_id)
            name = clean(job.name, 40) if job else ""
            out.append((f"{job_id} {name}: {self.job_flag(job_id)}", job_id))
        for node in sorted(n for n, f in self.flags.items() if f.busy):
            busy = self.flags[node].busy
            out.append((f"{fmt_placement([Placement(node, busy)])}: busy with no job "
                        "placed there", node))
        return out

    # -- counts -----------------------------------------------------------------------------

    def count_on(self, node: str) -> int | None:
        """Jobs placed on the node; None while no engine has answered."""
        return len(self.on_node.get(node, ())) if self.loaded else None

    def count_in(self, dc: str) -> str:
        return str(self.per_dc.get(dc, 0)) if self.loaded else "—"
