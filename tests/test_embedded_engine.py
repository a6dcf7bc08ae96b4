"""The embedded (SQLite) engine: schema, idempotent calls, double-booking refused by the
database itself, derived `drained`, and the demo's seeded job mix."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter

import pytest

from agents import catalog
from console.engines.base import EngineError, EngineRefused
from console.engines.embedded import (
    OWNERS,
    SCHEMA_VERSION,
    EmbeddedEngine,
    pid_for,
    seed_demo,
    workload_for,
)
from console.model.jobs import Job, Placement, RuntimeMatrix


def job(jid: str, *placement: tuple[str, tuple[int, ...]], dpn: int = 2, **kw) -> Job:
    return Job(jid, f"name-{jid}", "alice", kw.pop("pool", "nvidia"), max(1, len(placement)),
               dpn, 40_000, "cuda", placement=tuple(Placement(n, d) for n, d in placement), **kw)


@pytest.fixture
def engine(tmp_path):
    e = EmbeddedEngine(tmp_path / "jobs.db", user="ops")
    yield e
    e.close()


def test_schema_wal_and_version(tmp_path, engine):
    db = sqlite3.connect(tmp_path / "jobs.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_version", "jobs", "placements", "node_admin"} <= tables
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    EmbeddedEngine(tmp_path / "jobs.db").close()  # reopening keeps one version row
    assert db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    with pytest.raises(EngineError, match="schema version 99"):
        EmbeddedEngine(tmp_path / "jobs.db")


def test_submit_place_and_read_back(engine):
    engine.submit(job("j-1", ("n1", (1, 0)), ("n2", (0, 1))))
    engine.submit(job("j-2", allowed_regions=("cn-east",)))
    j1, j2 = engine.job("j-1"), engine.job("j-2")
    assert j1.state == "running" and j1.placement == (
        Placement("n1", (0, 1)), Placement("n2", (0, 1)))  # rank order kept, devices sorted
    assert j2.state == "pending" and j2.placement == () and j2.allowed_regions == ("cn-east",)
    assert [j.id for j in engine.jobs()] == ["j-1", "j-2"]
    with pytest.raises(EngineError, match="exists"):
        engine.submit(job("j-1"))
    with pytest.raises(EngineError, match="no job 'nope'"):
        engine.job("nope")
    engine.place("j-2", (Placement("n3", (0, 1)),))
    engine.place("j-2", (Placement("n3", (1, 0)),))  # idempotent
    assert engine.job("j-2").state == "running"
    with pytest.raises(EngineError, match="use move"):
        engine.place("j-2", (Placement("n4", (0, 1)),))


def test_double_booking_refused_and_enforced_by_the_database(tmp_path, engine):
    engine.submit(job("j-1", ("n1", (0, 1))))
    with pytest.raises(EngineError) as err:
        engine.submit(job("j-2", ("n1", (1, 2))))
    assert str(err.value) == "submit j-2: device 1 of n1 is held by j-1"
    assert [j.id for j in engine.jobs()] == ["j-1"]  # the failed submit left nothing behind
    db = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)  # no open transaction
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO placements VALUES ('j-1', 'n1', 0, 0)")
    with pytest.raises(EngineError, match="needs 2 distinct device"):
        engine.submit(job("j-3", ("n2", (0, 0))))
    with pytest.raises(EngineError, match="needs 1 distinct node"):
        engine.move("j-1", (Placement("n2", (0, 1)), Placement("n3", (0, 1))), "nvidia")


def test_move_is_atomic_and_idempotent(engine):
    engine.submit(job("j-1", ("n1", (0, 1))))
    engine.submit(job("j-2", ("n2", (0, 1))))
    engine.move("j-1", (Placement("n1", (1, 2)),), "nvidia")  # overlaps its own devices
    assert engine.job("j-1").placement == (Placement("n1", (1, 2)),)
    engine.move("j-1", (Placement("p1", (0, 1)),), "domestic")
    engine.move("j-1", (Placement("p1", (1, 0)),), "domestic")  # already there: no-op
    assert engine.job("j-1").placement == (Placement("p1", (0, 1)),)
    assert engine.job("j-1").pool == "domestic"
    with pytest.raises(EngineError, match="device 1 of n2 is held by j-2"):
        engine.move("j-1", (Placement("n2", (1, 2)),), "nvidia")
    assert engine.job("j-1").placement == (Placement("p1", (0, 1)),)  # untouched
    assert engine.job("j-1").pool == "domestic"
    with pytest.raises(EngineError, match="unknown pool"):
        engine.move("j-1", (Placement("x", (0, 1)),), "tpu")


def test_requeue_complete(engine):
    engine.submit(job("j-1", ("n1", (0, 1))))
    engine.requeue("j-1")
    engine.requeue("j-1")
    j = engine.job("j-1")
    assert (j.state, j.placement) == ("requeued", ())
    engine.move("j-1", (Placement("n1", (0, 1)),), "nvidia")  # a requeued job can be placed
    engine.complete("j-1")
    engine.complete("j-1")
    assert engine.jobs() == [] and engine.job("j-1").state == "completed"
    assert engine.jobs_on("n1") == []
    with pytest.raises(EngineError, match="is completed"):
        engine.move("j-1", (Placement("n1", (0, 1)),), "nvidia")


def test_admin_states_drained_derived_and_idempotent(tmp_path, engine):
    engine.submit(job("j-1", ("n1", (0, 1))))
    assert engine.admin_states() == {}
    engine.drain("n1", "fan")
    engine.drain("n1", "fan")
    assert engine.admin_states() == {"n1": "draining"}
    engine.move("j-1", (Placement("n2", (0, 1)),), "nvidia")
    assert engine.admin_states() == {"n1": "drained"}
    engine.cordon("n1", "x")  # a draining node is closed already
    engine.uncordon("n1")  # uncordon only undoes a cordon
    assert engine.admin_states() == {"n1": "drained"}
    with pytest.raises(EngineRefused, match=r"n1 is draining .*takes no new jobs"):
        engine.move("j-1", (Placement("n1", (0, 1)),), "nvidia")  # a closed node takes none
    assert engine.job("j-1").placement == (Placement("n2", (0, 1)),)  # nothing changed
    assert engine.admin_states() == {"n1": "drained"}
    engine.resume("n1")
    engine.resume("n1")
    assert engine.admin_states() == {"n1": "active"}
    engine.cordon("n2", "bad cable")
    engine.cordon("n2", "bad cable")
    assert engine.admin_states()["n2"] == "cordoned"
    db = sqlite3.connect(tmp_path / "jobs.db")
    assert db.execute("SELECT reason, changed_by FROM node_admin WHERE node = 'n2'").fetchone() \
        == ("bad cable", "ops")
    engine.uncordon("n2")
    engine.uncordon("n2")
    assert engine.admin_states()["n2"] == "active"


def test_usable_from_a_worker_thread(engine):
    engine.submit(job("j-1", ("n1", (0, 1))))
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(engine.job("j-1").state))
    t.start()
    t.join()
    assert out == ["running"]


# -- demo ---------------------------------------------------------------------------------------

FLEET = [(f"{dc}-{m.lower()}-{k}", dc, catalog.spec(m).pool, m, 8)
         for dc, models in (("hz", ("H100", "H20", "A100", "PPU")),
                            ("xn", ("910B", "PPU", "MLU590", "DCU", "A100")))
         for m in models for k in range(3)]


def test_seed_demo_deterministic_believable_mix(tmp_path):
    a, b, c = (EmbeddedEngine(tmp_path / f"{n}.db") for n in "abc")
    jobs = seed_demo(a, FLEET, seed=7)
    assert seed_demo(b, FLEET, seed=7) == jobs
    assert seed_demo(c, FLEET, seed=8) != jobs
    assert seed_demo(a, FLEET, seed=7) == []  # not twice
    assert [j.id for j in jobs] == [f"j-{1001 + i}" for i in range(len(jobs))]
    assert a.jobs() == sorted(jobs, key=lambda j: j.id)

    total = sum(n[4] for n in FLEET)
    used = sum(j.nodes * j.devices_per_node for j in jobs)
    assert 0.60 <= used / total <= 0.75
    model = {n[0]: n[3] for n in FLEET}
    dc = {n[0]: n[1] for n in FLEET}
    matrix = RuntimeMatrix.default()
    for j in jobs:
        models = {model[p.node] for p in j.placement}
        assert len(models) == 1 and len({dc[p.node] for p in j.placement}) == 1
        m = models.pop()
        assert matrix.compatible(j.runtime, m), (j.id, j.runtime, m)
        assert j.pool == catalog.spec(m).pool
        assert 0 < j.mem_per_device_mib <= catalog.spec(m).mem_mib
        assert j.owner in OWNERS
    kinds = Counter("train" if j.devices_per_node == 8 else "infer" for j in jobs)
    assert kinds["train"] >= 3 and kinds["infer"] >= 10
    assert any(j.nodes == 2 for j in jobs)
    assert {j.runtime for j in jobs} >= {"cuda", "cuda-compatible", "cann", "portable"}
    # some Nvidia jobs need more memory per device than a 910B has: those moves get refused
    big = [j for j in jobs if j.pool == "nvidia"
           and j.mem_per_device_mib > catalog.spec("910B").mem_mib]
    assert big and len(big) < len([j for j in jobs if j.pool == "nvidia"]) / 2
    # every model keeps room (some nodes wholly free), so drains and moves have somewhere to go
    for m in {n[3] for n in FLEET}:
        busy = sum(len(d) for n in FLEET if n[3] == m for _, d in a.jobs_on(n[0]))
        assert busy <= 0.75 * sum(n[4] for n in FLEET if n[3] == m), m
    assert any(not a.jobs_on(n[0]) for n in FLEET)


def test_workload_for_shows_placed_jobs_as_processes(tmp_path):
    engine = EmbeddedEngine(tmp_path / "jobs.db")
    engine.submit(job("j-1", ("n1", (0, 1))))
    engine.submit(job("j-2", ("n1", (3,)), dpn=1))
    engine.submit(job("j-3", ("n2", (0, 1))))
    work = workload_for(engine, "n1")
    assert sorted(work) == [0, 1, 3]
    [(pid, name, mem, util)] = work[0]
    assert pid == pid_for("j-1", "n1", 0) and pid != work[1][0][0]
    assert name == "j-1:name-j-1" and mem == 40_000 and 0 < util <= 100
    assert workload_for(engine, "n1") == work  # stable
    assert workload_for(engine, "idle") == {}


def test_locked_database_is_an_engine_error(tmp_path):
    engine = EmbeddedEngine(tmp_path / "jobs.db", timeout_s=0.05)
    other = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another console mid-transaction
    with pytest.raises(EngineError, match="database is locked") as err:
        engine.drain("n1", "fan")
    assert "\n" not in str(err.value)
    other.execute("ROLLBACK")
    engine.drain("n1", "fan")
    assert engine.admin_states() == {"n1": "drained"}


@pytest.mark.parametrize("state", ["cordon", "drain"])
def test_a_closed_node_takes_no_new_job_from_any_call(engine, state):
    """The check is the engine's, in the transaction that writes the placement: no front end
    gets around it."""
    engine.submit(job("j-1", ("n1", (0, 1))))
    engine.submit(job("j-2"))
    getattr(engine, state)("n2", "RMA, do not use")
    with pytest.raises(EngineRefused, match="n2 is"):
        engine.move("j-1", (Placement("n2", (0, 1)),), "nvidia")
    with pytest.raises(EngineRefused, match="n2 is"):
        engine.place("j-2", (Placement("n2", (4, 5)),))
    with pytest.raises(EngineRefused, match="n2 is"):
        engine.submit(job("j-3", ("n2", (6, 7))))
    assert engine.holders("n2") == {}
    # A job already on a closed node may still be re-placed within it (a part that stays).
    getattr(engine, state)("n1", "fan")
    engine.move("j-1", (Placement("n1", (2, 3)),), "nvidia")
    assert engine.holders("n1") == {2: "j-1", 3: "j-1"}
