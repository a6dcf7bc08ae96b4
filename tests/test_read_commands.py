"""`fleetops nodes|devices|events` against the demo fleet, as a script would run them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

FLEETOPS = str(Path(sys.executable).parent / "fleetops")


@pytest.fixture(scope="module")
def demo_inventory():
    p = subprocess.Popen([FLEETOPS, "demo", "--serve", "--nodes", "6", "--devices", "2",
                          "--interval", "0.2", "--seed", "5"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = p.stdout.readline().strip()
    assert path, p.stderr.read()
    yield Path(path)
    p.terminate()
    p.wait(timeout=10)
    assert not Path(path).exists()  # the demo cleans up its keys and inventory


def fleetops(*args, timeout=60):
    return subprocess.run([FLEETOPS, *args], capture_output=True, text=True, timeout=timeout)


def test_nodes_json_shape_and_exit_0(demo_inventory):
    r = fleetops("--inventory", str(demo_inventory), "nodes", "--json")
    assert r.returncode == 0, r.stderr
    nodes = json.loads(r.stdout)
    assert len(nodes) == 6
    for n in nodes:
        assert {"name", "dc", "pool", "state", "health", "last_seen", "devices", "admin"} <= set(n)
        assert n["state"] == "live" and n["health"] in {"ok", "warn", "crit"}
        assert len(n["devices"]) == 2 and n["devices"][0]["uuid"]


def test_devices_filtered_by_dc_and_pool(demo_inventory):
    r = fleetops("--inventory", str(demo_inventory), "devices", "--dc", "xining", "--pool",
                 "domestic", "--json")
    devices = json.loads(r.stdout)
    assert r.returncode == 0 and devices
    assert {d["dc"] for d in devices} == {"xining"} and {d["pool"] for d in devices} == {"domestic"}
    assert all("node" in d and "util_pct" in d for d in devices)


def test_events_json_is_a_list_of_frames_with_node(demo_inventory):
    r = fleetops("--inventory", str(demo_inventory), "events", "--json")
    assert r.returncode == 0
    for e in json.loads(r.stdout):
        assert e["kind"] == "event" and e["node"]


def test_tables_for_people(demo_inventory):
    r = fleetops("--inventory", str(demo_inventory), "nodes")
    assert r.returncode == 0 and "live" in r.stdout and "xining" in r.stdout


def test_unreachable_node_is_reported_and_exit_3(demo_inventory, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    inv = tmp_path / "inv.toml"
    inv.write_text(demo_inventory.read_text() + f"""
[[dc]]
name = "lost-dc"
region = "nowhere"
country = "XX"
[[dc.node]]
name = "ghost-01"
host = "127.0.0.1"
port = {dead}
pool = "nvidia"
""")
    r = fleetops("--inventory", str(inv), "nodes", "--json", "--timeout", "5")
    assert r.returncode == 3
    nodes = {n["name"]: n for n in json.loads(r.stdout)}
    assert nodes["ghost-01"]["state"] == "down" and "refused" in nodes["ghost-01"]["error"]
    assert sum(n["state"] == "live" for n in nodes.values()) == 6
    assert "ghost-01" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize("content, needle", [
    ("[[dc]]\nname = 'a'\n", "region"),
    ("this is not toml", "line 1"),
    ("[[dc]]\nname='a'\nregion='r'\ncountry='c'\n[[dc.node]]\nname='n'\nhost='h'\npool='tpu'\n",
     "pool"),
])
def test_broken_inventory_is_one_line_exit_2(tmp_path, content, needle):
    inv = tmp_path / "bad.toml"
    inv.write_text(content)
    r = fleetops("--inventory", str(inv), "nodes")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "bad.toml" in r.stderr and needle in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_inventory_is_exit_2(tmp_path):
    r = fleetops("--inventory", str(tmp_path / "nope.toml"), "nodes")
    assert r.returncode == 2 and "nope.toml" in r.stderr and "Traceback" not in r.stderr


def test_unknown_dc_is_exit_2(demo_inventory):
    r = fleetops("--inventory", str(demo_inventory), "nodes", "--dc", "atlantis")
    assert r.returncode == 2 and "atlantis" in r.stderr


def test_usage_error_is_exit_2():
    assert fleetops("nodes", "--pool", "tpu").returncode == 2


def test_host_alias_from_ssh_config_is_honoured(demo_inventory, tmp_path):
    """`host` may name a Host of ~/.ssh/config: its HostName, Port, User and key apply."""
    from console.model.inventory import load_inventory

    real = load_inventory(demo_inventory).nodes[0]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host gpu-alias\n  HostName 127.0.0.1\n  Port {real.ssh.port}\n  User {real.name}\n"
        f"  IdentityFile {real.ssh.identity_file}\n  UserKnownHostsFile {real.ssh.known_hosts}\n")
    inv = tmp_path / "alias.toml"
    inv.write_text(f"""
[defaults]
command = "fleetops-agent stream --interval 0.2"
[[dc]]
name = "hz"
region = "cn-east"
country = "CN"
[[dc.node]]
name = "{real.name}"
host = "gpu-alias"
pool = "{real.pool}"
""")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([FLEETOPS, "--inventory", str(inv), "nodes", "--json"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    (node,) = json.loads(r.stdout)
    assert node["state"] == "live" and node["agent"]["node"] == real.name


def test_inventory_errors_never_print_raw_escape_sequences(tmp_path):
    inv = tmp_path / "evil.toml"
    inv.write_text('"\\u001b]0;PWNED\\u0007\\u001b[2J" = 1\n[[dc]]\nname="a"\nregion="r"\n'
                   'country="c"\n')
    r = fleetops("--inventory", str(inv), "nodes")
    assert r.returncode == 2 and "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize("args", [
    ["demo", "--serve", "--nodes", "0"], ["demo", "--interval", "-1"], ["demo", "--dcs", "x"],
    ["nodes", "--timeout", "-1"], ["nodes", "--timeout", "nan"], ["audit", "--limit", "-1"],
])
def test_bad_numbers_are_usage_errors(args):
    r = fleetops(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_piping_into_head_ends_quietly(demo_inventory):
    p = subprocess.run(f"{FLEETOPS} --inventory {demo_inventory} devices --json | head -1",
                       shell=True, capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "[" and "Traceback" not in p.stderr
