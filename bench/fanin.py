"""fanin: N live SSH sessions from one console to the demo fleet server on loopback, 1 Hz each.

Measures, for N = 100, 500, 1,000: the time until every node is live, then the console
process's CPU share and RSS at steady state. The fleet server runs in its own process and is
measured apart. Goals: 1,000 live in < 30 s; < 30% of one core at steady state.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.common import cpu_seconds, result, status_kib
from console.model.fleet import FleetState
from console.model.inventory import load_inventory
from console.telemetry.ssh import FanIn

FLEETOPS = str(Path(sys.executable).parent / "fleetops")


def _server(nodes: int) -> tuple[subprocess.Popen, Path]:
    p = subprocess.Popen([FLEETOPS, "demo", "--serve", "--nodes", str(nodes), "--devices", "8",
                          "--interval", "1", "--seed", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert p.stdout is not None
    return p, Path(p.stdout.readline().strip())


async def _measure(inventory: Path, steady_s: float) -> dict:
    inv = load_inventory(inventory)
    fleet = FleetState(inv)
    t0 = time.monotonic()
    async with FanIn(fleet, list(inv.nodes)):
        while not all(n.link == "live" for n in fleet.nodes.values()):
            if time.monotonic() - t0 > 120:
                break
            await asyncio.sleep(0.05)
        live_s = time.monotonic() - t0
        live = sum(n.link == "live" for n in fleet.nodes.values())
        await asyncio.sleep(2)  # let the handshake burst settle
        frames0 = sum(n.frames for n in fleet.nodes.values())
        c0, w0 = time.process_time(), time.monotonic()
        await asyncio.sleep(steady_s)
        cpu = time.process_time() - c0
        wall = time.monotonic() - w0
        frames = sum(n.frames for n in fleet.nodes.values()) - frames0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"live_s": live_s, "live": live, "share": 100 * cpu / wall,
            "fps": frames / wall, "rss_mb": rss_mb}


def run(quick: bool = False) -> int:
    sizes = (100, 500) if quick else (100, 500, 1000)
    steady = 10.0 if quick else 20.0
    for n in sizes:
        server, inventory = _server(n)
        try:
            s0 = cpu_seconds(server.pid)
            m = asyncio.run(_measure(inventory, steady))
            server_share = 100 * (cpu_seconds(server.pid) - s0) / (m["live_s"] + 2 + steady)
            server_rss = status_kib(server.pid, "VmRSS") / 1024
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"fanin: {n} nodes: {m['live']}/{n} live in {m['live_s']:.1f}s; console at steady "
              f"state {m['share']:.1f}% of one core, {m['fps']:.0f} frames/s, peak RSS "
              f"{m['rss_mb']:.0f} MB (server apart: ~{server_share:.0f}% of a core over the "
              f"run, RSS {server_rss:.0f} MB)")
        result("fanin", m["live_s"], "s until all live", "< 30 (1000 nodes)",
               m["live"] == n and m["live_s"] < 30, nodes=n, metric="time_to_live")
        result("fanin", m["share"], "% of one core", "< 30", m["share"] < 30, nodes=n,
               metric="console_cpu")
    return 0
