"""One runner per plan, with real processes: resume and rollback of one plan at the same
moment, two resumes at once, a holder killed mid-plan, a holder on another host that stopped
renewing. The crash driver (ops_crash_driver.py) runs each side and can pause inside a step,
holding the lease, until the test lets it go on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_journal import DRIVER, REPO, assert_placed_once, drv

from console.engines.embedded import EmbeddedEngine
from console.state.journal import Journal
from console.state.lease import LEASE_TTL_S, Heartbeat, LeaseHeld, Owner


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLEETOPS_CRASH", "FLEETOPS_PAUSE"))}
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), out.get("PYTHONPATH")]))
    return {**out, **extra}


def start(root: Path, *flags: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(DRIVER), str(root), "drain", *flags],
                            env=env(**extra), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run(root: Path, *flags: str, **extra: str) -> tuple[int, str]:
    p = start(root, *flags, **extra)
    out, _ = p.communicate(timeout=60)
    return p.returncode, out


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.fixture
def partial(tmp_path) -> int:
    """A drain killed inside its third step: open, resumable, its lease lapsed with it."""
    code, out = run(tmp_path, FLEETOPS_CRASH_AT="2:before")
    assert code == -signal.SIGKILL, out
    [pid] = Journal(tmp_path / "journal.db").unfinished()
    return pid


def paused(root: Path, flag: str, gate: Path) -> subprocess.Popen:
    """`flag` (--resume / --rollback) running, paused inside a step with the lease held."""
    at = "3:before" if flag == "--resume" else "1:before:undo"
    p = start(root, flag, FLEETOPS_PAUSE_AT=at, FLEETOPS_PAUSE_FILE=str(gate))
    wait_for(Path(str(gate) + ".reached"), p)
    return p


@pytest.mark.parametrize("second", ["--rollback", "--resume"])
def test_a_plan_someone_runs_is_refused_to_others_with_who_and_since(tmp_path, partial, second):
    gate = tmp_path / "go"
    first = paused(tmp_path, "--resume", gate)
    code, out = run(tmp_path, second)
    assert code == 2, out
    assert f"plan {partial} is held by ops on" in out and f"(pid {first.pid})" in out
    assert "since" in out
    refused = [e for e in drv.Audit(tmp_path / "audit.db").entries()
               if e["outcome"].startswith("refused: ")]
    assert len(refused) == 1 and f"plan {partial} is held by ops" in refused[0]["outcome"]
    gate.touch()
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out
    engine = EmbeddedEngine(tmp_path / "engine.db")
    assert engine.admin_states() == {"nv-a": "drained"}
    assert_placed_once(engine)
    # Now nobody holds it: the second may go, and says what it finds.
    code, out = run(tmp_path, second, "--plan", str(partial))
    assert code == 0, out
    jp = Journal(tmp_path / "journal.db").load(partial)
    if second == "--resume":
        assert "already done" in out and jp.status == "done"
    else:
        assert jp.status == "rolled-back" and engine.admin_states().get("nv-a") == "active"


def test_a_rollback_in_progress_refuses_a_resume(tmp_path, partial):
    gate = tmp_path / "go"
    first = paused(tmp_path, "--rollback", gate)
    code, out = run(tmp_path, "--resume")
    assert code == 2 and "is held by ops" in out, out
    gate.touch()
    assert first.wait(timeout=60) == 0
    engine = EmbeddedEngine(tmp_path / "engine.db")
    fresh = EmbeddedEngine(tmp_path / "fresh" / "engine.db")
    fresh.submit_many(drv.FIXTURE)
    assert drv.snapshot(engine) == drv.snapshot(fresh)  # as before the drain
    assert Journal(tmp_path / "journal.db").load(partial).status == "rolled-back"
    assert_placed_once(engine)


def test_resume_and_rollback_started_together_agree_with_the_engine(tmp_path, partial):
    """Whichever order the two end up in, the journal says what the engine has."""
    procs = [start(tmp_path, "--resume", "--plan", str(partial)),
             start(tmp_path, "--rollback", "--plan", str(partial))]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode in (0, 2) for p in procs), outs
    engine = EmbeddedEngine(tmp_path / "engine.db")
    assert_placed_once(engine)
    status = Journal(tmp_path / "journal.db").load(partial).status
    admin = engine.admin_states().get("nv-a", "active")
    assert (status, admin) in (("done", "drained"), ("rolled-back", "active"))
    held = [o for p, o in zip(procs, outs, strict=True) if p.returncode == 2]
    assert all("is held by" in o for o in held)


def test_a_holder_killed_mid_plan_frees_it_at_once(tmp_path, partial):
    gate = tmp_path / "go"
    first = paused(tmp_path, "--resume", gate)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    code, out = run(tmp_path, "--resume")  # its pid is gone from this host: no wait
    assert code == 0, out
    assert Journal(tmp_path / "journal.db").load(partial).status == "done"
    assert_placed_once(EmbeddedEngine(tmp_path / "engine.db"))


def test_a_holder_elsewhere_holds_until_it_stops_renewing(tmp_path, partial):
    journal = Journal(tmp_path / "journal.db")
    far = Owner("bob", "console-far", 4242, "123")
    journal.acquire(partial, far)
    mine = Owner("ops", "here", os.getpid(), "")
    with pytest.raises(LeaseHeld, match=r"held by bob on console-far \(pid 4242\)"):
        journal.acquire(partial, mine)
    # bob's console stopped renewing LEASE_TTL_S ago (a host that went away)
    with journal._tx() as db:
        db.execute("UPDATE leases SET renewed = renewed - ? WHERE plan_id = ?",
                   (LEASE_TTL_S + 1, partial))
    journal.acquire(partial, mine)
    assert journal.lease(partial).user == "ops"
    assert not journal.renew(partial, far)  # bob's heartbeat learns it lost the lease


def test_the_heartbeat_renews_and_says_when_the_lease_is_lost():
    calls: list[int] = []
    enough = threading.Event()

    def renew() -> bool:
        calls.append(1)
        if len(calls) >= 3:
            enough.set()
            return False
        return True

    with Heartbeat(renew, every_s=0.01) as beat:
        assert enough.wait(10)
        assert beat.lost.wait(10)
    assert len(calls) == 3
