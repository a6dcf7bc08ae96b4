"""tui: the console app headless with a 10,000-node fleet fed at 1 Hz per node.

Measures the cost of a screen refresh (the app's refresh tick: stale check, changes, table
update, repaint) as mean and p95 while a quarter of the fleet reports every 0.25 s, and the
key-press-to-screen latency on the nodes view (cursor moves, a re-sort, a filter), measured
through Textual's Pilot, which adds its own ~40 ms per key on this kind of machine.
Goals: < 50 ms per refresh; < 100 ms per key.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from agents.collectors.base import CollectorOptions
from agents.collectors.sim import SimCollector
from agents.sampler import Sampler
from agents.wire import Report
from bench.common import result
from console.model.fleet import FleetState


def _fleet(nodes: int, now: list[float]):
    sampler = Sampler(SimCollector(CollectorOptions(sim_model="H100", sim_devices=8)),
                      node="x", clock=lambda: now[0])
    hello = sampler.hello()
    devices = [f for f in sampler.tick() if isinstance(f, Report)][-1].devices
    fleet = FleetState()
    seq: dict[str, int] = {}
    for i in range(nodes):
        name = f"n{i:05d}"
        fleet.add_node(name, f"dc{i % 8}", "nvidia" if i % 3 else "domestic")
        fleet.apply(name, hello, now[0])
        seq[name] = 1

    def feed(part: list[str]) -> None:
        for name in part:
            seq[name] += 1
            fleet.apply(name, Report(v=1, node=name, seq=seq[name], ts=now[0],
                                     devices=devices), now[0])

    feed(list(fleet.nodes))
    return fleet, feed


async def _measure(nodes: int, ticks: int) -> tuple[list[float], dict[str, list[float]]]:
    from console.tui.app import FleetApp

    now = [1000.0]
    fleet, feed = _fleet(nodes, now)
    names = list(fleet.nodes)
    app = FleetApp(fleet, clock=lambda: now[0])
    refresh_ms: list[float] = []
    keys: dict[str, list[float]] = {"cursor": [], "sort": [], "filter": []}
    async with app.run_test(size=(160, 50)) as pilot:
        await app.run_command("nodes")
        await pilot.pause()
        for k in range(ticks):
            now[0] += 0.25
            quarter = k % 4
            feed(names[quarter * nodes // 4:(quarter + 1) * nodes // 4])
            start = time.perf_counter()
            app.refresh_fleet()
            await pilot.pause()
            refresh_ms.append((time.perf_counter() - start) * 1000)
        for kind, presses in (("cursor", ["j"] * 10), ("sort", ["s"] * 3)):
            for key in presses:
                start = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                keys[kind].append((time.perf_counter() - start) * 1000)
        for text in ("dc=dc3", "pool=domestic health!=crit"):
            start = time.perf_counter()
            await pilot.press("/")
            await pilot.press(*text, "enter")
            await pilot.pause()
            keys["filter"].append((time.perf_counter() - start) * 1000 / (len(text) + 2))
            await pilot.press("escape")
            await pilot.pause()
    return refresh_ms, keys


async def _pilot_overhead(presses: int = 10) -> float:
    """Mean ms Pilot takes to press a key and settle on an empty app: its own cost."""
    from textual.app import App

    times = []
    async with App().run_test(size=(160, 50)) as pilot:
        for _ in range(presses):
            start = time.perf_counter()
            await pilot.press("j")
            await pilot.pause()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.mean(times)


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.95) - 1)]


def run(quick: bool = False) -> int:
    nodes = 10_000
    refresh_ms, keys = asyncio.run(_measure(nodes, 12 if quick else 40))
    mean, p95 = statistics.mean(refresh_ms), _p95(refresh_ms)
    print(f"tui: {nodes} nodes, a quarter reporting per 0.25 s tick: refresh mean {mean:.1f} ms, "
          f"p95 {p95:.1f} ms over {len(refresh_ms)} ticks")
    overhead = asyncio.run(_pilot_overhead())
    print(f"tui: Pilot's own cost per key on an empty app: {overhead:.1f} ms")
    for kind, xs in keys.items():
        print(f"tui: key to screen ({kind}): mean {statistics.mean(xs):.1f} ms with Pilot, "
              f"{statistics.mean(xs) - overhead:.1f} ms net; max {max(xs):.1f} ms")
    result("tui", mean, "ms per refresh (mean)", "< 50", mean < 50, metric="refresh_mean")
    result("tui", p95, "ms per refresh (p95)", "< 50", p95 < 50, metric="refresh_p95")
    worst = max(statistics.mean(xs) for xs in keys.values())
    net = worst - overhead
    result("tui", net, "ms key to screen (worst kind, mean, net of Pilot)", "< 100", net < 100,
           metric="key_latency", with_pilot_ms=round(worst, 1))
    return 0
