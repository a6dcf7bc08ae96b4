"""The real-OpenSSH test fleet (tests/sshd.py) does what integration tests rely on."""

from __future__ import annotations

import asyncio
import socket
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import asyncssh
import pytest
import sshd
from sshd import SshdFleet

from agents.wire import Report, decode_frame
from console.model.inventory import Inventory, Node, load_inventory

# The fixture, bound at module level so pytest finds it. (`from sshd import sshd_fleet` works for
# pytest too, but ruff then flags every test argument named sshd_fleet as a redefinition, F811.)
sshd_fleet = sshd.sshd_fleet
pytestmark = pytest.mark.sshd


def inventory(fleet: SshdFleet, tmp_path: Path) -> Inventory:
    return load_inventory(fleet.write_inventory(tmp_path / "inventory.toml"))


def connect(
    fleet: SshdFleet, host: str, port: int, **override: object
) -> AbstractAsyncContextManager[asyncssh.SSHClientConnection]:
    options = {**fleet.connect_options(), "connect_timeout": 10, **override}
    return asyncssh.connect(host, port=port, **options)  # type: ignore[arg-type]


async def reports(fleet: SshdFleet, node: Node, want: int = 2) -> list[Report]:
    """Run the node's agent command over SSH and collect `want` reports."""
    assert node.ssh.port is not None
    got: list[Report] = []
    async with connect(fleet, node.host, node.ssh.port) as conn:
        proc = await conn.create_process(node.ssh.command)
        async with asyncio.timeout(15):
            while len(got) < want:
                line = await proc.stdout.readline()
                if not line:
                    stderr = await proc.stderr.read()
                    pytest.fail(f"{node.name}: stream ended early; stderr: {stderr!r}")
                frame = decode_frame(line)
                assert frame.node == node.name
                if isinstance(frame, Report):
                    got.append(frame)
        proc.close()
    return got


def test_inventory_has_one_node_per_host(sshd_fleet: SshdFleet, tmp_path: Path) -> None:
    inv = inventory(sshd_fleet, tmp_path)
    assert [(n.host, n.ssh.port) for n in inv.nodes] == sshd_fleet.hosts
    assert [n.name for n in inv.nodes] == ["node-01", "node-02", "node-03"]
    assert [n.pool for n in inv.nodes] == ["nvidia", "domestic", "nvidia"]
    node = inv.nodes[0]
    assert node.ssh.identity_file == sshd_fleet.client_key
    assert node.ssh.known_hosts == sshd_fleet.known_hosts
    assert node.ssh.command.startswith(str(sshd_fleet.agent_path))


async def test_every_host_streams_its_node(sshd_fleet: SshdFleet, tmp_path: Path) -> None:
    inv = inventory(sshd_fleet, tmp_path)
    results = await asyncio.gather(*(reports(sshd_fleet, n) for n in inv.nodes))
    for node, got in zip(inv.nodes, results, strict=True):
        assert len(got) == 2
        models = {d.model for d in got[0].devices}
        assert models == ({"910B"} if node.pool == "domestic" else {"H100"})


async def test_rotated_host_key_is_not_verifiable(sshd_fleet: SshdFleet) -> None:
    host, port = sshd_fleet.hosts[0]
    sshd_fleet.rotate_host_key()
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with connect(sshd_fleet, host, port):
            pass


async def test_wrong_known_hosts_is_not_verifiable(sshd_fleet: SshdFleet) -> None:
    host, port = sshd_fleet.hosts[1]
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with connect(sshd_fleet, host, port, known_hosts=str(sshd_fleet.wrong_known_hosts())):
            pass


async def test_wrong_client_key_is_denied(sshd_fleet: SshdFleet) -> None:
    host, port = sshd_fleet.hosts[2]
    key = str(sshd_fleet.unauthorized_client_key())
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(sshd_fleet, host, port, client_keys=[key]):
            pass


async def test_kill_refuses_and_restart_recovers(sshd_fleet: SshdFleet) -> None:
    host, port = sshd_fleet.hosts[0]
    async with connect(sshd_fleet, host, port) as conn:
        # A session open across kill() survives it, like one under a crashed real sshd.
        proc = await conn.create_process("cat")
        sshd_fleet.kill()
        proc.stdin.write("still here\n")
        assert await asyncio.wait_for(proc.stdout.readline(), 5) == "still here\n"
        with pytest.raises(OSError):  # ConnectionRefusedError
            async with connect(sshd_fleet, host, port):
                pass
        sshd_fleet.restart()  # stop() inside also ends the session kill() left behind
        with pytest.raises(asyncssh.ConnectionLost):
            await asyncio.wait_for(proc.stdout.read(), 5)
    async with connect(sshd_fleet, host, port) as conn:
        result = await conn.run("echo ok", check=True, timeout=10)
        assert result.stdout == "ok\n"


async def test_stop_ends_open_sessions(sshd_fleet: SshdFleet) -> None:
    host, port = sshd_fleet.hosts[0]
    async with connect(sshd_fleet, host, port) as conn:
        proc = await conn.create_process("sleep 60")
        await asyncio.to_thread(sshd_fleet.stop)
        await asyncio.wait_for(proc.wait_closed(), 5)


@pytest.mark.parametrize("sshd_fleet", [20], indirect=True)
async def test_twenty_hosts_over_two_sshds(sshd_fleet: SshdFleet, tmp_path: Path) -> None:
    inv = inventory(sshd_fleet, tmp_path)
    assert len(inv.nodes) == 20
    assert len({n.host for n in inv.nodes}) == 20
    assert len({n.ssh.port for n in inv.nodes}) == 2  # 16 + 4 addresses
    results = await asyncio.gather(*(reports(sshd_fleet, n, want=1) for n in inv.nodes))
    assert all(len(got) == 1 for got in results)


def test_missing_sshd_skips_or_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sshd, "sshd_binary", lambda: None)
    monkeypatch.setattr(sshd, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        sshd.require_sshd()
    monkeypatch.setattr(sshd, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception):
        sshd.require_sshd()


def test_busy_port_is_retried(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sshd.require_sshd()
    with socket.socket() as squatter:
        # Another process holds the first port offered, on one of the fleet's addresses.
        squatter.bind(("127.0.0.3", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        offers = iter([busy])
        real = sshd.free_port
        monkeypatch.setattr(sshd, "free_port", lambda: next(offers, None) or real())
        with SshdFleet(tmp_path / "sshd", 3) as fleet:
            assert busy not in {port for _, port in fleet.hosts}
            assert "Address already in use" in fleet.logs[0].read_text()
            with socket.create_connection(fleet.hosts[1], timeout=5):
                pass
