"""`fleetops-agent` as an operator and the console run it: real processes, real pipes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from agents.wire import Event, Hello, Report, decode_frame

AGENT = str(Path(sys.executable).parent / "fleetops-agent")
SIM = ["--collector", "sim", "--sim-devices", "2"]


def agent(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([AGENT, *args], capture_output=True, timeout=60, **kw)


def frames(stdout: bytes):
    return [decode_frame(line) for line in stdout.splitlines()]


def test_stream_prints_hello_then_count_reports_and_nothing_else():
    r = agent("stream", *SIM, "--interval", "0.05", "--count", "3", "--node", "gpu-01")
    assert r.returncode == 0, r.stderr
    got = frames(r.stdout)
    assert isinstance(got[0], Hello) and got[0].node == "gpu-01"
    assert sum(isinstance(f, Report) for f in got) == 3
    assert [f.seq for f in got] == sorted({f.seq for f in got})
    assert r.stderr == b""


def test_stream_exits_quietly_when_the_reader_goes_away():
    p = subprocess.Popen([AGENT, "stream", *SIM, "--interval", "0.05"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.readline()
    p.stdout.close()
    assert p.wait(timeout=20) == 0
    assert b"Traceback" not in p.stderr.read()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_stream_stops_cleanly_on_signals(sig):
    p = subprocess.Popen([AGENT, "stream", *SIM, "--interval", "0.05"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.send_signal(sig)
    _out, err = p.communicate(timeout=20)
    assert p.returncode == 0 and b"Traceback" not in err


def test_once_json_is_one_report_frame():
    r = agent("once", *SIM, "--json")
    (frame,) = frames(r.stdout)
    assert isinstance(frame, Report) and len(frame.devices) == 2


def test_once_table_for_people():
    r = agent("once", "--collector", "sim", "--sim-model", "910B", "--sim-devices", "1")
    text = r.stdout.decode()
    assert r.returncode == 0 and "910B" in text and "65536" in text


def test_auto_without_accelerators_is_one_line_exit_1():
    env = {**os.environ, "PATH": "/nonexistent"}
    for var in ("FLEETOPS_NPU_SMI", "FLEETOPS_PPU_SMI", "FLEETOPS_CNMON", "FLEETOPS_HY_SMI"):
        env.pop(var, None)
    r = agent("once", env=env)
    if r.returncode == 0:
        pytest.skip("this machine has accelerators")
    assert r.returncode == 1
    assert r.stderr.decode().count("\n") == 1 and "no accelerators found" in r.stderr.decode()


@pytest.mark.parametrize("args", [
    ["stream", "--collector", "tpu"], ["stream", "--interval", "0"], ["stream", "--count", "0"],
    ["bogus"],
])
def test_usage_errors_exit_2(args):
    assert agent(*args).returncode == 2


@pytest.mark.parametrize("args", [
    ["--sim-fault", "meltdown"], ["--sim-devices", "0"], ["--sim-devices", "65"],
])
def test_bad_simulator_options_are_usage_errors(args):
    r = agent("once", "--collector", "sim", *args)
    assert r.returncode == 2 and b"Traceback" not in r.stderr


def test_bad_metrics_address_is_a_usage_error():
    assert agent("daemon", *SIM, "--metrics-addr", "nope").returncode == 2


def test_schema_command_prints_json_schema():
    schema = json.loads(agent("schema").stdout)
    assert "fleetops wire protocol v1" in schema["title"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _replays_an_event(sock: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(20)
            s.connect(sock)
            lines = s.makefile("rb")
            lines.readline()  # hello
            return lines.readline().startswith(b'{"kind":"event"')
    except (FileNotFoundError, ConnectionRefusedError):
        return False


@pytest.fixture
def daemon(tmp_path):
    sock = str(tmp_path / "agent.sock")
    port = _free_port()
    p = subprocess.Popen([AGENT, "daemon", *SIM, "--interval", "0.1", "--socket", sock,
                          "--sim-fault", "xid79:1:0", "--node", "dn-1",
                          "--metrics-addr", f"127.0.0.1:{port}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not _replays_an_event(sock):  # the injected Xid is in the history a client gets
        assert p.poll() is None, p.stderr.read()
        assert time.monotonic() < deadline, "the daemon never replayed the injected Xid"
        time.sleep(0.05)
    yield sock, port, p
    if p.poll() is None:
        p.terminate()
        p.wait(timeout=10)


def test_stream_attaches_to_the_daemon_and_gets_recent_events_first(daemon):
    sock, _, _ = daemon
    r = agent("stream", "--socket", sock, "--count", "2")
    got = frames(r.stdout)
    assert isinstance(got[0], Hello) and got[0].node == "dn-1"
    assert isinstance(got[1], Event) and got[1].code == 79  # history replayed before live
    assert [f.seq for f in got] == list(range(1, len(got) + 1))


def test_two_consoles_share_one_sampler(daemon):
    sock, _, _ = daemon
    procs = [subprocess.Popen([AGENT, "stream", "--socket", sock, "--count", "3"],
                              stdout=subprocess.PIPE) for _ in range(2)]
    outs = [frames(p.communicate(timeout=30)[0]) for p in procs]
    for got in outs:
        assert sum(isinstance(f, Report) for f in got) == 3
    # one sampler: the same report (same ts) reaches both
    ts = [{f.ts for f in got if isinstance(f, Report)} for got in outs]
    assert ts[0] & ts[1]


def test_metrics_use_dcgm_exporter_names_and_labels(daemon):
    _, port, _ = daemon
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    line = next(x for x in body.splitlines() if x.startswith("DCGM_FI_DEV_GPU_UTIL{"))
    for label in ('gpu="0"', 'UUID="GPU-', 'device="nvidia0"', 'modelName="NVIDIA H100',
                  'Hostname="dn-1"', 'vendor="nvidia"', 'pool="nvidia"', "pci_bus_id="):
        assert label in line
    assert "# TYPE DCGM_FI_DEV_GPU_TEMP gauge" in body
    assert "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{" in body  # no _total suffix added
    assert "_total" not in body
    assert 'err_code="79"' in body
    # the lost device reports no utilisation: left out, never 0
    assert not any(x.startswith("DCGM_FI_DEV_GPU_UTIL{") and 'gpu="1"' in x
                   for x in body.splitlines())


def test_daemon_stops_on_sigterm_and_removes_its_socket(daemon):
    sock, _, p = daemon
    p.terminate()
    assert p.wait(timeout=10) == 0
    assert not os.path.exists(sock)
