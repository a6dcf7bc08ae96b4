"""Operations from the command line against the demo fleet: plans, confirmation, exit codes,
JSON shapes, the audit log and read-only mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FLEETOPS = str(Path(sys.executable).parent / "fleetops")


@pytest.fixture(scope="module")
def inv():
    p = subprocess.Popen([FLEETOPS, "demo", "--serve", "--nodes", "16", "--devices", "8",
                          "--interval", "0.2", "--seed", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    path = p.stdout.readline().strip()
    assert path
    yield path
    p.terminate()
    p.wait(timeout=10)


def fo(inv, *args, stdin=subprocess.DEVNULL):
    r = subprocess.run([FLEETOPS, "--inventory", inv, *args], capture_output=True, text=True,
                       timeout=120, stdin=stdin)
    return r


def jobs(inv) -> list[dict]:
    r = fo(inv, "jobs", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def node_admin(inv, node: str) -> str:
    nodes = json.loads(fo(inv, "nodes", "--json").stdout)
    return next(n["admin"] for n in nodes if n["name"] == node)


def busy_node(inv, pool: str = "nvidia") -> str:
    counts: dict[str, int] = {}
    for j in jobs(inv):
        if j["pool"] == pool and j["nodes"] == 1:
            for p in j["placement"]:
                counts[p["node"]] = counts.get(p["node"], 0) + 1
    return max(sorted(counts), key=lambda n: counts[n])


def test_jobs_json_shape(inv):
    js = jobs(inv)
    assert js
    for j in js:
        assert {"id", "name", "owner", "pool", "state", "runtime", "placement"} <= set(j)
        assert all({"node", "devices"} == set(p) for p in j["placement"])


def test_plan_drain_json_lists_steps_with_source_and_target(inv):
    node = busy_node(inv)
    r = fo(inv, "plan", "drain", node, "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["kind"] == "drain" and plan["possible"]
    assert plan["steps"][0] == {**plan["steps"][0], "action": "drain", "node": node}
    for s in plan["steps"][1:]:
        assert s["job"] and s["source"][0]["node"] == node
        assert s["target"] or s["action"] == "requeue"
        assert s["reason"]


def test_drain_needs_a_reason(inv):
    r = fo(inv, "drain", busy_node(inv), "--yes")
    assert r.returncode == 2 and "--reason" in r.stderr


def test_no_terminal_and_no_yes_refuses_and_changes_nothing(inv):
    node = busy_node(inv)
    before = jobs(inv)
    r = fo(inv, "drain", node, "--reason", "test")
    assert r.returncode == 2 and "--yes" in r.stderr
    assert jobs(inv) == before and node_admin(inv, node) == "active"


def test_dry_run_changes_nothing(inv):
    node = busy_node(inv)
    before = jobs(inv)
    r = fo(inv, "drain", node, "--reason", "test", "--dry-run", "--yes")
    assert r.returncode == 0 and "drain" in r.stdout
    assert jobs(inv) == before


def test_drain_moves_every_job_then_node_is_drained_and_resume_returns_it(inv):
    node = busy_node(inv)
    on_node = {j["id"] for j in jobs(inv) if node in [p["node"] for p in j["placement"]]}
    r = fo(inv, "drain", node, "--reason", "xid 79 on gpu3 (ticket OPS-1)", "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["outcome"]["status"] == "done" and out["outcome"]["plan_id"]
    after = {j["id"]: j for j in jobs(inv)}
    assert on_node <= set(after)  # no job lost
    assert all(node not in [p["node"] for p in after[j]["placement"]] for j in on_node)
    assert node_admin(inv, node) == "drained"
    assert fo(inv, "resume", node, "--yes").returncode == 0
    assert node_admin(inv, node) == "active"


def test_cordon_and_uncordon(inv):
    node = busy_node(inv, "domestic")
    assert fo(inv, "cordon", node, "--yes", "--reason", "maintenance").returncode == 0
    assert node_admin(inv, node) == "cordoned"
    assert fo(inv, "uncordon", node, "--yes").returncode == 0
    assert node_admin(inv, node) == "active"


def test_move_refused_is_exit_1_with_a_sentence(inv):
    cuda = next(j for j in jobs(inv) if j["runtime"] == "cuda")
    r = fo(inv, "move", cuda["id"], "--to-pool", "domestic", "--reason", "policy", "--yes")
    assert r.returncode == 1
    assert f"job {cuda['id']} runs cuda, which does not run on" in r.stdout.replace("\n", " ")


def test_cross_pool_move_nvidia_to_domestic(inv):
    movable = [j for j in jobs(inv) if j["pool"] == "nvidia" and j["nodes"] == 1
               and j["runtime"] in ("portable", "cuda-compatible")
               and j["mem_per_device_mib"] <= 64 * 1024]
    job = sorted(movable, key=lambda j: j["id"])[0]
    r = fo(inv, "move", job["id"], "--to-pool", "domestic", "--reason", "H20 supply frozen",
           "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    moved = next(j for j in jobs(inv) if j["id"] == job["id"])
    assert moved["pool"] == "domestic" and moved["placement"] != job["placement"]


def test_unknown_node_and_job_are_usage_errors(inv):
    assert fo(inv, "drain", "no-such-node", "--reason", "x", "--yes").returncode == 2
    r = fo(inv, "move", "j-0", "--to-pool", "nvidia", "--reason", "x", "--yes")
    assert r.returncode == 2 and "j-0" in r.stderr


def test_read_only_refuses_every_change(inv):
    node = busy_node(inv)
    before = jobs(inv)
    for args in (["drain", node, "--reason", "x", "--yes"], ["cordon", node, "--yes"],
                 ["resume", node, "--yes"], ["move", before[0]["id"], "--to-pool", "domestic",
                                             "--reason", "x", "--yes"],
                 ["plan", "rollback", "1", "--yes"]):
        r = subprocess.run([FLEETOPS, "--read-only", "--inventory", inv, *args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "read-only" in r.stderr, args
    assert jobs(inv) == before


def test_audit_records_who_what_why_and_outcome(inv):
    r = fo(inv, "audit", "--json")
    assert r.returncode == 0
    entries = json.loads(r.stdout)
    assert entries
    for e in entries:
        assert {"ts", "user", "action", "targets", "reason", "outcome"} <= set(e)
    lines = fo(inv, "audit", "--jsonl").stdout.splitlines()
    assert len(lines) == len(entries) and all(json.loads(x)["action"] for x in lines)


def test_plan_list_shows_journaled_plans(inv):
    r = fo(inv, "plan", "list", "--json")
    assert r.returncode == 0
    assert all({"id", "kind", "status", "unfinished"} <= set(p) for p in json.loads(r.stdout))


def test_read_only_still_previews_plans(inv):
    r = subprocess.run([FLEETOPS, "--read-only", "--inventory", inv, "plan", "drain",
                        busy_node(inv)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "drain" in r.stdout


def test_an_impossible_attempt_is_audited_but_changes_nothing(inv):
    cuda = next(j for j in jobs(inv) if j["runtime"] == "cuda")
    before = jobs(inv)
    r = fo(inv, "move", cuda["id"], "--to-pool", "domestic", "--reason", "audit me", "--yes")
    assert r.returncode == 1 and jobs(inv) == before
    last = json.loads(fo(inv, "audit", "--json").stdout)[-1]
    assert last["reason"] == "audit me" and last["outcome"].startswith("impossible")


def test_dry_run_of_an_impossible_plan_exits_1(inv):
    cuda = next(j for j in jobs(inv) if j["runtime"] == "cuda")
    r = fo(inv, "move", cuda["id"], "--to-pool", "domestic", "--reason", "x", "--dry-run")
    assert r.returncode == 1


def test_audit_jsonl_honours_limit(inv):
    lines = fo(inv, "audit", "--jsonl", "--limit", "2").stdout.splitlines()
    assert len(lines) <= 2
