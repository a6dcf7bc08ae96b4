"""The fixture fleet with a real operations engine: an embedded engine, journal and audit log
in a temporary directory, and jobs placed by hand where the simulated devices run something.

Placements follow the fixture's busy devices, so flags stay few and deliberate:
- j-108 is placed on two idle devices of xn-mlu590-01: "no process on xn-mlu590-01[0,2]";
- xn-dcu-01's four busy devices hold no job: "busy with no job placed there";
- fra-a100-01 is stale, so j-118 on it is not judged;
- j-114 needs CUDA: moving it to the domestic pool is refused.
Draining hz-h100-02 moves j-105 (higher priority, first) and j-104 to hz-h20-01.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fleet_fixture import DCS, NODES, build_fleet, pool_of

from console.engines.embedded import EmbeddedEngine
from console.model.inventory import Inventory, parse_inventory
from console.model.jobs import Job, Placement
from console.ops.session import Ops
from console.state.identity import Actor
from console.tui.app import FleetApp
from console.tui.screens.plan import PlanScreen
from console.tui.screens.reason import ReasonScreen

USER = "operator"
# Who the audit log names: the OS account of the process, fixed here so snapshots do not
# depend on who runs the tests.
ACTOR = Actor(USER, 1000, None, "console-1", 4242)
GIB = 1024

# id, name, owner, runtime, mem GiB, priority, node, devices
JOBS = (
    ("j-101", "llama3-70b-sft", "alice", "cuda", 60, 40, "hz-h100-01", (0, 1, 2, 4)),
    ("j-102", "chat-serve", "bob", "cuda", 24, 80, "hz-h100-01", (5, 6)),
    ("j-103", "embed-api", "chen", "portable", 16, 70, "hz-h100-01", (7,)),
    ("j-104", "qwen2-7b-pretrain", "dmitri", "cuda", 40, 30, "hz-h100-02", (0, 1, 2)),
    ("j-105", "rerank", "priya", "cuda-compatible", 20, 60, "hz-h100-02", (6,)),
    ("j-106", "vision-qa", "li-wei", "portable", 30, 70, "hz-h20-01", (2, 3, 4)),
    ("j-107", "tts-stream", "alice", "cuda", 12, 90, "hz-h20-01", (6,)),
    ("j-108", "ocr-batch", "bob", "portable", 20, 60, "xn-mlu590-01", (0, 2)),
    ("j-109", "moe-8x7b-ablation", "chen", "cuda-compatible", 48, 20, "hz-ppu-01", (0, 1, 2)),
    ("j-110", "code-13b-finetune", "dmitri", "portable", 40, 30, "hz-ppu-01", (4, 5, 6, 7)),
    ("j-111", "reward-model-rlhf", "priya", "cann", 40, 40, "xn-910b-01", (1, 3, 4, 5)),
    ("j-112", "translate-api", "li-wei", "portable", 20, 80, "xn-910b-01", (6, 7)),
    ("j-113", "asr-conformer-xl", "alice", "neuware", 32, 50, "xn-mlu590-01", (1, 3)),
    ("j-114", "llama3-70b-sft", "bob", "cuda", 72, 20, "xn-a100-01", (0, 1, 2)),
    ("j-115", "search-embed", "chen", "portable", 20, 70, "xn-a100-01", (4, 5, 6)),
    ("j-116", "qwen2-7b-pretrain", "dmitri", "cuda", 40, 30, "sg-h100-01", (0, 1, 2, 3)),
    ("j-117", "vision-qa", "priya", "cuda", 30, 60, "sg-h100-01", (4, 5, 6)),
    ("j-118", "vit-h-distill", "li-wei", "cuda", 50, 40, "fra-a100-01", (0, 2, 3)),
    ("j-119", "chat-serve", "alice", "cuda", 24, 80, None, (1, 2)),  # pending: 1 node × 2
)
MODEL = {name: model for name, _dc, model, _n, _f in NODES}


def fixture_jobs() -> list[Job]:
    out = []
    for jid, name, owner, runtime, mem, prio, node, devices in JOBS:
        pool = pool_of(MODEL[node]) if node else "nvidia"
        out.append(Job(id=jid, name=name, owner=owner, pool=pool, nodes=1,  # type: ignore[arg-type]
                       devices_per_node=len(devices), mem_per_device_mib=mem * GIB,
                       runtime=runtime, priority=prio,
                       placement=(Placement(node, devices),) if node else ()))
    return out


def inventory_text(tmp: Path, extra: str = "") -> str:
    lines = []
    for dc, region, country, target in DCS:
        lines += ["[[dc]]", f'name = "{dc}"', f'region = "{region}"', f'country = "{country}"']
        if target is not None:
            lines.append(f"domestic_target = {target}")
        for name, node_dc, model, _n, _f in NODES:
            if node_dc == dc:
                lines += ["[[dc.node]]", f'name = "{name}"', f'host = "{name}"',
                          f'pool = "{pool_of(model)}"']
    lines += ["[engine]", 'kind = "embedded"', f'db_path = "{tmp / "jobs.db"}"',
              "[console]", f'journal_path = "{tmp / "journal.db"}"',
              f'audit_path = "{tmp / "audit.db"}"']
    return "\n".join(lines) + "\n" + extra


def make_inventory(tmp: Path, *, jobs: bool = True, extra: str = "") -> Inventory:
    inventory = parse_inventory(inventory_text(tmp, extra), tmp / "inventory.toml")
    engine = EmbeddedEngine(tmp / "jobs.db", user=USER)
    if jobs:
        engine.submit_many(fixture_jobs())
    engine.close()
    return inventory


def make_ops_app(tmp: Path, *, read_only: bool = False, seed: bool = True,
                 extra: str = "") -> FleetApp:
    """The fixture fleet's app with Ops opened (lazily, on the ops thread) on `tmp`;
    `seed=False` reuses what an earlier app left there; `extra`: more inventory tables."""
    inventory = make_inventory(tmp, jobs=seed, extra=extra)
    fleet, clock = build_fleet()
    return FleetApp(fleet, inventory_path="inventory.toml", read_only=read_only, clock=clock,
                    ops_factory=lambda: Ops.open(inventory, actor=ACTOR),
                    dry_run=inventory.console.dry_run)


def engine(tmp: Path) -> EmbeddedEngine:
    """A second engine on the same database, for the test's own checks."""
    return EmbeddedEngine(tmp / "jobs.db", user=USER)


# -- waiting for the ops thread -----------------------------------------------------------------


async def until(pilot, ok: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    """Let the loop run until `ok()` (work on the ops thread takes real time)."""
    for _ in range(int(timeout_s / 0.02)):
        if ok():
            return
        await pilot.pause(0.02)
    pytest.fail(f"timed out waiting for {what}")


async def ready(pilot) -> FleetApp:
    app = pilot.app
    await until(pilot, lambda: app.jobs.loaded, "the first jobs refresh")
    return app


async def give_reason(pilot, reason: str) -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, ReasonScreen), "the reason")
    pilot.app.screen.query_one("Input").value = reason
    await pilot.press("enter")


async def preview(pilot) -> PlanScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, PlanScreen), "the plan preview")
    await pilot.pause()
    return pilot.app.screen
