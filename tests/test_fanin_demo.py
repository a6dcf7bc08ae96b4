"""SSH fan-in against the demo fleet server: real SSH on loopback, every link state."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from console.demo.server import DemoServer, DemoSpec
from console.model.fleet import FleetState
from console.model.inventory import load_inventory
from console.telemetry.ssh import FanIn, FanInOptions

INTERVAL = 0.1


async def until(predicate, timeout: float = 10.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


@pytest.fixture
async def demo(tmp_path):
    spec = DemoSpec(dcs=2, nodes=4, devices=2, seed=3, interval_s=INTERVAL, faults=False)
    async with DemoServer(spec, workdir=tmp_path) as server:
        yield server


def fleet_for(server, mutate=None):
    inv = load_inventory(server.inventory_path)
    nodes = list(inv.nodes)
    if mutate:
        nodes = [mutate(n) for n in nodes]
    return FleetState(inv), nodes


def with_ssh(node, **changes):
    return dataclasses.replace(node, ssh=dataclasses.replace(node.ssh, **changes))


async def test_every_node_goes_live_with_its_devices(demo):
    fleet, nodes = fleet_for(demo)
    async with FanIn(fleet, nodes):
        await until(lambda: all(n.reports >= 2 for n in fleet.nodes.values()))
    for node in fleet.nodes.values():
        assert node.link == "live" and len(node.samples) == 2 and node.hello is not None
        assert node.hello.node == node.name
    assert fleet.totals().devices == 8


async def test_killed_agent_goes_down_then_back_live_by_itself(demo):
    fleet, nodes = fleet_for(demo)
    name = nodes[0].name
    async with FanIn(fleet, nodes):
        await until(lambda: fleet.nodes[name].reports > 0)
        await demo.kill_sessions(name)
        await until(lambda: fleet.nodes[name].link == "down")
        assert "stream ended" in fleet.nodes[name].error
        before = fleet.nodes[name].reports
        await until(lambda: fleet.nodes[name].link == "live"
                    and fleet.nodes[name].reports > before)
        assert all(fleet.nodes[n.name].link == "live" for n in nodes[1:])


async def test_hung_agent_goes_stale_within_three_intervals_then_reconnects(demo):
    fleet, nodes = fleet_for(demo)
    name = nodes[1].name
    async with FanIn(fleet, nodes):
        await until(lambda: fleet.nodes[name].reports > 0)
        demo.pause(name)
        paused_at = time.monotonic()
        await until(lambda: fleet.nodes[name].link == "stale", timeout=5)
        # the watchdog ticks every half interval (at least 0.1 s); allow scheduling slack
        assert time.monotonic() - paused_at < 3 * INTERVAL + 0.5
        demo.resume(name)
        await until(lambda: fleet.nodes[name].link == "live")


async def test_unknown_host_key_is_refused_with_a_clear_reason(demo, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    fleet, nodes = fleet_for(demo, lambda n: with_ssh(n, known_hosts=empty))
    async with FanIn(fleet, nodes[:1], FanInOptions(reconnect=False)):
        await until(lambda: fleet.nodes[nodes[0].name].link == "host-key-mismatch")
    assert "not trusted" in fleet.nodes[nodes[0].name].error


async def test_accept_new_hosts_learns_an_unknown_key_explicitly(demo, tmp_path):
    learnt = tmp_path / "learnt_known_hosts"
    learnt.write_text("")
    fleet, nodes = fleet_for(demo, lambda n: with_ssh(n, known_hosts=learnt))
    async with FanIn(fleet, nodes[:1], FanInOptions(accept_new_hosts=True)):
        await until(lambda: fleet.nodes[nodes[0].name].reports > 0)
    assert f"[127.0.0.1]:{demo.port} ssh-ed25519" in learnt.read_text()


async def test_changed_host_key_is_refused_even_with_accept_new(demo, tmp_path):
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    wrong = tmp_path / "wrong_known_hosts"
    original = f"[127.0.0.1]:{demo.port} {other}"
    wrong.write_text(original)
    fleet, nodes = fleet_for(demo, lambda n: with_ssh(n, known_hosts=wrong))
    async with FanIn(fleet, nodes[:1], FanInOptions(accept_new_hosts=True, reconnect=False)):
        await until(lambda: fleet.nodes[nodes[0].name].link == "host-key-mismatch")
    assert wrong.read_text() == original  # nothing was learnt


async def test_wrong_user_is_auth_failed(demo):
    fleet, nodes = fleet_for(demo, lambda n: with_ssh(n, user="nobody-here"))
    async with FanIn(fleet, nodes[:1], FanInOptions(reconnect=False)):
        await until(lambda: fleet.nodes[nodes[0].name].link == "auth-failed")
    assert "permission denied" in fleet.nodes[nodes[0].name].error


async def test_missing_agent_command_is_agent_missing(demo):
    fleet, nodes = fleet_for(demo, lambda n: with_ssh(n, command="no-such-agent stream"))
    async with FanIn(fleet, nodes[:1], FanInOptions(reconnect=False)):
        await until(lambda: fleet.nodes[nodes[0].name].link == "agent-missing")
    assert "not found" in fleet.nodes[nodes[0].name].error


async def test_unreachable_node_is_down_and_others_unaffected(demo):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    fleet, nodes = fleet_for(demo)
    nodes[0] = with_ssh(nodes[0], port=dead_port)
    async with FanIn(fleet, nodes):
        await until(lambda: fleet.nodes[nodes[0].name].link == "down"
                    and all(fleet.nodes[n.name].reports > 0 for n in nodes[1:]))
    assert "refused" in fleet.nodes[nodes[0].name].error


async def test_demo_jobs_show_as_processes_on_their_devices(tmp_path):
    from console.engines.embedded import EmbeddedEngine

    spec = DemoSpec(dcs=2, nodes=4, devices=8, seed=3, interval_s=INTERVAL, faults=False)
    async with DemoServer(spec, workdir=tmp_path) as demo:
        engine = EmbeddedEngine(tmp_path / "jobs.db")
        placed = {(node, d): job.id for job in engine.jobs() for p in job.placement
                  for node, d in ((p.node, dev) for dev in p.devices)}
        engine.close()
        assert placed, "the demo seeds jobs"
        fleet, nodes = fleet_for(demo)
        async with FanIn(fleet, nodes):
            await until(lambda: all(n.reports >= 1 for n in fleet.nodes.values()))
        shown = {(name, d.index): p.name.split(":")[0]
                 for name, n in fleet.nodes.items() for d in n.samples for p in d.processes}
        assert shown == placed


async def test_a_new_session_gets_the_nodes_recent_events_after_its_hello(demo):
    from agents.wire import Event

    fleet, nodes = fleet_for(demo)
    name = nodes[0].name
    demo._runtime(name).recent.append(Event(1, name, 1, time.time(), event="xid",
                                            severity="crit", message="Xid 79 earlier",
                                            code=79))
    async with FanIn(fleet, nodes[:1]):
        await until(lambda: any(e.code == 79 for e in fleet.nodes[name].events))
