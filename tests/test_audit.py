"""The audit log: append-only (enforced by the database), hash-chained and verified, the OS
account of the process, JSON lines export, secrets redacted."""

from __future__ import annotations

import io
import itertools
import json
import os
import pwd
import sqlite3

import pytest

from console.model.jobs import Placement
from console.planning.plan import Plan, Step
from console.state.audit import GENESIS, Audit, entry_hash
from console.state.identity import Actor, account_name, current

PLAN = Plan("move", ("j-1",), (
    Step("move", "PPU runs cuda-compatible", job="j-1", source=(Placement("a", (0,)),),
         target=(Placement("b", (1,)),), target_pool="domestic"),
), reason="rebalance")
OPS = Actor("ops", 1000, None, "console-1", 42)


def raw(path) -> sqlite3.Connection:
    """The file as someone with the sqlite3 shell sees it."""
    return sqlite3.connect(path, isolation_level=None)


def test_record_and_entries(tmp_path):
    audit = Audit(tmp_path / "audit.db", actor=OPS)
    first = audit.record("move", ["j-1"], "rebalance", PLAN, "started")
    audit.record("move", ["j-1"], "rebalance", {"id": 3}, "done: 1 done")
    entries = audit.entries()
    assert [e["id"] for e in entries] == [first, first + 1]
    e = entries[0]
    assert {k: e[k] for k in ("user", "uid", "host", "invoked_by", "action", "targets",
                              "reason", "outcome")} == {
        "user": "ops", "uid": 1000, "host": "console-1", "invoked_by": None, "action": "move",
        "targets": ["j-1"], "reason": "rebalance", "outcome": "started"}
    assert e["plan"]["steps"][0]["target"] == [{"node": "b", "devices": [1]}]
    assert entries[0]["ts"] <= entries[1]["ts"]
    assert [x["outcome"] for x in audit.entries(limit=1)] == ["done: 1 done"]
    assert audit.entries(since=entries[1]["ts"] + 1) == []
    assert Audit(tmp_path / "audit.db").entries() == entries  # reopened: still there


def test_the_user_is_the_os_account_not_what_the_environment_says(tmp_path, monkeypatch):
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    monkeypatch.delenv("SUDO_USER", raising=False)
    audit = Audit(tmp_path / "audit.db")
    audit.record("cordon", ["n1"], "fan")
    [entry] = audit.entries()
    assert entry["user"] == pwd.getpwuid(os.geteuid()).pw_name != "mallory"
    assert entry["uid"] == os.geteuid() and entry["invoked_by"] is None


@pytest.mark.skipif(os.geteuid() != 0, reason="sudo sets SUDO_USER only for root commands")
def test_through_sudo_both_accounts_are_recorded(tmp_path, monkeypatch):
    nobody = pwd.getpwnam("nobody")
    monkeypatch.setenv("SUDO_USER", "nobody")
    monkeypatch.setenv("SUDO_UID", str(nobody.pw_uid))
    actor = current()
    assert actor.user == "root" and actor.invoked_by == "nobody"
    assert actor.label == "root (sudo from nobody)"
    Audit(tmp_path / "audit.db").record("drain", ["n1"], "fan")
    assert Audit(tmp_path / "audit.db").entries()[0]["invoked_by"] == "nobody"
    # SUDO_UID naming someone else is not a sudo invocation: nothing claimed is believed
    monkeypatch.setenv("SUDO_UID", "0")
    assert current().invoked_by is None


def test_an_account_without_a_name_is_its_uid():
    assert account_name(2**31 - 7) == str(2**31 - 7)


