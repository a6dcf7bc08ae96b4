"""A small deterministic fleet for the TUI tests: 4 data centers, 12 nodes, mixed models.

Built without SSH: each node's frames come from a real Sampler over a seeded SimCollector
with a fake clock, applied straight to FleetState. So every run (and every snapshot) sees
the same numbers. It has one node that failed to authenticate, one gone stale, one that
never connected, and one whose device 3 hit Xid 79 (fell off the bus).
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from agents.collectors.base import CollectorOptions
from agents.collectors.sim import SimCollector, SimProcess
from agents.sampler import Sampler
from console.model.fleet import FleetState
from console.tui.app import FleetApp

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
TICKS = 40
STALE_AFTER = 20  # the stale node's last frame, in ticks

DCS = (
    ("hangzhou", "cn-east", "CN", None),
    ("xining", "cn-northwest", "CN", 0.72),
    ("singapore", "ap-southeast", "SG", None),
    ("frankfurt", "eu-central", "DE", None),
)
# name, dc, model, devices, faults
NODES = (
    ("hz-h100-01", "hangzhou", "H100", 8, []),
    ("hz-h100-02", "hangzhou", "H100", 8, ["xid79:3:5"]),
    ("hz-h20-01", "hangzhou", "H20", 8, []),
    ("hz-ppu-01", "hangzhou", "PPU", 8, []),
    ("xn-910b-01", "xining", "910B", 8, []),
    ("xn-mlu590-01", "xining", "MLU590", 4, []),
    ("xn-a100-01", "xining", "A100", 8, ["thermal:1:10"]),
    ("xn-dcu-01", "xining", "DCU", 4, []),
    ("sg-h100-01", "singapore", "H100", 8, []),
    ("sg-a100-01", "singapore", "A100", 8, []),
    ("fra-h100-01", "frankfurt", "H100", 8, []),
    ("fra-a100-01", "frankfurt", "A100", 8, []),
)
AUTH_FAILED = "sg-a100-01"
STALE = "fra-a100-01"
CONNECTING = "fra-h100-01"
XID_NODE = "hz-h100-02"
HOSTILE_PROCESS = "\x1b]0;pwned\x07[bold red]x[/]"


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pool_of(model: str) -> str:
    return "nvidia" if model in ("H100", "H20", "A100") else "domestic"


def build_fleet(*, hostile_process: bool = False, seed: int = 7) -> tuple[FleetState, FakeClock]:
    """The fleet after TICKS one-second ticks, and the clock standing at the end of them."""
    clock = FakeClock()
    fleet = FleetState()
    for name, region, country, target in DCS:
        fleet.add_dc(name, region=region, country=country, domestic_target=target)
    samplers: dict[str, Sampler] = {}
    for i, (name, dc, model, devices, faults) in enumerate(NODES):
        fleet.add_node(name, dc, pool_of(model))
        if name in (AUTH_FAILED, CONNECTING):
            continue
        collector = SimCollector(CollectorOptions(sim_model=model, sim_devices=devices,
                                                  sim_seed=seed * 100 + i, sim_faults=faults))
        samplers[name] = Sampler(collector, node=name, clock=clock)
    fleet.set_link(AUTH_FAILED, "auth-failed", "permission denied (publickey) as fleetops")
    if hostile_process:
        collector = samplers["hz-h100-01"].collector
        assert isinstance(collector, SimCollector)
        collector.set_workload(0, [SimProcess(4242, HOSTILE_PROCESS, 1024, 50)])
    for name, sampler in samplers.items():
        hello = sampler.hello()
        # The real hostname and agent version would make snapshots differ between machines.
        hello.hostname, hello.agent_version = name, "0.0.0-test"
        fleet.apply(name, hello, clock())
    for tick in range(TICKS):
        clock.now = T0 + tick + 1
        for name, sampler in samplers.items():
            if name == STALE and tick >= STALE_AFTER:
                continue
            for frame in sampler.tick():
                fleet.apply(name, frame, clock())
    fleet.mark_stale(clock())
    fleet.take_changes()
    return fleet, clock


def make_app(*, read_only: bool = False, hostile_process: bool = False,
             theme_name: str | None = None, user_theme_dir: Path | None = None) -> FleetApp:
    fleet, clock = build_fleet(hostile_process=hostile_process)
    return FleetApp(fleet, inventory_path="inventory.toml", read_only=read_only, clock=clock,
                    theme_name=theme_name, user_theme_dir=user_theme_dir)


def screen_text(app: FleetApp) -> str:
    """What the terminal shows, as plain text (the SVG screenshot without the SVG)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      force_terminal=True, color_system="truecolor", legacy_windows=False,
                      safe_box=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)
