"""Jobs and audit entries -> table rows, pure (cells as in rows.py: text and a tone name)."""

from __future__ import annotations

import time
from collections.abc import Callable

from console.model.jobs import Job
from console.model.text import clean
from console.ops.executor import fmt_placement
from console.tui.rows import Cell, Column

STATE_TONE = {"running": "ok", "pending": "info", "requeued": "warn", "failed": "crit"}


def job_columns(placement_width: int = 22) -> list[Column]:
    # The flag comes last: most jobs have none, and the problems list above spells them out.
    return [
        Column("id", "JOB", 8), Column("name", "NAME", 15), Column("owner", "OWNER", 8),
        Column("pool", "POOL", 8), Column("state", "STATE", 8),
        Column("runtime", "RUNTIME", 15), Column("size", "N×DEV", 5, True),
        Column("mem", "MEM/DEV", 7, True), Column("placement", "PLACEMENT", placement_width),
        Column("flag", "FLAG", 34),
    ]


def gib(mib: int) -> str:
    return f"{mib / 1024:.0f} GiB"


def job_row(job: Job, flag: str) -> list[Cell]:
    """The cells of one job, in job_columns() order; `flag` from JobsIndex.job_flag."""
    return [
        (job.id, "accent"), (clean(job.name, 60), ""), (clean(job.owner, 30), ""),
        (job.pool, ""), (job.state, STATE_TONE.get(job.state, "")), (clean(job.runtime, 30), ""),
        (f"{job.nodes}×{job.devices_per_node}", ""), (gib(job.mem_per_device_mib), ""),
        (fmt_placement(job.placement) if job.placement else "—",
         "" if job.placement else "muted"),
        (f"▲ {flag}", "warn") if flag else ("", ""),
    ]


JOB_SORT_KEYS: dict[str, Callable[[Job], object]] = {
    "id": lambda j: j.id,
    "name": lambda j: (j.name, j.id),
    "owner": lambda j: (j.owner, j.id),
    "pool": lambda j: (j.pool, j.id),
    "state": lambda j: (j.state, j.id),
    "runtime": lambda j: (j.runtime, j.id),
    "size": lambda j: (j.nodes * j.devices_per_node, j.id),
    "mem": lambda j: (j.mem_per_device_mib, j.id),
    "placement": lambda j: (j.placed_nodes, j.id),
}


def sort_jobs(jobs: list[Job], column: str, reverse: bool, flag: Callable[[str], str]) -> list[str]:
    """Job ids ordered by `column` (flagged jobs first for "flag"); ties by id."""
    if column == "flag":
        key: Callable[[Job], object] = lambda j: (not flag(j.id), flag(j.id), j.id)  # noqa: E731
    else:
        key = JOB_SORT_KEYS.get(column, JOB_SORT_KEYS["id"])
    return [j.id for j in sorted(jobs, key=key, reverse=reverse)]  # type: ignore[arg-type]


# -- audit ----------------------------------------------------------------------------------


def audit_columns() -> list[Column]:
    return [
        Column("when", "WHEN", 19), Column("user", "USER", 10), Column("action", "ACTION", 11),
        Column("targets", "TARGETS", 24), Column("reason", "REASON", 36),
        Column("outcome", "OUTCOME", 60),
    ]


def outcome_tone(outcome: str) -> str:
    if outcome.startswith(("partial", "impossible")):
        return "crit"
    if outcome.startswith(("done", "rolled-back")):
        return "ok"
    return "muted" if outcome == "started" else ""


def audit_row(entry: dict) -> list[Cell]:
    """The cells of one Audit.entries() dict; the time is local."""
    outcome = clean(str(entry.get("outcome") or ""), 300)
    targets = " ".join(clean(str(t), 60) for t in entry.get("targets") or ())
    return [
        (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.get("ts", 0))), "muted"),
        (clean(str(entry.get("user", "")), 30), ""), (clean(str(entry.get("action", "")), 20),
                                                      "accent"),
        (targets, ""), (clean(str(entry.get("reason") or ""), 300), ""),
        (outcome, outcome_tone(outcome)),
    ]
