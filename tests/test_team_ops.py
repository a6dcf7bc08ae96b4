"""Operating as a team, end to end on the demo fleet with real processes: a move confirmed at
its prompt after another operator drained its target, two drains at the same moment whose jobs
go to each other's node, a rollback after a later plan, guardrails and their override, dry-run
mode, the audit log's chain checked and tampered with, and the state files (private, never a
silent fresh start, readable when read-only or locked).

Every case ends with the same checks: no job on a node a done drain emptied, no job lost or
placed twice, and the audit log holds together.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import stat
import tempfile
import traceback
from collections import Counter
from pathlib import Path

import pytest
from conftest import require
from demo_cli import FLEETOPS, Demo, Terminal, serve


@pytest.fixture
def demo():
    with serve() as d:
        yield d


def assert_whole(demo: Demo, before: dict[str, dict]) -> dict[str, dict]:
    """No job lost, none placed twice, every device held once; returns the jobs now."""
    now = demo.jobs()
    assert set(now) == set(before), "a job was lost or appeared"
    held = Counter((p["node"], d) for j in now.values() for p in j["placement"]
                   for d in p["devices"])
    assert not [k for k, c in held.items() if c > 1], "a device holds two jobs"
    for j in now.values():
        nodes = [p["node"] for p in j["placement"]]
        assert len(nodes) == len(set(nodes))
        if nodes:
            assert len(nodes) == j["nodes"]
    return now


def on(jobs: dict[str, dict], node: str) -> list[str]:
    return sorted(j["id"] for j in jobs.values() if node in [p["node"] for p in j["placement"]])


def small_jobs(jobs: dict[str, dict], node: str) -> list[dict]:
    return [j for j in jobs.values() if j["nodes"] == 1 and j["devices_per_node"] <= 2
            and node in [p["node"] for p in j["placement"]]]


def as_user(user: pwd.struct_passwd, argv: list[str], warm: list[str]) -> tuple[int, str]:
    """`fleetops ARGV` as another user, in a forked child of this process (the interpreter and
    its standard library may live where that user cannot read): (exit status, output). The
    child first runs `warm` as root, output discarded, so every module is imported before
    the switch."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            from console.cli.main import main

            main(warm)
            os.dup2(write, 1)
            os.dup2(write, 2)
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            os.environ["HOME"] = "/nonexistent"
            code = main(argv)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as f:
        out = f.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out


def verify_audit(demo: Demo, inventory: str | None = None) -> None:
    r = demo.fo("audit", "verify", inventory=inventory)
    assert r.returncode == 0 and "the chain holds" in r.stdout, r.stdout + r.stderr


# -- a plan confirmed after the fleet changed ------------------------------------------------


def test_a_move_confirmed_after_its_target_was_drained_asks_again(demo):
    before = demo.jobs()
    job, target = None, None
    for j in sorted(before.values(), key=lambda j: j["id"]):
        if j["pool"] != "nvidia" or j["nodes"] != 1 or j["runtime"] not in (
                "portable", "cuda-compatible"):
            continue
        plan = demo.json("plan", "move", j["id"], "--to-pool", "domestic")
        if plan["possible"]:
            job, target = j["id"], plan["steps"][0]["target"][0]["node"]
            break
    assert job and target, "the demo has a job that can move to the domestic pool"
    term = Terminal([FLEETOPS, "--inventory", demo.inventory, "move", job, "--to-pool",
                     "domestic", "--reason", "rebalance"])
    shown = term.read_until("[y/N]")
    assert target in shown
    # The second operator, at the same moment, drains that target for RMA.
    r = demo.fo("drain", target, "--yes", "--reason", "RMA, do not use")
    assert r.returncode == 0, r.stdout + r.stderr
    assert demo.admin(target) == "drained"
    term.type("y")
    again = term.read_until("[y/N]")
    assert "The fleet changed since this plan was made" in again
    assert "nothing has been done" in again
    assert f"{target} is drained now" in again
    assert on(demo.jobs(), target) == []  # the first `y` ran nothing
    term.type("y")
    status, rest = term.finish()
    assert status == 0, rest
    now = assert_whole(demo, before)
    assert now[job]["pool"] == "domestic"
    assert target not in [p["node"] for p in now[job]["placement"]]
    assert demo.admin(target) == "drained" and on(now, target) == []  # not back to draining
    verify_audit(demo)


