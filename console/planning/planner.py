"""The planner: drain nodes, move jobs to a pool, evacuate a data center. Pure and deterministic.

Rules (see README, "Planner"):
- a target is a schedulable node (live, active, no critical device) of an eligible group: the
  job's runtime runs on the model, each device holds the job's memory, the dc's policy allows
  the model, the dc is in one of the job's regions;
- among targets: the source's dc first, then its region, then any dc; within a dc the node
  with most free devices, then by name;
- capacity is consumed as steps are planned (jobs by priority, then id), so two jobs of one
  plan never get the same devices; devices a job leaves are not reused within the plan (they
  are only free once the job has stopped);
- a refused job gets one sentence per failing check, naming the closest miss.

Speed: nodes are indexed once by (pool, dc) and (model, memory), each group keeping its
schedulable nodes in buckets by free-device count, so finding a target looks at a handful of
buckets instead of every node. A plan mutates the index and undoes its changes at the end, so
one Planner serves many plans.
"""

from __future__ import annotations

import difflib
from bisect import bisect_left, insort
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice

from console.model.jobs import Job, NodeView, Placement, Policy, RuntimeMatrix
from console.planning.checks import (
    BLOCKED_RANK,
    CAPACITY_RANK,
    POOLS,
    RUNTIME_RANK,
    blocked_refusal,
    capacity_refusal,
    group_refusal,
    join,
    other_pool,
    plural,
    runs_nowhere,
    share_notes,
)
from console.planning.plan import Plan, PlanKind, Step

HOLDING = ("pending", "running", "requeued")  # job states whose placement holds devices
NAMED_BLOCKED = 3  # unschedulable nodes named in one refusal, at most


@dataclass(slots=True)
class _Group:
    """Nodes of one pool, dc, model and memory size: every model-level check has one answer."""

    pool: str
    dc: str
    region: str
    model: str
    mem_mib: int
    buckets: list[list[str]]  # free devices -> schedulable node names, sorted
    # Unschedulable nodes as (-free devices, name, why, devices), closest first; their free
    # devices never change within a plan (nothing is placed on them).
    blocked: list[tuple[int, str, str, int]] = field(default_factory=list)
    blocked_sizes: Counter[int] = field(default_factory=Counter)  # devices -> nodes


@dataclass(slots=True)
class _Search:
    """One job's search: where it may go and what it must avoid."""

    job: Job
    devices: int  # per node
    tiers: list[str]  # dcs in order of preference
    avoid: set[str]  # nodes never to pick (being drained, already holding this job)
    model: str | None = None  # the model every part must be (set by the parts that stay)


class UnknownTarget(ValueError):
    """A request names a node, job, data center or pool the planner does not know (usage)."""


def _unknown(kind: str, name: str, known: list[str]) -> ValueError:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return UnknownTarget(f"unknown {kind} {name!r}{hint}")


