"""The demo fleet: its plan, and its SSH server driven by a real asyncssh client on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import stat
from collections import Counter
from pathlib import Path

import asyncssh
import pytest

from agents import catalog
from agents.collectors.sim import Fault, SimProcess
from agents.wire import Event, Frame, Hello, Report, decode_frame
from console.demo.fleet import FAULT_AFTER_S
from console.demo.server import DemoServer, DemoSpec, parse_command, plan_fleet, serve_forever
from console.model.inventory import NAME_RE, load_inventory

INTERVAL = 0.05
WAIT = 5.0  # generous upper bound for anything that should take a few intervals


# -- the plan (pure) --------------------------------------------------------------------


def test_plan_is_deterministic_and_shaped():
    spec = DemoSpec()
    nodes = plan_fleet(spec)
    assert nodes == plan_fleet(DemoSpec())
    assert len(nodes) == 60
    assert list(dict.fromkeys(n.dc for n in nodes)) == [
        "hangzhou", "xining", "singapore", "frankfurt"]
    assert len({n.name for n in nodes}) == 60
    assert len({n.seed for n in nodes}) == 60  # the sim derives device UUIDs from the seed
    for n in nodes:
        assert NAME_RE.fullmatch(n.name), n.name
        assert n.pool == catalog.spec(n.model).pool
        assert n.devices == 8
    assert nodes[0].name == "hz-h100-01"
    assert {n.region for n in nodes if n.dc == "xining"} == {"cn-northwest"}
    assert {n.pool for n in nodes if n.dc in ("singapore", "frankfurt")} == {"nvidia"}

    xining = [n for n in nodes if n.dc == "xining"]
    domestic = sum(n.devices for n in xining if n.pool == "domestic")
    assert abs(domestic / sum(n.devices for n in xining) - 0.72) <= 0.10
    hangzhou = Counter(n.pool for n in nodes if n.dc == "hangzhou")
    assert hangzhou["nvidia"] > hangzhou["domestic"] > 0


def test_plan_schedules_a_few_faults_in_sim_syntax():
    nodes = plan_fleet(DemoSpec())
    faulty = [n for n in nodes if n.faults]
    assert 3 <= len(faulty) <= 8
    assert len({n.dc for n in faulty}) >= 3  # spread, not clustered
    for n in faulty:
        (text,) = n.faults
        fault = Fault.parse(text)
        assert fault.device < n.devices
        assert FAULT_AFTER_S[0] <= fault.after_s <= FAULT_AFTER_S[1]
        if n.pool == "domestic":
            assert fault.kind != "xid"
    assert plan_fleet(DemoSpec(seed=1)) != nodes
    assert not any(n.faults for n in plan_fleet(DemoSpec(faults=False)))


def test_plan_beyond_the_four_data_centers():
    nodes = plan_fleet(DemoSpec(dcs=10, nodes=100))
    dcs = list(dict.fromkeys(n.dc for n in nodes))
    assert dcs[:5] == ["hangzhou", "xining", "singapore", "frankfurt", "beijing"]
    assert dcs[-2:] == ["dc-9", "dc-10"]
    assert Counter(n.dc for n in nodes) == dict.fromkeys(dcs, 10)
    assert all(NAME_RE.fullmatch(n.name) for n in nodes)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "localhost", "::1", "example.com"])
def test_spec_refuses_anything_but_loopback(host):
    with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
        DemoSpec(host=host)
    assert DemoSpec(host="127.0.0.2").host == "127.0.0.2"


@pytest.mark.parametrize(("command", "expected"), [
    ("fleetops-agent stream", (1.0, None)),
    ("/opt/fleetops/bin/fleetops-agent stream --interval 0.5 --count=3", (0.5, 3)),
    ("fleetops-agent stream --interval=2 --local", (2.0, None)),
])
def test_parse_command(command, expected):
    assert parse_command(command, 1.0) == expected


# -- the server -----------------------------------------------------------------------


@pytest.fixture
async def demo(tmp_path):
    spec = DemoSpec(nodes=12, devices=2, interval_s=INTERVAL, seed=7)
    async with DemoServer(spec, workdir=tmp_path / "demo") as server:
        yield server


def _connect(demo: DemoServer, user: str, **kw) -> asyncssh.SSHClientConnection:
    # config/agent off: the test must not pick up the developer's ~/.ssh or ssh-agent.
    options = {"known_hosts": str(demo.known_hosts_path),
               "client_keys": [str(demo.client_key_path)], "config": None,
               "agent_path": None, "preferred_auth": "publickey"} | kw
    return asyncssh.connect("127.0.0.1", demo.port, username=user, **options)


class Stream:
    """Frames of one exec'd command, read in the background so waits can time out."""

    def __init__(self, proc: asyncssh.SSHClientProcess) -> None:
        self.proc = proc
        self.frames: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self.proc.stdout.readline():
            self.frames.put_nowait(decode_frame(line))
        self.frames.put_nowait(None)  # EOF

    async def next(self, timeout: float = WAIT) -> Frame | None:
        async with asyncio.timeout(timeout):
            return await self.frames.get()

    async def report(self) -> Report:
        while not isinstance(frame := await self.next(), Report):
            assert isinstance(frame, Event) or (isinstance(frame, Hello) and frame.seq == 1)
        return frame

    async def close(self) -> None:
        self.proc.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncssh.Error, OSError):
            await self._task


