"""`fleetops drain` end to end on a real Slurm: live nodes over SSH (the demo server plays
the Slurm nodes' agents), the plan, journaled execution through scontrol, and the controller
stopped halfway (exit 3, an account, nothing lost, the plan resumes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_cluster as cluster_module
from slurm_cluster import SlurmCluster

from console.demo.server import DemoServer, DemoSpec

slurm_cluster = cluster_module.slurm_cluster
slurm = cluster_module.slurm
pytestmark = [pytest.mark.slurm, pytest.mark.sshd]

FLEETOPS = str(Path(sys.executable).parent / "fleetops")
SLEEP = "#!/bin/sh\nsleep 300\n"
COMMENT = "--comment=runtime=cuda mem_per_device_mib=40960"


@pytest.fixture
def fleet_inventory(slurm: SlurmCluster, tmp_path):
    """An inventory whose nodes are the Slurm nodes, their agents served by the demo server."""
    import asyncio
    import threading

    spec = DemoSpec(dcs=2, nodes=16, devices=8, seed=4, interval_s=0.2, faults=False)
    loop = asyncio.new_event_loop()
    server = DemoServer(spec, workdir=tmp_path / "demo")
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    by_model: dict[str, list[str]] = {}
    for n in server.nodes:
        by_model.setdefault(n.model, []).append(n.name)
    agents = {"gpu01": by_model["H100"][0], "gpu02": by_model["H100"][1],
              "npu01": by_model["910B"][0], "npu02": by_model["910B"][1]}
    lines = ["[defaults]", f'identity_file = "{server.client_key_path}"',
             f'known_hosts = "{server.known_hosts_path}"', f"port = {server.port}",
             'command = "fleetops-agent stream --interval 0.2"', "interval_s = 0.2",
             "", "[[dc]]", 'name = "hangzhou"', 'region = "cn-east"', 'country = "CN"']
    for name, user in agents.items():
        pool = "nvidia" if name.startswith("gpu") else "domestic"
        lines += ["", "[[dc.node]]", f'name = "{name}"', 'host = "127.0.0.1"',
                  f'pool = "{pool}"', f'user = "{user}"']
    lines += ["", "[engine]", 'kind = "slurm"', 'partitions = { nvidia = "gpu", domestic = "npu" }',
              "", "[console]", f'journal_path = "{tmp_path / "journal.db"}"',
              f'audit_path = "{tmp_path / "audit.db"}"']
    inv = tmp_path / "inventory.toml"
    inv.write_text("\n".join(lines) + "\n")
    yield inv
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def fo(slurm: SlurmCluster, inv: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **slurm.env}
    return subprocess.run([FLEETOPS, "--inventory", str(inv), *args], capture_output=True,
                          text=True, timeout=180, env=env)


def running_on(slurm: SlurmCluster, job: str) -> str | None:
    for j in slurm.squeue():
        if str(j["job_id"]) == job and j["job_state"] == "RUNNING":
            return j["nodes"]
    return None


def test_drain_moves_the_job_and_the_node_drains(slurm, fleet_inventory):
    job = slurm.sbatch(SLEEP, "gpu", "gpu:2", extra=(COMMENT, "-w", "gpu01"))
    slurm.wait_for("job running", lambda: running_on(slurm, job))
    r = fo(slurm, fleet_inventory, "drain", "gpu01", "--reason", "xid 79 on gpu3", "--yes",
           "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert [s["action"] for s in out["plan"]["steps"]] == ["drain", "move"]
    assert out["plan"]["steps"][1]["target"][0]["node"] == "gpu02"
    slurm.wait_for("job on gpu02", lambda: running_on(slurm, job) == "gpu02", timeout=30)
    nodes = {n["name"]: n for n in json.loads(fo(slurm, fleet_inventory, "nodes",
                                                 "--json").stdout)}
    assert nodes["gpu01"]["admin"] in ("draining", "drained")
    assert fo(slurm, fleet_inventory, "resume", "gpu01", "--yes").returncode == 0


def test_controller_stopped_halfway_is_partial_and_the_plan_resumes(slurm, fleet_inventory):
    job = slurm.sbatch(SLEEP, "gpu", "gpu:2", extra=(COMMENT, "-w", "gpu01"))
    slurm.wait_for("job running", lambda: running_on(slurm, job))
    # Stop the controller once the drain step is journaled: a small watcher does it as soon
    # as gpu01 shows DRAIN, so the move step meets a dead controller.
    import threading

    def stop_when_draining() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if "DRAIN" in slurm.sinfo()["gpu01"].get("state_flags", []):
                    slurm.stop_controller()
                    return
            except Exception:
                pass
            time.sleep(0.05)

    watcher = threading.Thread(target=stop_when_draining)
    watcher.start()
    r = fo(slurm, fleet_inventory, "drain", "gpu01", "--reason", "xid 48", "--yes")
    watcher.join()
    try:
        assert r.returncode == 3, r.stdout + r.stderr
        assert "FAILED" in r.stdout and "resume it" in r.stdout
        plans = json.loads(fo(slurm, fleet_inventory, "plan", "list", "--json").stdout)
        pending = [p for p in plans if p["unfinished"]]
        assert pending
    finally:
        slurm.start_controller()
    # nothing lost: the job still exists (running or pending), and the plan finishes
    assert any(str(j["job_id"]) == job for j in slurm.squeue())
    r = fo(slurm, fleet_inventory, "plan", "resume", str(pending[0]["id"]), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    slurm.wait_for("job on gpu02", lambda: running_on(slurm, job) == "gpu02", timeout=30)


# -- two operators at once, on Slurm -----------------------------------------------------------


def without_guardrails(inv: Path) -> Path:
    """Both nvidia nodes out at once is what the guardrails exist to stop; these cases are
    about the race, so the limits are off."""
    text = inv.read_text() + ("\n[policy]\nmax_out_of_service_share = 1.0\n"
                              "max_nodes_per_window = 0\n")
    out = inv.with_name("inventory-no-guardrails.toml")
    out.write_text(text)
    return out


def test_drains_at_once_whose_jobs_go_to_each_others_node(slurm, fleet_inventory):
    inv = without_guardrails(fleet_inventory)
    one = slurm.sbatch(SLEEP, "gpu", "gpu:2", extra=(COMMENT, "-w", "gpu01"))
    two = slurm.sbatch(SLEEP, "gpu", "gpu:2", extra=(COMMENT, "-w", "gpu02"))
    slurm.wait_for("jobs running", lambda: running_on(slurm, one) and running_on(slurm, two))
    for node, other in (("gpu01", "gpu02"), ("gpu02", "gpu01")):
        plan = json.loads(fo(slurm, inv, "plan", "drain", node, "--json").stdout)
        assert plan["steps"][1]["target"][0]["node"] == other
    env = {**os.environ, **slurm.env}
    procs = [subprocess.Popen([FLEETOPS, "--inventory", str(inv), "drain", node, "--yes",
                               "--reason", "xid 79"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
             for node in ("gpu01", "gpu02")]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    live = {str(j["job_id"]): j for j in slurm.squeue()}
    assert {one, two} <= set(live)  # nothing lost: the CUDA jobs have nowhere else to go
    for job in (one, two):
        assert live[job]["nodes"] in ("", None) or live[job]["job_state"] != "RUNNING", live[job]
    sinfo = slurm.sinfo()
    assert all("DRAIN" in sinfo[n]["state_flags"] for n in ("gpu01", "gpu02"))
    assert fo(slurm, inv, "audit", "verify").returncode == 0


def test_a_move_confirmed_after_its_target_was_drained_on_slurm(slurm, fleet_inventory):
    from demo_cli import Terminal

    job = slurm.sbatch(SLEEP, "gpu", "gpu:2", extra=(
        "--comment=runtime=portable mem_per_device_mib=1024", "-w", "gpu01"))
    slurm.wait_for("job running", lambda: running_on(slurm, job))
    plan = json.loads(fo(slurm, fleet_inventory, "plan", "move", job, "--to-pool", "domestic",
                         "--json").stdout)
    target = plan["steps"][0]["target"][0]["node"]
    other = "npu02" if target == "npu01" else "npu01"
    term = Terminal([FLEETOPS, "--inventory", str(fleet_inventory), "move", job, "--to-pool",
                     "domestic", "--reason", "free the H100s"], env={**os.environ, **slurm.env})
    term.read_until("[y/N]")
    # Another operator drains the target with scontrol, outside fleetops.
    slurm.run("scontrol", "update", f"NodeName={target}", "State=DRAIN", "Reason=RMA")
    term.type("y")
    again = term.read_until("[y/N]")
    assert "The fleet changed since this plan was made" in again and target in again
    term.type("y")
    status, rest = term.finish(timeout=180)
    assert status == 0, rest
    slurm.wait_for("job on the other node", lambda: running_on(slurm, job) == other, timeout=30)
