"""10,000 nodes streaming: the nodes view keeps every node and follows the data.

How fast it does so is measured by `python -m bench tui`, not asserted here (no timed
assertions in the test suite).
"""

from __future__ import annotations

from agents.collectors.base import CollectorOptions
from agents.collectors.sim import SimCollector
from agents.sampler import Sampler
from agents.wire import Report
from console.model.fleet import FleetState
from console.tui.app import FleetApp
from console.tui.screens.nodes import NodesScreen
from console.tui.widgets.node_table import NodeTable

NODES = 10_000


async def test_refresh_with_10k_nodes_streaming() -> None:
    now = [1000.0]
    sampler = Sampler(SimCollector(CollectorOptions(sim_model="H100", sim_devices=8)),
                      node="x", clock=lambda: now[0])
    hello = sampler.hello()
    devices = [f for f in sampler.tick() if isinstance(f, Report)][-1].devices
    fleet = FleetState()
    seq: dict[str, int] = {}
    for i in range(NODES):
        name = f"n{i:05d}"
        fleet.add_node(name, f"dc{i % 8}", "nvidia")
        fleet.apply(name, hello, now[0])
        seq[name] = 1
    names = list(fleet.nodes)

    def feed(part: list[str]) -> None:
        for name in part:
            seq[name] += 1
            fleet.apply(name, Report(v=1, node=name, seq=seq[name], ts=now[0],
                                     devices=devices), now[0])

    feed(names)
    app = FleetApp(fleet, clock=lambda: now[0])
    async with app.run_test(size=(160, 50)) as pilot:
        await app.run_command("nodes")
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen)
        assert len(app.screen.query_one(NodeTable).keys) == NODES
        for k in range(8):  # 1 Hz per node = a quarter of the fleet per 0.25 s tick
            now[0] += 0.25
            feed(names[(k % 4) * NODES // 4:(k % 4 + 1) * NODES // 4])
            app.refresh_fleet()
            await pilot.pause()
        table = app.screen.query_one(NodeTable)
        assert len(table.keys) == NODES
        assert all(fleet.nodes[n].reports == 3 for n in names)
