"""A fresh snapshot of part of the fleet, for scripted read commands.

Connect to each selected node, wait until it has sent a report or failed for good, within a
deadline; nodes that did neither are reported with the state they reached, never hidden.
"""

from __future__ import annotations

import asyncio
import time

from console.model.fleet import FleetState
from console.model.inventory import Inventory, Node
from console.model.states import FAILED_LINKS
from console.telemetry.ssh import FanIn, FanInOptions


def answered(fleet: FleetState, name: str) -> bool:
    return fleet.nodes[name].reports > 0


async def snapshot(inventory: Inventory, nodes: list[Node], *, timeout_s: float = 10.0,
                   settle_s: float = 0.0, accept_new_hosts: bool = False) -> FleetState:
    """Fleet state after every node in `nodes` answered or failed, or `timeout_s` passed.

    `settle_s` keeps listening a little after the first reports (events that a daemon replays
    arrive right after its hello).
    """
    fleet = FleetState(inventory)
    fan = FanIn(fleet, nodes, FanInOptions(reconnect=False, accept_new_hosts=accept_new_hosts))
    deadline = time.monotonic() + timeout_s
    async with fan:
        while time.monotonic() < deadline:
            if all(answered(fleet, n.name) or fleet.nodes[n.name].link in FAILED_LINKS
                   for n in nodes):
                break
            await asyncio.sleep(0.05)
        if settle_s:
            await asyncio.sleep(min(settle_s, max(0.0, deadline - time.monotonic())))
    for n in nodes:
        node = fleet.nodes[n.name]
        if not answered(fleet, n.name) and node.link not in FAILED_LINKS:
            fleet.set_link(n.name, node.link if node.link != "live" else "stale",
                           node.error or f"no report within {timeout_s:g}s")
    return fleet
