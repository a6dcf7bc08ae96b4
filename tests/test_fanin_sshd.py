"""The console against real OpenSSH servers on loopback: agents killed, hung, servers restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
import sshd
from sshd import SshdFleet

from console.model.fleet import FleetState
from console.model.inventory import load_inventory
from console.telemetry.ssh import FanIn

sshd_fleet = sshd.sshd_fleet
pytestmark = pytest.mark.sshd


async def until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def agent_pids(node: str) -> list[int]:
    """PIDs of the agent processes streaming as `node` (the test fleet names them --node)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"stream" in argv and b"--node" in argv and node.encode() in argv:
            pids.append(int(entry.name))
    return pids


def setup(fleet: SshdFleet, tmp_path: Path):
    inv = load_inventory(fleet.write_inventory(tmp_path / "inventory.toml"))
    state = FleetState(inv)
    return state, FanIn(state, list(inv.nodes)), [n.name for n in inv.nodes]


def live(state: FleetState, names) -> bool:
    return all(state.nodes[n].link == "live" and state.nodes[n].reports > 0 for n in names)


async def test_live_frames_from_every_real_sshd_node(sshd_fleet, tmp_path):
    state, fan, names = setup(sshd_fleet, tmp_path)
    async with fan:
        await until(lambda: live(state, names))
    assert {d.model for n in names for d in state.nodes[n].samples} == {"H100", "910B"}


async def test_killed_agent_goes_down_and_comes_back_by_itself(sshd_fleet, tmp_path):
    state, fan, names = setup(sshd_fleet, tmp_path)
    victim = names[0]
    async with fan:
        await until(lambda: live(state, names))
        for pid in agent_pids(victim):
            os.kill(pid, signal.SIGKILL)
        await until(lambda: state.nodes[victim].link in ("down", "connecting"))
        before = state.nodes[victim].reports
        await until(lambda: state.nodes[victim].link == "live"
                    and state.nodes[victim].reports > before)
        assert live(state, names[1:])


async def test_hung_agent_turns_stale_then_live_when_it_resumes(sshd_fleet, tmp_path):
    state, fan, names = setup(sshd_fleet, tmp_path)
    victim = names[1]
    async with fan:
        await until(lambda: live(state, names))
        pids = agent_pids(victim)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)  # no frames, no FIN: the connection just goes quiet
        try:
            await until(lambda: state.nodes[victim].link == "stale", timeout=5)
            assert live(state, [names[0], names[2]])
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        await until(lambda: state.nodes[victim].link == "live")


async def test_server_stopped_then_restarted_without_touching_the_console(sshd_fleet, tmp_path):
    state, fan, names = setup(sshd_fleet, tmp_path)
    async with fan:
        await until(lambda: live(state, names))
        sshd_fleet.stop()
        await until(lambda: all(state.nodes[n].link == "down" for n in names))
        assert all(state.nodes[n].error for n in names)
        sshd_fleet.restart()
        await until(lambda: live(state, names), timeout=30)


async def test_changed_host_key_is_refused(sshd_fleet, tmp_path):
    state, fan, names = setup(sshd_fleet, tmp_path)
    sshd_fleet.rotate_host_key()
    async with fan:
        await until(lambda: all(state.nodes[n].link == "host-key-mismatch" for n in names))
    assert "not trusted" in state.nodes[names[0]].error


async def test_device_lost_halfway_turns_the_node_critical_and_says_why(sshd_fleet, tmp_path):
    command = (f"{sshd_fleet.agent_path} stream --collector sim --sim-devices 2 --interval 0.2 "
               "--sim-fault lost:1:1")  # device 1 falls off the bus after a second
    inv = load_inventory(sshd_fleet.write_inventory(tmp_path / "inv.toml", command=command))
    state = FleetState(inv)
    name = inv.nodes[0].name
    async with FanIn(state, list(inv.nodes)):
        await until(lambda: state.nodes[name].health == "crit")
        node = state.nodes[name]
        lost = node.samples[1]
        assert lost.util_pct is None and "device lost" in lost.reasons[0]
        assert node.samples[0].util_pct is not None  # the other device carries on
        assert any(e.event == "device-lost" for e in node.events)
        assert node.link == "live"  # the agent keeps streaming


async def test_sshd_killed_keeps_sessions_refuses_new_ones_and_recovers(sshd_fleet, tmp_path):
    state, fan, names = setup(sshd_fleet, tmp_path)
    async with fan:
        await until(lambda: live(state, names))
        sshd_fleet.kill()  # SIGKILL of the listening sshd: open sessions are its children
        await asyncio.sleep(1.0)
        assert live(state, names)
        fan.kick(names[0])  # this node must reconnect now, and cannot
        await until(lambda: state.nodes[names[0]].link == "down"
                    and "refused" in (state.nodes[names[0]].error or ""))
        assert live(state, names[1:])
        sshd_fleet.restart()
        await until(lambda: live(state, names), timeout=30)
