"""The audit log: append-only (enforced by the database), JSON lines export, secrets redacted."""

from __future__ import annotations

import getpass
import io
import json
import sqlite3

import pytest

from console.ops.audit import Audit, redact
from console.ops.model import Placement
from console.ops.plan import Plan, Step

PLAN = Plan("move", ("j-1",), (
    Step("move", "PPU runs cuda-compatible", job="j-1", source=(Placement("a", (0,)),),
         target=(Placement("b", (1,)),), target_pool="domestic"),
), reason="rebalance")


def test_record_and_entries(tmp_path):
    audit = Audit(tmp_path / "audit.db")
    first = audit.record("move", ["j-1"], "rebalance", PLAN, "started", user="ops")
    audit.record("move", ["j-1"], "rebalance", {"id": 3}, "done: 1 done")
    entries = audit.entries()
    assert [e["id"] for e in entries] == [first, first + 1]
    e = entries[0]
    assert {k: e[k] for k in ("user", "action", "targets", "reason", "outcome")} == {
        "user": "ops", "action": "move", "targets": ["j-1"], "reason": "rebalance",
        "outcome": "started"}
    assert e["plan"]["steps"][0]["target"] == [{"node": "b", "devices": [1]}]
    assert entries[1]["user"] == getpass.getuser()  # default: the OS user
    assert entries[0]["ts"] <= entries[1]["ts"]
    assert [x["outcome"] for x in audit.entries(limit=1)] == ["done: 1 done"]
    assert audit.entries(since=entries[1]["ts"] + 1) == []
    assert Audit(tmp_path / "audit.db").entries() == entries  # reopened: still there


def test_append_only_enforced_by_the_database(tmp_path):
    Audit(tmp_path / "audit.db").record("drain", ["n1"], "fan", None, "done")
    db = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE entries SET outcome = 'nothing happened'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM entries")
    assert db.execute("SELECT outcome FROM entries").fetchall() == [("done",)]


def test_export_json_lines(tmp_path):
    audit = Audit(tmp_path / "audit.db")
    audit.record("drain", ["n1"], "fan", PLAN, "started", user="ops")
    audit.record("drain", ["n1"], "fan", PLAN, "done: 4 done", user="ops")
    out = io.StringIO()
    assert audit.export_jsonl(out) == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        entry = json.loads(line)
        assert {"ts", "user", "action", "targets", "reason", "outcome"} <= set(entry)
        assert isinstance(entry["ts"], float) and entry["targets"] == ["n1"]
    assert json.loads(lines[1])["outcome"] == "done: 4 done"


KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n" \
      "-----END OPENSSH PRIVATE KEY-----"


@pytest.mark.parametrize(("text", "leak", "kept"), [
    (f"pasted by mistake {KEY} oops", "b3BlbnNzaC1rZXktdjEAAAAA", "oops"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA (cut)", "MIIEpAIBAAKCAQEA", ""),
    ("bmc password=hunter2, retry", "hunter2", "retry"),
    ("use token: abc.def.ghi now", "abc.def.ghi", "now"),
    ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi", "Authorization"),
    ("API_KEY=sk-123456 set", "sk-123456", "set"),
    ("pushed with ghp_0123456789abcdefghijABCDEFGHIJ", "ghp_0123456789", "pushed"),
    ("key at /home/ops/.ssh/id_ed25519 failed", ".ssh/id_ed25519", "failed"),
    ("ssh -i ~/.ssh/fleet node1", "fleet", "node1"),
])
def test_redact(text, leak, kept):
    masked = redact(text)
    assert leak not in masked and "redacted" in masked and kept in masked


def test_redact_leaves_operator_text_alone():
    text = "drain hz-h100-03: Xid 79 twice, ticket OPS-1234, password rotation tomorrow"
    assert redact(text) == text


def test_secrets_never_stored(tmp_path):
    audit = Audit(tmp_path / "audit.db")
    plan = Plan("drain", ("n1",), (), reason=f"token={'t' * 20}")
    audit.record("drain", ["n1"], f"fan; {KEY}", plan, "failed: password=hunter2")
    raw = (tmp_path / "audit.db").read_bytes() + \
        b"".join(p.read_bytes() for p in tmp_path.glob("audit.db-*"))
    for secret in (b"b3BlbnNzaC1rZXktdjEAAAAA", b"hunter2", b"t" * 20):
        assert secret not in raw
    [entry] = audit.entries()
    assert entry["reason"].startswith("fan; [redacted private key]")
    assert entry["plan"]["reason"] == "token=[redacted]"
    assert entry["targets"] == ["n1"]


def test_default_paths_beside_the_jobs_db(monkeypatch, tmp_path):
    from console.ops import audit, journal

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert audit.default_path() == tmp_path / "fleetops" / "audit.db"
    assert journal.default_path() == tmp_path / "fleetops" / "journal.db"