def test_a_move_answered_no_after_the_fleet_changed_changes_nothing(demo):
    before = demo.jobs()
    job = next(j["id"] for j in sorted(before.values(), key=lambda j: j["id"])
               if j["pool"] == "nvidia" and j["runtime"] == "portable" and j["nodes"] == 1
               and demo.json("plan", "move", j["id"], "--to-pool", "domestic")["possible"])
    term = Terminal([FLEETOPS, "--inventory", demo.inventory, "move", job, "--to-pool",
                     "domestic", "--reason", "rebalance"])
    term.read_until("[y/N]")
    target = demo.json("plan", "move", job, "--to-pool", "domestic")["steps"][0]["target"]
    assert demo.fo("cordon", target[0]["node"], "--yes").returncode == 0
    term.type("y")
    term.read_until("[y/N]")
    term.type("n")
    status, out = term.finish()
    assert status == 2 and "nothing was done" in out
    assert demo.jobs() == before


# -- two operators at the same moment ----------------------------------------------------------


def test_two_drains_at_once_whose_jobs_go_to_each_others_node(demo, tmp_path):
    """Every other node is cordoned, so each drain's jobs can only go to the other drain's
    node; both start at the same moment. Both drains finish, both nodes end empty."""
    inv = demo.variant(tmp_path, policy="max_out_of_service_share = 1.0\n"
                                        "max_nodes_per_window = 0")
    before = demo.jobs()
    nodes = demo.nodes()
    pairs = [(a, b) for a in sorted(nodes) for b in sorted(nodes)
             if a < b and nodes[a]["pool"] == nodes[b]["pool"] == "nvidia"
             and nodes[a]["dc"] == nodes[b]["dc"] and small_jobs(before, a)
             and small_jobs(before, b)]
    assert pairs, "the demo has two nvidia nodes of one data center running small jobs"
    a, b = pairs[0]
    others = [n for n in nodes if n not in (a, b)]
    r = demo.fo("cordon", *others, "--yes", "--reason", "test: only a and b take jobs",
                inventory=inv)
    assert r.returncode == 0, r.stdout + r.stderr
    to_b = demo.json("plan", "drain", a, inventory=inv)
    to_a = demo.json("plan", "drain", b, inventory=inv)
    assert b in {t["node"] for s in to_b["steps"] for t in s["target"]}, to_b
    assert a in {t["node"] for s in to_a["steps"] for t in s["target"]}, to_a

    first = demo.start("drain", a, "--yes", "--reason", "xid 79", inventory=inv)
    second = demo.start("drain", b, "--yes", "--reason", "xid 48", inventory=inv)
    for proc in (first, second):
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, out + err
    now = assert_whole(demo, before)
    assert on(now, a) == [] and on(now, b) == []
    assert demo.admin(a) == demo.admin(b) == "drained"
    verify_audit(demo, inv)
    assert demo.fo("resume", a, b, *others, "--yes", inventory=inv).returncode == 0


# -- rollback after a later plan ---------------------------------------------------------------


def test_rollback_leaves_what_a_later_plan_changed(demo):
    before = demo.jobs()
    nodes = demo.nodes()
    a = next(n for n in sorted(nodes) if nodes[n]["pool"] == "nvidia"
             and len(small_jobs(before, n)) >= 2)
    r = demo.json("drain", a, "--yes", "--reason", "fan")
    assert r["outcome"]["status"] == "done", r
    first = r["outcome"]["plan_id"]
    moves = [s for s in r["plan"]["steps"] if s["action"] == "move"]
    moved, target = moves[0]["job"], moves[0]["target"][0]["node"]
    # Later, another operator drains where that job went: it moves on.
    r = demo.json("drain", target, "--yes", "--reason", "RMA, do not use")
    assert r["outcome"]["status"] == "done", r
    second = r["outcome"]["plan_id"]
    where = demo.jobs()[moved]["placement"]
    back = demo.fo("plan", "rollback", str(first), "--yes")
    assert back.returncode == 0, back.stdout + back.stderr
    text = " ".join(back.stdout.split())
    assert f"{moved}: left where plan {second} put it" in text
    now = assert_whole(demo, before)
    assert now[moved]["placement"] == where  # not put back on the node being rolled back
    assert demo.admin(target) == "drained"  # the later drain stands
    assert demo.admin(a) == "active"  # what was this plan's alone is undone
    verify_audit(demo)