async def _stream(conn: asyncssh.SSHClientConnection, command: str) -> Stream:
    return Stream(await conn.create_process(command, encoding=None))


def _command(demo: DemoServer) -> str:
    return load_inventory(demo.inventory_path).nodes[0].ssh.command


async def test_inventory_loads_and_lists_every_node(demo):
    inv = load_inventory(demo.inventory_path)
    assert [n.name for n in inv.nodes] == [n.name for n in demo.nodes]
    assert [d.name for d in inv.dcs] == ["hangzhou", "xining", "singapore", "frankfurt"]
    assert inv.dc("xining").domestic_target == 0.72
    assert inv.dc("hangzhou").domestic_target is None
    by_name = {n.name: n for n in demo.nodes}
    for node in inv.nodes:
        plan = by_name[node.name]
        assert (node.dc, node.pool, node.host) == (plan.dc, plan.pool, "127.0.0.1")
        assert node.labels == {"model": plan.model, "demo": "true"}
        assert node.ssh.user == node.name
        assert node.ssh.port == demo.port != 0
        assert node.ssh.identity_file == demo.client_key_path
        assert node.ssh.known_hosts == demo.known_hosts_path
        assert node.ssh.command == f"fleetops-agent stream --interval {INTERVAL:g}"
        assert node.interval_s == INTERVAL
    assert inv.engine.kind == "embedded"
    assert inv.engine.db_path.parent == demo.inventory_path.parent
    assert stat.S_IMODE(demo.client_key_path.stat().st_mode) == 0o600
    assert demo.known_hosts_path.read_text().startswith(f"[127.0.0.1]:{demo.port} ssh-ed25519 ")


async def test_a_session_streams_hello_then_that_nodes_reports(demo):
    node = demo.nodes[-1]
    async with _connect(demo, node.name) as conn:
        assert conn.get_extra_info("peername")[0] == "127.0.0.1"
        stream = await _stream(conn, _command(demo))
        hello = await stream.next()
        assert isinstance(hello, Hello)
        assert (hello.node, hello.seq, hello.interval_s) == (node.name, 1, INTERVAL)
        assert [d.model for d in hello.devices] == [node.model] * node.devices
        seqs = [hello.seq]
        for _ in range(3):
            report = await stream.report()
            assert report.node == node.name
            assert [d.model for d in report.devices] == [node.model] * node.devices
            assert {d.pool for d in report.devices} == {node.pool}
            seqs.append(report.seq)
        assert seqs == sorted(set(seqs))
        await stream.close()


async def test_two_sessions_of_a_node_share_one_sampler(demo):
    node = demo.nodes[0].name
    async with _connect(demo, node) as c1, _connect(demo, node) as c2:
        s1 = await _stream(c1, _command(demo))
        assert isinstance(await s1.next(), Hello)
        await s1.report()
        s2 = await _stream(c2, _command(demo))
        assert isinstance(await s2.next(), Hello)
        second = [await s2.report() for _ in range(3)]
        first = [await s1.report() for _ in range(6)]
        # Same ticks (one sampler) but each stream has its own strictly increasing seq.
        assert {r.ts for r in second} <= {r.ts for r in first}
        for reports in (first, second):
            seqs = [r.seq for r in reports]
            assert seqs == sorted(set(seqs))
        assert second[0].seq < first[0].seq
        await s1.close()
        await s2.close()


async def test_auth_needs_a_node_name_and_the_demo_key(demo):
    with pytest.raises(asyncssh.PermissionDenied):
        async with _connect(demo, "root"):
            pass
    other = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        async with _connect(demo, demo.nodes[0].name, client_keys=[other]):
            pass
    with pytest.raises(asyncssh.PermissionDenied):
        async with _connect(demo, demo.nodes[0].name, client_keys=[], password="x",
                            preferred_auth="password,keyboard-interactive"):
            pass