class Planner:
    def __init__(self, nodes: list[NodeView], jobs: list[Job], policy: Policy,
                 runtimes: RuntimeMatrix) -> None:
        self.policy = policy
        self.runtimes = runtimes
        self.nodes: dict[str, NodeView] = {}
        for n in sorted(nodes, key=lambda n: n.name):
            if n.name in self.nodes:
                raise ValueError(f"node {n.name!r} appears twice")
            self.nodes[n.name] = n
        self.jobs: dict[str, Job] = {j.id: j for j in sorted(jobs, key=lambda j: j.id)}
        if len(self.jobs) != len(jobs):
            raise ValueError("a job id appears twice")

        held: dict[str, set[int]] = defaultdict(set)
        self._jobs_on: dict[str, list[str]] = defaultdict(list)  # node -> job ids
        self._used: Counter[tuple[str, str]] = Counter()  # (dc, pool) -> devices held by jobs
        for job in self.jobs.values():
            if job.state not in HOLDING:
                continue
            for p in job.placement:
                held[p.node].update(p.devices)
                self._jobs_on[p.node].append(job.id)
                node = self.nodes.get(p.node)
                if node is not None:
                    self._used[(node.dc, node.pool)] += len(p.devices)

        self._region: dict[str, str] = {}  # dc -> region
        self._free: dict[str, list[int]] = {}  # node -> free device indices, ascending
        self._group_of: dict[str, _Group] = {}
        self._unreported: dict[str, list[NodeView]] = defaultdict(list)  # pool -> no-model nodes
        groups: dict[tuple[str, str, str, int], _Group] = {}
        width = max((n.devices for n in self.nodes.values()), default=0) + 1
        for n in self.nodes.values():
            self._region.setdefault(n.dc, n.region)
            taken = held.get(n.name, set()) | n.unhealthy_devices
            free = [i for i in range(n.devices) if i not in taken]
            self._free[n.name] = free
            if n.model is None:
                self._unreported[n.pool].append(n)
                continue
            key = (n.pool, n.dc, n.model, n.mem_per_device_mib)
            g = groups.get(key)
            if g is None:
                g = groups[key] = _Group(n.pool, n.dc, n.region, n.model, n.mem_per_device_mib,
                                         [[] for _ in range(width)])
            self._group_of[n.name] = g
            if n.schedulable:
                g.buckets[len(free)].append(n.name)  # names arrive sorted: buckets stay sorted
            else:
                g.blocked.append((-len(free), n.name, blocked_refusal(n) or "", n.devices))
                g.blocked_sizes[n.devices] += 1
        self._groups: dict[tuple[str, str], list[_Group]] = defaultdict(list)  # (pool, dc)
        for key in sorted(groups):
            groups[key].blocked.sort()
            self._groups[key[:2]].append(groups[key])
        # (runtime, memory, regions, pool, dc) -> (eligible groups, refused groups): model-level
        # checks do not depend on capacity, so jobs alike share one answer across plans.
        self._verdicts: dict[tuple, tuple[list[_Group], list[_Group]]] = {}
        self._dcs = sorted(self._region)
        self._undo: list[tuple[str, list[int]]] = []

    # -- the three plans ---------------------------------------------------------------------

    def drain(self, nodes: list[str], reason: str) -> Plan:
        """Drain `nodes`: each of their jobs to its pool, else the other pool, else requeue."""
        names = sorted(set(nodes))
        for name in names:
            if name not in self.nodes:
                raise _unknown("node", name, list(self.nodes))
        steps = [Step("drain", reason or "drain", node=name, seen=self.nodes[name].admin)
                 for name in names]
        jobs = self._jobs_placed_on(set(names))
        return self._plan("drain", tuple(nodes), reason, steps, jobs, set(names), set())

    def move(self, job_ids: list[str], to_pool: str, reason: str) -> Plan:
        """Move each job, whole, to `to_pool`, or refuse it with the reason."""
        if to_pool not in POOLS:
            raise UnknownTarget(f"unknown pool {to_pool!r} (pools: {', '.join(POOLS)})")
        for jid in job_ids:
            if jid not in self.jobs:
                raise _unknown("job", jid, list(self.jobs))
        jobs = sorted({j: self.jobs[j] for j in job_ids}.values(),
                      key=lambda j: (-j.priority, j.id))
        steps: list[Step] = []
        delta: Counter[tuple[str, str]] = Counter()
        try:
            for job in jobs:
                # A job of the pool that runs nowhere (pending, or held half way through a
                # move by an engine that requeues) is placed; one that runs there already
                # has nothing to move.
                if job.pool == to_pool and job.placement:
                    steps.append(Step("refuse", f"job {job.id} is already in pool {to_pool}",
                                      job=job.id, source=job.placement))
                    continue
                src_dc = self._source_dc(job, job.placement)
                search = _Search(job, job.devices_per_node, self._tiers(src_dc, set()), set())
                target = self._place(search, to_pool, self._node_count(job))
                if target is None:
                    steps.append(Step("refuse", self._explain(search, [to_pool],
                                                              self._node_count(job)),
                                      job=job.id, source=job.placement))
                    continue
                self._account(delta, job, job.placement, target, to_pool)
                steps.append(Step(
                    "move", f"job {job.id} to pool {to_pool}: {self._where(target, src_dc)}",
                    job=job.id, source=job.placement, target=target, target_pool=to_pool))
        finally:
            self._rollback(0)
        return Plan("move", tuple(job_ids), tuple(steps), reason,
                    tuple(share_notes(self._used, delta, self.policy)), pool=to_pool)

    def evacuate(self, dc: str, pool: str | None, reason: str) -> Plan:
        """Cordon the dc's (pool's) nodes, then move each job placed there out of the dc."""
        if dc not in self._region:
            raise _unknown("data center", dc, self._dcs)
        if pool is not None and pool not in POOLS:
            raise UnknownTarget(f"unknown pool {pool!r} (pools: {', '.join(POOLS)})")
        names = {n.name for n in self.nodes.values()
                 if n.dc == dc and (pool is None or n.pool == pool)}
        # Only active nodes get a cordon: cordoning a draining node would undo its drain.
        steps = [Step("cordon", reason or "evacuate", node=name, seen="active")
                 for name in sorted(names) if self.nodes[name].admin == "active"]
        jobs = self._jobs_placed_on(names)
        dc_nodes = {n.name for n in self.nodes.values() if n.dc == dc}
        target = (dc,) if pool is None else (dc, pool)
        return self._plan("evacuate", target, reason, steps, jobs, dc_nodes, {dc}, pool)

    # -- shared plan loop -----------------------------------------------------------------------

    def _plan(self, kind: PlanKind, targets: tuple[str, ...], reason: str, steps: list[Step],
              jobs: list[Job], leaving: set[str], closed_dcs: set[str],
              pool: str | None = None) -> Plan:
        """Re-place each job's part on `leaving` nodes, never into `closed_dcs`."""
        delta: Counter[tuple[str, str]] = Counter()
        # Leaving nodes in a closed dc are out of every search already: avoid only the others.
        barred = {n for n in leaving if self.nodes[n].dc not in closed_dcs}
        try:
            for job in jobs:
                steps.append(self._replace(job, leaving, barred, closed_dcs, delta))
        finally:
            self._rollback(0)
        return Plan(kind, targets, tuple(steps), reason,
                    tuple(share_notes(self._used, delta, self.policy)), pool=pool)

    def _replace(self, job: Job, leaving: set[str], barred: set[str], closed_dcs: set[str],
                 delta: Counter[tuple[str, str]]) -> Step:
        """Try in turn: the leaving part within the pool (on the model of the parts that stay),
        the whole job within the pool, the whole job in the other pool; else requeue."""
        # A part stays where it is only on a schedulable node that is not leaving.
        keep = tuple(p for p in job.placement if p.node not in leaving
                     and p.node in self.nodes and self.nodes[p.node].schedulable)
        moving = [p for p in job.placement if p not in keep]
        src_dc = self._source_dc(job, moving)
        tiers = self._tiers(src_dc, closed_dcs)
        whole = self._node_count(job)
        search = _Search(job, job.devices_per_node, tiers,
                         barred | {p.node for p in job.placement},
                         next((self.nodes[p.node].model for p in keep), None))
        count = len(moving)
        new = self._place(search, job.pool, count)
        if new is None and keep:
            search.avoid, search.model = set(barred), None
            keep, count = (), whole
            new = self._place(search, job.pool, count)
        if new is not None:
            target = keep + new
            self._account(delta, job, job.placement, target, job.pool)
            return Step("move", f"job {job.id} in pool {job.pool}: {self._where(new, src_dc)}",
                        job=job.id, source=job.placement, target=target)
        same = self._explain(search, [job.pool], count)
        # Another pool takes the whole job: a job never spans pools.
        alt = other_pool(job.pool)
        search.avoid, search.model = set(barred), None
        new = self._place(search, alt, whole)
        if new is not None:
            self._account(delta, job, job.placement, new, alt)
            return Step("move", f"job {job.id} changes pool {job.pool} -> {alt}: "
                                f"{self._where(new, src_dc)}; runtime {job.runtime} runs on "
                                f"{self._model(new)}. Pool {job.pool}: {same}",
                        job=job.id, source=job.placement, target=new, target_pool=alt)
        other = self._explain(search, [alt], whole)
        self._account(delta, job, job.placement, (), job.pool)
        return Step("requeue", f"no target for job {job.id}. Pool {job.pool}: {same}. "
                               f"Pool {alt}: {other}", job=job.id, source=job.placement)

    # -- search -------------------------------------------------------------------------------

    def _verdict(self, job: Job, pool: str, dc: str) -> tuple[list[_Group], list[_Group]]:
        key = (job.runtime, job.mem_per_device_mib, job.allowed_regions, pool, dc)
        verdict = self._verdicts.get(key)
        if verdict is None:
            ok: list[_Group] = []
            refused: list[_Group] = []
            for g in self._groups.get((pool, dc), ()):
                fails = group_refusal(job, dc, g.region, g.model, g.mem_mib, self.policy,
                                      self.runtimes)
                (ok if fails is None else refused).append(g)
            verdict = self._verdicts[key] = (ok, refused)
        return verdict

    def _best(self, search: _Search, pool: str, skip: set[str] | frozenset = frozenset()
              ) -> str | None:
        """The preferred node with enough free devices: first tier that has one, then most free,
        then name (of `search.model` if set, of no model in `skip`)."""
        need, avoid, model = search.devices, search.avoid, search.model
        for dc in search.tiers:
            best: tuple[int, str] | None = None
            for g in self._verdict(search.job, pool, dc)[0]:
                if (model is not None and g.model != model) or g.model in skip:
                    continue
                for free in range(len(g.buckets) - 1, need - 1, -1):
                    name = next((n for n in g.buckets[free] if n not in avoid), None)
                    if name is not None:
                        if best is None or (-free, name) < best:
                            best = (-free, name)
                        break
            if best is not None:
                return best[1]
        return None

    def _place(self, search: _Search, pool: str, count: int) -> tuple[Placement, ...] | None:
        """`count` distinct nodes with the job's devices each, capacity taken; None if not.

        The parts of one job run on one model (a collective across H100 and A100, or 910B and
        MLU590, is no job): models are tried in the order of their best node.
        """
        if search.model is not None or count <= 1:
            return self._fill(search, pool, count)
        tried: set[str] = set()
        while (first := self._best(search, pool, tried)) is not None:
            search.model = self.nodes[first].model
            out = self._fill(search, pool, count)
            search.model = None
            if out is not None:
                return out
            tried.add(self.nodes[first].model or "")
        return None

    def _fill(self, search: _Search, pool: str, count: int) -> tuple[Placement, ...] | None:
        mark = len(self._undo)
        out: list[Placement] = []
        for _ in range(count):
            name = self._best(search, pool)
            if name is None:
                break
            out.append(Placement(name, self._take(name, search.devices)))
            search.avoid.add(name)  # one part per node
        for p in out:  # the picks must not stay avoided for a later search of the same job
            search.avoid.discard(p.node)
        if len(out) < count:
            self._rollback(mark)
            return None
        return tuple(out)

    def _take(self, name: str, count: int) -> tuple[int, ...]:
        free = self._free[name]
        buckets = self._group_of[name].buckets
        self._move_bucket(buckets, name, len(free), len(free) - count)
        self._undo.append((name, free))
        self._free[name] = free[count:]
        return tuple(free[:count])

    def _rollback(self, mark: int) -> None:
        while len(self._undo) > mark:
            name, old = self._undo.pop()
            buckets = self._group_of[name].buckets
            self._move_bucket(buckets, name, len(self._free[name]), len(old))
            self._free[name] = old

    @staticmethod
    def _move_bucket(buckets: list[list[str]], name: str, old: int, new: int) -> None:
        b = buckets[old]
        del b[bisect_left(b, name)]
        insort(buckets[new], name)

    # -- refusals -------------------------------------------------------------------------------

    def _explain(self, search: _Search, pools: list[str], count: int) -> str:
        """Every failing check over every group the job could have used, closest miss named."""
        job, need, avoid = search.job, search.devices, search.avoid
        sentences: list[tuple[int, str]] = []
        for pool in pools:
            wrong_runtime: dict[str, None] = {}  # models, in order: one sentence for all
            found: Counter[str] = Counter()  # model -> nodes with room
            closest: tuple[int, str] | None = None  # (-free, name) of the best short node
            blocked: list[tuple[int, str, str, int]] = []
            unschedulable = 0
            eligible = False
            for dc in search.tiers:
                ok, refused = self._verdict(job, pool, dc)
                for g in refused:
                    rank, sentence = group_refusal(job, dc, g.region, g.model, g.mem_mib,
                                                   self.policy, self.runtimes) or (0, "")
                    if rank == RUNTIME_RANK:
                        wrong_runtime.setdefault(g.model)
                    else:
                        sentences.append((rank, sentence))
                for g in ok:  # explained after a search of any model (search.model is None)
                    eligible = True
                    for free in range(len(g.buckets) - 1, 0, -1):
                        bucket = g.buckets[free]
                        if free >= need:  # fewer than `count` in all, or the search had won
                            found[g.model] += sum(n not in avoid for n in bucket)
                            continue
                        name = next((n for n in bucket if n not in avoid), None)
                        if name is not None:
                            if closest is None or (-free, name) < closest:
                                closest = (-free, name)
                            break  # lower buckets hold no closer miss
                    blocked += islice((b for b in g.blocked if b[3] >= need), NAMED_BLOCKED)
                    unschedulable += sum(c for d, c in g.blocked_sizes.items() if d >= need)
            if wrong_runtime:
                sentences.append((RUNTIME_RANK, runs_nowhere(job, list(wrong_runtime))))
            for n in self._unreported[pool]:
                if n.dc in search.tiers:
                    blocked.append((0, n.name, blocked_refusal(n) or "", 0))
                    unschedulable += 1
            sentences += [(BLOCKED_RANK, b[2]) for b in sorted(blocked)[:NAMED_BLOCKED]]
            if unschedulable > NAMED_BLOCKED:
                sentences.append((BLOCKED_RANK, f"{unschedulable - NAMED_BLOCKED} more nodes "
                                                f"of pool {pool} are not schedulable"))
            if eligible and found.total() >= count:  # room enough, but not on one model
                per_model = ", ".join(f"{m}: {c}" for m, c in sorted(found.items()))
                sentences.append((CAPACITY_RANK, (
                    f"job {job.id} needs {count} nodes of one model with "
                    f"{plural(need, 'free device')}; pool {pool} has {per_model}")))
            elif eligible:
                miss = (-closest[0], closest[1]) if closest else None
                sentences.append((CAPACITY_RANK, capacity_refusal(
                    job, pool, need, count, found.total(), miss)))
            elif not any(self._groups.get((pool, dc)) for dc in search.tiers):
                sentences.append((CAPACITY_RANK, f"pool {pool} has no node where job {job.id} "
                                                 "may go"))
        return join(sentences)

    # -- helpers --------------------------------------------------------------------------------

    def _jobs_placed_on(self, names: set[str]) -> list[Job]:
        ids = {jid for n in names for jid in self._jobs_on.get(n, ())}
        return sorted((self.jobs[i] for i in ids), key=lambda j: (-j.priority, j.id))

    def _source_dc(self, job: Job, parts: Iterable[Placement]) -> str | None:
        """The dc of the first leaving part (known to the fleet), else of any part."""
        for p in (*parts, *job.placement):
            if p.node in self.nodes:
                return self.nodes[p.node].dc
        return None

    def _tiers(self, src_dc: str | None, closed: set[str]) -> list[str]:
        """DCs in order of preference: the source's, its region's, the rest (each by name)."""
        region = self._region.get(src_dc) if src_dc else None
        return sorted((d for d in self._dcs if d not in closed),
                      key=lambda d: (d != src_dc, self._region[d] != region, d))

    @staticmethod
    def _node_count(job: Job) -> int:
        return max(job.nodes, len(job.placement), 1)

    def _model(self, target: tuple[Placement, ...]) -> str:
        return ", ".join(sorted({self.nodes[p.node].model or "?" for p in target}))

    def _where(self, target: tuple[Placement, ...], src_dc: str | None) -> str:
        """'to hz-2 (8 x H100, same dc)', a part at a time."""
        parts = []
        for p in target:
            node = self.nodes[p.node]
            near = ("same dc" if node.dc == src_dc else "same region"
                    if src_dc and node.region == self._region.get(src_dc) else f"dc {node.dc}")
            parts.append(f"{p.node} ({len(p.devices)} x {node.model}, {near})")
        return "to " + ", ".join(parts)

    def _account(self, delta: Counter[tuple[str, str]], job: Job, source: tuple[Placement, ...],
                 target: tuple[Placement, ...], pool: str) -> None:
        """Devices in use per (dc, pool) after this step, for the domestic-share notes."""
        for p in source:
            if p.node in self.nodes:
                delta[(self.nodes[p.node].dc, job.pool)] -= len(p.devices)
        for p in target:
            delta[(self.nodes[p.node].dc, pool)] += len(p.devices)