# -- guardrails ------------------------------------------------------------------------------


def test_guardrail_on_nodes_per_window_refuses_then_force_with_a_reason(demo, tmp_path):
    inv = demo.variant(tmp_path, policy="max_nodes_per_window = 1", fresh_logs=True)
    nodes = sorted(demo.nodes())
    x, y = nodes[0], nodes[1]
    assert demo.fo("cordon", x, "--yes", "--reason", "fan", inventory=inv).returncode == 0
    r = demo.fo("cordon", y, "--yes", "--reason", "fan", inventory=inv)
    assert r.returncode == 2, r.stdout + r.stderr
    said = " ".join(r.stdout.split())
    assert "guardrail: cordon" in said and "2 nodes taken out of service within 10 min" in said
    assert "--force" in said
    assert demo.admin(y) == "active"
    r = demo.fo("cordon", y, "--yes", "--force", inventory=inv)
    assert r.returncode == 2 and "--force needs --reason" in r.stderr
    r = demo.fo("cordon", y, "--yes", "--force", "--reason", "planned maintenance",
                inventory=inv)
    assert r.returncode == 0, r.stdout + r.stderr
    assert demo.admin(y) == "cordoned"
    entries = demo.json("audit", inventory=inv)
    refused = [e for e in entries if e["outcome"].startswith("refused: guardrail")]
    override = [e for e in entries if e["action"] == "override"]
    assert len(refused) == 1 and len(override) == 1
    assert override[0]["reason"] == "planned maintenance"
    assert "guardrails overridden: guardrail: cordon" in override[0]["outcome"]
    verify_audit(demo, inv)


def test_guardrail_on_a_data_centers_share_refuses_a_big_drain(demo, tmp_path):
    inv = demo.variant(tmp_path, policy="max_out_of_service_share = 0.3", fresh_logs=True)
    nodes = demo.nodes()
    dc = sorted(n for n in nodes if nodes[n]["dc"] == "singapore")
    assert len(dc) >= 4
    before = demo.jobs()
    r = demo.fo("drain", *dc[:3], "--yes", "--reason", "power work", inventory=inv)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "of data center singapore's devices out of service" in " ".join(r.stdout.split())
    assert demo.jobs() == before and all(demo.admin(n) == "active" for n in dc)


# -- dry-run mode ------------------------------------------------------------------------------


def test_dry_run_mode_plans_and_audits_but_executes_nothing(demo, tmp_path):
    inv = demo.variant(tmp_path, console="dry_run = true", fresh_logs=True)
    before = demo.jobs()
    node = next(n for n in sorted(demo.nodes()) if on(before, n))
    r = demo.fo("drain", node, "--yes", "--reason", "try it", inventory=inv)
    assert r.returncode == 0 and "dry-run" in r.stdout, r.stdout + r.stderr
    assert demo.jobs() == before and demo.admin(node) == "active"
    [entry] = demo.json("audit", inventory=inv)
    assert entry["action"] == "drain" and entry["outcome"].startswith("dry-run: ")
    assert demo.json("plan", "list", inventory=inv) == []  # nothing journaled to resume


# -- the audit log -----------------------------------------------------------------------------