def test_append_only_enforced_by_the_database(tmp_path):
    Audit(tmp_path / "audit.db", actor=OPS).record("drain", ["n1"], "fan", None, "done")
    db = raw(tmp_path / "audit.db")
    for sql in ("UPDATE entries SET outcome = 'nothing happened'", "DELETE FROM entries",
                "DELETE FROM head", "UPDATE head SET last_id = 0"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    assert db.execute("SELECT outcome FROM entries").fetchall() == [("done",)]


def test_entries_are_chained(tmp_path):
    audit = Audit(tmp_path / "audit.db", actor=OPS)
    for i in range(3):
        audit.record("cordon", [f"n{i}"], "fan", None, "done")
    entries = audit.entries()
    assert entries[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after["prev_hash"] == before["hash"]
    for e in entries:
        assert entry_hash({**e, "targets": json.dumps(e["targets"]), "plan": None}) == e["hash"]
    verdict = audit.verify()
    assert verdict.ok and verdict.entries == 3 and audit.check_head() is None


def _tampered(tmp_path, sql: str, *, drop_triggers: bool = True) -> Audit:
    audit = Audit(tmp_path / "audit.db", actor=OPS)
    for i in range(5):
        audit.record("drain", [f"n{i}"], f"reason {i}", None, "done")
    db = raw(tmp_path / "audit.db")
    if drop_triggers:
        for name in ("entries_no_update", "entries_no_delete", "head_no_delete", "head_forward"):
            db.execute(f"DROP TRIGGER {name}")
    db.executescript(sql)
    db.close()
    return Audit(tmp_path / "audit.db", readonly=True)


@pytest.mark.parametrize(("sql", "first_bad", "problem"), [
    pytest.param("UPDATE entries SET reason = 'nothing to see' WHERE id = 3", 3,
                 "entry 3 was changed after it was written", id="edited-entry"),
    pytest.param("UPDATE entries SET user = 'root' WHERE id = 1", 1,
                 "entry 1 was changed after it was written", id="edited-user"),
    pytest.param("DELETE FROM entries WHERE id = 2", 2, "entry 2 is missing", id="deleted-entry"),
    pytest.param("DELETE FROM entries WHERE id >= 4", 4, "the log ends at entry 3 but the head "
                 "says 5 entries were written", id="truncated-tail"),
    pytest.param("DELETE FROM entries", 1, "the log ends at entry 0 but the head says 5",
                 id="emptied"),
    pytest.param("DELETE FROM entries WHERE id = 2; UPDATE entries SET id = id - 1 WHERE id > 2;"
                 " UPDATE head SET last_id = 4", 2, "entry 2 does not follow entry 1",
                 id="deleted-and-renumbered"),
])
def test_tampering_is_found_and_named(tmp_path, sql, first_bad, problem):
    audit = _tampered(tmp_path, sql)
    verdict = audit.verify()
    assert not verdict.ok and verdict.first_bad == first_bad
    assert problem in (verdict.problem or "")


def test_an_emptied_log_is_not_shown_as_empty(tmp_path):
    audit = _tampered(tmp_path, "DELETE FROM entries")
    assert audit.entries() == []
    assert "empty but its head says 5 entries" in (audit.check_head() or "")


def test_writing_after_a_truncation_keeps_the_gap_visible(tmp_path):
    _tampered(tmp_path, "DELETE FROM entries WHERE id >= 4")
    audit = Audit(tmp_path / "audit.db", actor=OPS)
    new = audit.record("cordon", ["n9"], "after the cut")
    assert new == 6  # chained from the head, not from the truncated tail
    verdict = audit.verify()
    assert not verdict.ok and "entry 4-5 is missing" in (verdict.problem or "")


def test_a_log_from_before_the_chain_is_adopted(tmp_path):
    db = raw(tmp_path / "audit.db")
    db.executescript("""
        CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL,
            user TEXT NOT NULL, action TEXT NOT NULL, targets TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '', plan TEXT, outcome TEXT NOT NULL DEFAULT '');
        CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
        INSERT INTO entries (ts, user, action, targets) VALUES (1.5, 'ops', 'drain', '["n1"]');
        INSERT INTO entries (ts, user, action, targets) VALUES (2.5, 'ops', 'resume', '["n1"]');
    """)
    db.close()
    audit = Audit(tmp_path / "audit.db", actor=OPS)
    audit.record("cordon", ["n2"], "fan")
    assert [e["action"] for e in audit.entries()] == ["drain", "resume", "cordon"]
    assert audit.verify().ok and audit.verify().entries == 3


def test_export_json_lines(tmp_path):
    audit = Audit(tmp_path / "audit.db", actor=OPS)
    audit.record("drain", ["n1"], "fan", PLAN, "started")
    audit.record("drain", ["n1"], "fan", PLAN, "done: 4 done")
    out = io.StringIO()
    assert audit.export_jsonl(out) == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        entry = json.loads(line)
        assert {"ts", "user", "action", "targets", "reason", "outcome", "hash",
                "prev_hash"} <= set(entry)
        assert isinstance(entry["ts"], float) and entry["targets"] == ["n1"]
    assert json.loads(lines[1])["outcome"] == "done: 4 done"
    assert json.loads(lines[1])["prev_hash"] == json.loads(lines[0])["hash"]


KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n" \
      "-----END OPENSSH PRIVATE KEY-----"


def test_secrets_never_stored(tmp_path):
    audit = Audit(tmp_path / "audit.db", actor=OPS)
    plan = Plan("drain", ("n1",), (), reason=f"token={'t' * 20}")
    audit.record("drain", ["n1"], f"fan; {KEY}", plan, "failed: password=hunter2")
    raw_bytes = (tmp_path / "audit.db").read_bytes() + \
        b"".join(p.read_bytes() for p in tmp_path.glob("audit.db-*"))
    for secret in (b"b3BlbnNzaC1rZXktdjEAAAAA", b"hunter2", b"t" * 20):
        assert secret not in raw_bytes
    [entry] = audit.entries()
    assert entry["reason"].startswith("fan; [redacted private key]")
    assert entry["plan"]["reason"] == "token=[redacted]"
    assert entry["targets"] == ["n1"]


def test_default_paths_beside_the_jobs_db(monkeypatch, tmp_path):
    from console.state import audit, journal

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert audit.default_path() == tmp_path / "fleetops" / "audit.db"
    assert journal.default_path() == tmp_path / "fleetops" / "journal.db"
