"""The planner's checks, each with the sentence that explains a refusal. Pure.

One sentence per failing check, naming the job and the numbers or models that decided, so an
operator reads why without opening the planner ("job 812 needs 80 GiB per device; 910B has
64 GiB").
"""

from __future__ import annotations

from console.model.jobs import Job, NodeView, Policy, RuntimeMatrix

POOLS = ("nvidia", "domestic")


def other_pool(pool: str) -> str:
    return "domestic" if pool == "nvidia" else "nvidia"


def gib(mib: int) -> int:
    return round(mib / 1024)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# -- model-level checks: the same answer for every node of one (dc, model, memory) group ------

def runtime_refusal(job: Job, model: str, runtimes: RuntimeMatrix) -> str | None:
    return None if runtimes.compatible(job.runtime, model) else runs_nowhere(job, [model])


def runs_nowhere(job: Job, models: list[str]) -> str:
    """'job 7 runs cuda, which does not run on 910B, MLU590 or PPU'."""
    names = models[0] if len(models) == 1 else f"{', '.join(models[:-1])} or {models[-1]}"
    return f"job {job.id} runs {job.runtime}, which does not run on {names}"


def memory_refusal(job: Job, model: str, mem_mib: int) -> str | None:
    need = job.mem_per_device_mib
    if need <= mem_mib:
        return None
    if gib(need) <= gib(mem_mib):  # rounding would hide the gap: say it in MiB
        return f"job {job.id} needs {need} MiB per device; {model} has {mem_mib} MiB"
    return f"job {job.id} needs {gib(need)} GiB per device; {model} has {gib(mem_mib)} GiB"


def policy_refusal(dc: str, model: str, policy: Policy) -> str | None:
    return None if policy.allows(dc, model) else f"{dc} does not allow {model} (policy)"


def region_refusal(job: Job, region: str) -> str | None:
    if job.allowed_regions is None or region in job.allowed_regions:
        return None
    return f"job {job.id} may run only in {', '.join(job.allowed_regions)}; no capacity there"


RUNTIME_RANK = 0


def group_refusal(job: Job, dc: str, region: str, model: str, mem_mib: int, policy: Policy,
                  runtimes: RuntimeMatrix) -> tuple[int, str] | None:
    """The first failing check as (check rank, sentence); None when the group is eligible.

    The rank orders sentences in a refusal: runtime, memory, region, policy (a dc outside the
    job's regions is not worth a policy sentence).
    """
    checks = (runtime_refusal(job, model, runtimes), memory_refusal(job, model, mem_mib),
              region_refusal(job, region), policy_refusal(dc, model, policy))
    for rank, sentence in enumerate(checks):
        if sentence is not None:
            return rank, sentence
    return None


# -- node-level checks --------------------------------------------------------------------------

BLOCKED_RANK = 4
CAPACITY_RANK = 5


def blocked_refusal(node: NodeView) -> str | None:
    """Why no job may be placed on `node` now; None when it is schedulable."""
    if node.model is None:
        return f"{node.name} has not reported its devices yet"
    if node.admin != "active":
        return f"{node.name} is {node.admin}"
    if node.link != "live":
        return (f"{node.name} is {node.link}" if node.link in ("stale", "down")
                else f"{node.name} is not live ({node.link})")
    if node.health == "crit":
        return f"{node.name} has a critical device"
    return None


def capacity_refusal(job: Job, pool: str, devices: int, wanted: int, found: int,
                     closest: tuple[int, str] | None) -> str:
    """Not enough eligible schedulable nodes with `devices` free (closest: (free, node))."""
    miss = f" (most free: {closest[0]} on {closest[1]})" if closest else ""
    kind = "schedulable node"
    if found == 0:
        return f"no {kind} of pool {pool} has {plural(devices, 'free device')}{miss}"
    return (f"only {plural(found, kind)} of pool {pool} {'has' if found == 1 else 'have'} "
            f"{plural(devices, 'free device')}; job {job.id} needs {wanted}"
            f"{miss.replace('most free', 'next most free')}")


def join(sentences: list[tuple[int, str]]) -> str:
    """Sentences by check rank (stable), duplicates dropped, as one reason."""
    seen: dict[str, None] = {}
    for _rank, s in sorted(sentences, key=lambda rs: rs[0]):
        seen.setdefault(s, None)
    return ". ".join(seen) if seen else "no node to place it on"


# -- domestic share -----------------------------------------------------------------------------

def share_notes(used: dict[tuple[str, str], int], delta: dict[tuple[str, str], int],
                policy: Policy) -> list[str]:
    """A note per dc whose share of in-use devices in the domestic pool moves away from target.

    Hardware does not move, so the share that a plan can change is of devices held by jobs.
    """
    notes = []
    for dc in sorted(policy.dcs):
        target = policy.dcs[dc].domestic_target
        if target is None or not any(delta.get((dc, p)) for p in POOLS):
            continue
        before = [used.get((dc, p), 0) for p in POOLS]
        after = [b + delta.get((dc, p), 0) for b, p in zip(before, POOLS, strict=True)]
        if not sum(after):
            continue
        share_after = after[1] / sum(after)
        share_before = before[1] / sum(before) if sum(before) else None
        # Half a percentage point: a move that the rounded figures would not show is no news.
        if (share_before is not None
                and abs(share_after - target) < abs(share_before - target) + 0.005):
            continue
        was = f"from {share_before:.0%} " if share_before is not None else ""
        notes.append(f"{dc}: domestic share of devices in use would go {was}to "
                     f"{share_after:.0%} (target {target:.0%})")
    return notes
