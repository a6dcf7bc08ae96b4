"""planner: plans on a synthetic 10,000-node fleet (8 devices a node) with 40,000 placed jobs.

Four data centers, both pools, six device models; jobs of 1-2 devices, some on two nodes.
Timed separately: building the Planner (indexing once), a drain plan for one busy node
(goal < 100 ms) and the evacuation of a small data center holding about 1,000 jobs
(goal < 1 s). Plans are timed as the median of a few runs (a Planner serves many plans).
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from collections.abc import Callable

from agents import catalog
from bench.common import result
from console.model.jobs import DcPolicy, Job, NodeView, Placement, Policy, RuntimeMatrix
from console.planning.plan import Plan
from console.planning.planner import Planner

DEVICES = 8
# (dc, region, share of the fleet's nodes): the last one is small, to evacuate.
DCS = (("hangzhou", "cn-east", 0.40), ("shanghai", "cn-east", 0.30),
       ("beijing", "cn-north", 0.275), ("xining", "cn-northwest", 0.025))
MODELS = ("H100", "H20", "A100", "PPU", "910B", "MLU590")
RUNTIMES = {"H100": ("cuda", "cuda-compatible", "portable"), "H20": ("cuda", "portable"),
            "A100": ("cuda", "cuda-compatible"), "PPU": ("cuda-compatible", "portable"),
            "910B": ("cann", "portable"), "MLU590": ("neuware", "portable")}


def fleet(nodes: int, jobs: int, seed: int = 7, full: bool = False
          ) -> tuple[list[NodeView], list[Job], Policy]:
    """`full`: then fill every node outside xining but one in 50, so most evacuees requeue."""
    rng = random.Random(seed)
    views = []
    for d, (dc, region, share) in enumerate(DCS):
        for i in range(round(nodes * share)):
            model = MODELS[(i + d) % len(MODELS)]
            spec = catalog.spec(model)
            views.append(NodeView(
                name=f"{dc[:2]}-{model.lower()}-{i:05d}", dc=dc, region=region,
                pool=spec.pool, model=model,  # type: ignore[arg-type]
                devices=DEVICES, mem_per_device_mib=spec.mem_mib,
                admin="cordoned" if i % 97 == 0 else "active",
                link="stale" if i % 89 == 0 else "live"))
    free = {v.name: list(range(DEVICES)) for v in views}
    same_kind: dict[tuple[str, str], list[NodeView]] = {}
    for v in views:
        same_kind.setdefault((v.dc, v.model or ""), []).append(v)
    out: list[Job] = []
    while len(out) < jobs:
        v = views[rng.randrange(len(views))]
        per_node = rng.choice((1, 1, 2))
        parts = [v]
        if rng.random() < 0.05:  # a two-node job on the same model in the same dc
            parts.append(rng.choice(same_kind[(v.dc, v.model or "")]))
        if len({p.name for p in parts}) < len(parts) or any(
                len(free[p.name]) < per_node for p in parts):
            continue
        placement = []
        for p in parts:
            devs, free[p.name] = free[p.name][:per_node], free[p.name][per_node:]
            placement.append(Placement(p.name, tuple(devs)))
        model = v.model or ""
        out.append(Job(
            id=f"{len(out):06d}", name="train", owner="bench", pool=v.pool, nodes=len(parts),
            devices_per_node=per_node, mem_per_device_mib=rng.choice((16, 32, 48, 60)) * 1024,
            runtime=rng.choice(RUNTIMES[model]), priority=rng.randint(0, 3), state="running",
            allowed_regions=("cn-east",) if rng.random() < 0.05 else None,
            placement=tuple(placement)))
    if full:
        for i, v in enumerate(views):
            if v.dc != "xining" and i % 50 and free[v.name]:
                out.append(Job(id=f"fill-{i:05d}", name="fill", owner="bench", pool=v.pool,
                               nodes=1, devices_per_node=len(free[v.name]),
                               mem_per_device_mib=1024, runtime="portable", state="running",
                               placement=(Placement(v.name, tuple(free[v.name])),)))
    policy = Policy({"xining": DcPolicy("xining", "cn-northwest", frozenset(MODELS) - {"H20"},
                                        0.7),
                     "beijing": DcPolicy("beijing", "cn-north", None, 0.5)})
    return views, out, policy


def _median_ms(fn: Callable[[], Plan], runs: int) -> tuple[float, Plan]:
    times, plan = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        plan = fn()
        times.append((time.perf_counter() - t0) * 1000)
    assert plan is not None
    return statistics.median(times), plan


def run(quick: bool = False) -> int:
    nodes, jobs = 10_000, 40_000  # the full size takes seconds: --quick keeps it
    runs = 3 if quick else 7
    views, job_list, policy = fleet(nodes, jobs)

    t0 = time.perf_counter()
    planner = Planner(views, job_list, policy, RuntimeMatrix.default())
    build_ms = (time.perf_counter() - t0) * 1000
    print(f"planner: index of {nodes:,} nodes and {jobs:,} jobs built in {build_ms:.0f} ms")
    result("planner", build_ms, "ms", "info", True, metric="build", nodes=nodes, jobs=jobs)

    on = Counter(p.node for j in job_list for p in j.placement)
    busiest = max(on, key=lambda n: (on[n], n))
    drain_ms, plan = _median_ms(lambda: planner.drain([busiest], "bench"), runs)
    moved = sum(s.action == "move" for s in plan.steps)
    print(f"planner: drain {busiest} ({on[busiest]} jobs, {moved} moved) "
          f"in {drain_ms:.1f} ms (goal < 100 ms)")
    result("planner", drain_ms, "ms", "< 100", drain_ms < 100, metric="drain",
           jobs=on[busiest])

    evac_ms, plan = _median_ms(lambda: planner.evacuate("xining", None, "bench"), runs)
    job_steps = [s for s in plan.steps if s.job is not None]
    actions = {a: sum(s.action == a for s in job_steps) for a in ("move", "requeue")}
    print(f"planner: evacuate xining ({len(job_steps):,} jobs: {actions['move']:,} moved, "
          f"{actions['requeue']:,} requeued) in {evac_ms:.0f} ms (goal < 1000 ms)")
    result("planner", evac_ms, "ms", "< 1000", evac_ms < 1000, metric="evacuate",
           jobs=len(job_steps))

    # The slow path: most jobs find no room and every refusal is explained.
    views, job_list, policy = fleet(nodes, jobs, full=True)
    planner = Planner(views, job_list, policy, RuntimeMatrix.default())
    full_ms, plan = _median_ms(lambda: planner.evacuate("xining", None, "bench"), runs)
    job_steps = [s for s in plan.steps if s.job is not None]
    actions = {a: sum(s.action == a for s in job_steps) for a in ("move", "requeue")}
    print(f"planner: evacuate xining into a full fleet ({len(job_steps):,} jobs: "
          f"{actions['move']:,} moved, {actions['requeue']:,} requeued) in {full_ms:.0f} ms "
          "(goal < 1000 ms)")
    result("planner", full_ms, "ms", "< 1000", full_ms < 1000, metric="evacuate-full",
           jobs=len(job_steps), requeued=actions["requeue"])
    return 0 if drain_ms < 100 and evac_ms < 1000 and full_ms < 1000 else 1