async def test_client_must_trust_the_host_key(demo, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with _connect(demo, demo.nodes[0].name, known_hosts=str(empty)):
            pass


async def test_other_commands_are_not_found(demo):
    async with _connect(demo, demo.nodes[0].name) as conn:
        result = await conn.run("cat /etc/passwd", encoding="utf-8")
        assert result.exit_status == 127
        assert result.stderr == "demo: command not found: cat /etc/passwd\n"
        assert result.stdout == ""
        result = await conn.run("fleetops-agent stream --collector nvml", encoding="utf-8")
        assert result.exit_status == 2
        assert "unsupported option --collector" in result.stderr


async def test_count_ends_the_session_after_n_reports(demo):
    async with _connect(demo, demo.nodes[1].name) as conn, asyncio.timeout(WAIT):
        result = await conn.run(f"{_command(demo)} --count 2", encoding=None)
    assert result.exit_status == 0
    frames = [decode_frame(line) for line in result.stdout.splitlines()]
    assert isinstance(frames[0], Hello)
    assert sum(isinstance(f, Report) for f in frames) == 2
    assert isinstance(frames[-1], Report)


async def test_kill_sessions_closes_the_stream(demo):
    node = demo.nodes[2].name
    async with _connect(demo, node) as conn:
        stream = await _stream(conn, _command(demo))
        await stream.report()
        assert await demo.kill_sessions(node) == 1
        while (frame := await stream.next()) is not None:
            assert isinstance(frame, Report | Event)
        await asyncio.wait_for(stream.proc.wait_closed(), WAIT)
        assert stream.proc.exit_signal is not None
        assert stream.proc.exit_signal[0] == "KILL"
        # The node lives on: a new session streams again.
        again = await _stream(conn, _command(demo))
        assert isinstance(await again.next(), Hello)
        await again.report()
        await again.close()


async def test_pause_hangs_the_agent_and_resume_restarts_it(demo):
    node = demo.nodes[3].name
    async with _connect(demo, node) as conn:
        stream = await _stream(conn, _command(demo))
        last = await stream.report()
        demo.pause(node)
        await asyncio.sleep(2 * INTERVAL)  # frames already in flight arrive
        while not stream.frames.empty():
            last = stream.frames.get_nowait()
            assert last is not None
        with pytest.raises(TimeoutError):
            await stream.next(timeout=3 * INTERVAL)
        # A session opened while hung gets nothing at all, not even its hello.
        late = await _stream(conn, _command(demo))
        with pytest.raises(TimeoutError):
            await late.next(timeout=3 * INTERVAL)
        demo.resume(node)
        report = await stream.report()
        assert report.seq > last.seq
        assert isinstance(await late.next(), Hello)
        await stream.close()
        await late.close()


async def test_closing_the_channel_detaches_and_stops_sampling(demo):
    node = demo.nodes[4].name
    async with _connect(demo, node) as conn:
        stream = await _stream(conn, _command(demo))
        await stream.report()
        runtime = demo._runtimes[node]
        await stream.close()
        async with asyncio.timeout(WAIT):
            while runtime.sessions:
                await asyncio.sleep(INTERVAL)
        assert runtime._task is None
        seq = runtime.sampler.seq
        await asyncio.sleep(3 * INTERVAL)
        assert runtime.sampler.seq == seq  # no reader, no ticking


async def test_set_workload_shows_in_the_next_reports(demo):
    node = demo.nodes[5].name
    demo.set_workload(node, 1, [SimProcess(4242, "python demo_job.py", 1024, 90)])
    async with _connect(demo, node) as conn:
        stream = await _stream(conn, _command(demo))
        report = await stream.report()
        assert [p.pid for p in report.devices[1].processes] == [4242]
        await stream.close()


async def test_each_session_gets_its_own_interval(demo):
    node = demo.nodes[6].name
    async with _connect(demo, node) as conn:
        fast = await _stream(conn, _command(demo))
        slow = await _stream(conn, "fleetops-agent stream --interval 0.2")
        hello = await slow.next()
        assert isinstance(hello, Hello) and hello.interval_s == 0.2
        ts = [(await slow.report()).ts for _ in range(3)]
        # The slow reader skips ticks (never closer than its interval, whatever the load)...
        assert all(b - a >= 0.15 for a, b in itertools.pairwise(ts))
        assert isinstance(await fast.next(), Hello)
        fast_ts = [(await fast.report()).ts for _ in range(6)]
        # ...while the fast one gets every tick.
        assert (fast_ts[-1] - fast_ts[0]) / 5 < 0.15
        await fast.close()
        await slow.close()


async def test_a_reader_that_falls_behind_is_dropped(demo):
    node = demo.nodes[7].name
    # A tiny window and a reader that never reads: the server's buffer fills, then its queue.
    async with _connect(demo, node) as conn:
        proc = await conn.create_process("fleetops-agent stream --interval 0.002",
                                         encoding=None, window=4096)
        runtime = demo._runtimes[node]
        async with asyncio.timeout(WAIT):
            while not runtime.sessions:
                await asyncio.sleep(INTERVAL)
            while runtime.sessions:
                await asyncio.sleep(INTERVAL)
        proc.close()


async def test_serve_forever_prints_the_inventory_first_and_cleans_up(capsys):
    out = io.StringIO()
    task = asyncio.create_task(serve_forever(DemoSpec(nodes=4, dcs=2, devices=1), out))
    async with asyncio.timeout(WAIT):
        while not out.getvalue().endswith("\n"):
            await asyncio.sleep(0.01)
    path = Path(out.getvalue().splitlines()[0])
    assert len(load_inventory(path).nodes) == 4
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not path.parent.exists()
    assert "4 nodes" in capsys.readouterr().err