def test_audit_verify_finds_an_edited_entry_and_a_truncated_log(demo, tmp_path):
    inv = demo.variant(tmp_path, fresh_logs=True)
    node = sorted(demo.nodes())[0]
    for verb in ("cordon", "uncordon", "cordon", "uncordon"):
        assert demo.fo(verb, node, "--yes", "--reason", "check", inventory=inv).returncode == 0
    verify_audit(demo, inv)
    db = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    db.execute("DROP TRIGGER entries_no_update")
    db.execute("DROP TRIGGER entries_no_delete")
    db.execute("UPDATE entries SET user = 'nobody' WHERE id = 2")
    db.close()
    r = demo.fo("audit", "verify", inventory=inv)
    assert r.returncode == 1 and "entry 2 was changed after it was written" in r.stderr
    db = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    db.execute("DELETE FROM entries")
    db.close()
    r = demo.fo("audit", inventory=inv)
    assert r.returncode == 1 and "the log is empty but its head says" in r.stderr


# -- state files ---------------------------------------------------------------------------------


def test_state_files_are_private(demo, tmp_path):
    state = tmp_path / "state" / "fleetops"
    inv = demo.variant(tmp_path, fresh_logs=True)
    text = Path(inv).read_text().replace(str(tmp_path / "journal.db"), str(state / "j.db"))
    Path(inv).write_text(text.replace(str(tmp_path / "audit.db"), str(state / "a.db")))
    assert demo.fo("cordon", sorted(demo.nodes())[0], "--yes", inventory=inv).returncode == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for f in state.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_an_empty_journal_is_an_error_never_a_fresh_start(demo, tmp_path):
    inv = demo.variant(tmp_path, fresh_logs=True)
    (tmp_path / "journal.db").write_bytes(b"")
    node = sorted(demo.nodes())[0]
    for args in (("plan", "list"), ("cordon", node, "--yes")):
        r = demo.fo(*args, inventory=inv)
        assert r.returncode != 0 and "journal.db is empty (0 bytes)" in r.stderr, args
        assert len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "journal.db").stat().st_size == 0  # left for the operator to look at
    assert demo.admin(node) == "active"


def test_read_commands_work_on_files_this_user_cannot_write(demo, tmp_path):
    require("root", os.geteuid() == 0, "the test runs a read command as another user")
    assert demo.fo("cordon", sorted(demo.nodes())[0], "--yes").returncode == 0
    nobody = pwd.getpwnam("nobody")
    # Outside pytest's base directory, which is private to root.
    base = Path(tempfile.mkdtemp(prefix="fleetops-ro-"))
    base.chmod(0o755)
    ro = base / "ro"
    ro.mkdir()
    src = Path(demo.inventory).parent
    text = Path(demo.inventory).read_text()
    for name in ("jobs.db", "journal.db", "audit.db"):
        with sqlite3.connect(src / name) as db:  # a consistent copy, WAL folded in
            db.execute(f"VACUUM INTO '{ro / name}'")
        copy = sqlite3.connect(ro / name)
        copy.execute("PRAGMA journal_mode=WAL")  # as the console leaves them
        copy.close()
        text = text.replace(str(src / name), str(ro / name))
    (ro / "inventory.toml").write_text(text)
    for f in ro.iterdir():
        os.chown(f, nobody.pw_uid, nobody.pw_gid)
        f.chmod(0o400)
    os.chown(ro, nobody.pw_uid, nobody.pw_gid)
    ro.chmod(0o500)
    try:
        for args in (("jobs",), ("audit",), ("plan", "list"), ("audit", "verify")):
            status, out = as_user(nobody, ["--inventory", str(ro / "inventory.toml"), *args],
                                  warm=["--inventory", demo.inventory, *args])
            assert status == 0, (args, out)
        assert sorted(os.listdir(ro)) == ["audit.db", "inventory.toml", "jobs.db",
                                          "journal.db"]
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_read_commands_answer_while_another_process_holds_the_write_lock(demo):
    src = Path(demo.inventory).parent
    assert demo.fo("cordon", sorted(demo.nodes())[0], "--yes").returncode == 0
    locks = []
    for name in ("jobs.db", "journal.db", "audit.db"):
        db = sqlite3.connect(src / name, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        locks.append(db)
    try:
        for args in (("jobs",), ("audit",), ("plan", "list")):
            r = demo.fo(*args)
            assert r.returncode == 0, (args, r.stderr)
    finally:
        for db in locks:
            db.execute("ROLLBACK")
            db.close()
