"""The Slurm engine against a real Slurm 22.05 (tests/slurm_cluster.py), locally and over SSH.

gpu01-02 (gpu:h100:8) form partition gpu = pool nvidia, npu01-02 (gpu:910b:8) partition
npu = pool domestic. Each test starts from no jobs and every node idle (the `slurm` fixture).
The tests at the top need no Slurm: runners, quoting and error handling with a fake runner.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import slurm_cluster as cluster_module
import sshd as sshd_module
from slurm_cluster import SlurmCluster
from sshd import SshdFleet

from console.engines.base import EngineError
from console.engines.slurm import LocalRunner, SlurmEngine, SshRunner
from console.model.jobs import Placement

slurm_cluster = cluster_module.slurm_cluster  # bound at module level so pytest finds them
slurm = cluster_module.slurm
sshd_fleet = sshd_module.sshd_fleet

POOLS = {"nvidia": "gpu", "domestic": "npu"}
SLEEP = "#!/bin/sh\nsleep 120\n"


# --- without Slurm --------------------------------------------------------------------------


class FakeRunner:
    """Answers from a table of argv prefix -> (rc, stdout, stderr); records every call."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def describe(self) -> str:
        return "local"

    def run(
        self, argv: Sequence[str], timeout: float, input: str | None = None
    ) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        for prefix, answer in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                return answer
        return 0, "", ""


IDLE = '{"errors": [], "nodes": [{"name": "gpu01", "state": "idle", "state_flags": [], "reason": "", "partitions": ["gpu"]}]}'  # noqa: E501


def test_ssh_runner_quotes_every_argument_and_ends_options() -> None:
    runner = SshRunner(
        "ctl.example",
        port=2222,
        user="ops",
        identity_file="/k/id",
        known_hosts="/k/known hosts",
        env={"SLURM_CONF": "/etc/slurm/a b.conf"},
    )
    reason = "Reason=x; touch /tmp/p $(id) `id` 'q' \"d\" --help -x"
    argv = runner.command(["scontrol", "update", "NodeName=gpu01", reason])
    assert argv[0] == "ssh"
    assert argv[argv.index("--") + 1] == "ctl.example"  # `--` right before the host
    assert argv.index("--") == len(argv) - 3
    for option in (
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        'UserKnownHostsFile="/k/known hosts"',
    ):
        assert option in argv
    # The remote shell splits the command back into exactly our arguments.
    assert shlex.split(argv[-1]) == [
        "env", "SLURM_CONF=/etc/slurm/a b.conf", "scontrol", "update", "NodeName=gpu01", reason,
    ]  # fmt: skip


@pytest.mark.parametrize("host", ["-oProxyCommand=touch /tmp/x", "--", "a;b", "a b", "$(id)", ""])
def test_ssh_runner_refuses_hostile_hosts(host: str) -> None:
    with pytest.raises(EngineError, match="invalid ssh host"):
        SshRunner(host)


@pytest.mark.parametrize("user", ["-l", "root;id", "a b", "`id`"])
def test_ssh_runner_refuses_hostile_users(user: str) -> None:
    with pytest.raises(EngineError, match="invalid ssh user"):
        SshRunner("ctl", user=user)


def test_ssh_runner_refuses_odd_env_names() -> None:
    with pytest.raises(EngineError, match="environment variable"):
        SshRunner("ctl", env={"A;B": "x"})


def test_local_runner_reports_timeout_and_missing_program() -> None:
    runner = LocalRunner()
    assert runner.run(["sleep", "5"], timeout=0.2)[0] == 124
    assert runner.run(["/nonexistent/scontrol"], timeout=5)[0] == 127
    assert runner.run(["cat"], timeout=5, input="a; $(b)")[1] == "a; $(b)"


def test_partitions_are_validated() -> None:
    with pytest.raises(EngineError, match="invalid partition"):
        SlurmEngine({"nvidia": "gpu;id"}, FakeRunner({}))
    with pytest.raises(EngineError, match="invalid partition"):
        SlurmEngine({"nvidia": "-p"}, FakeRunner({}))
    with pytest.raises(EngineError, match="no partitions"):
        SlurmEngine({}, FakeRunner({}))
    with pytest.raises(EngineError, match="same partition"):
        SlurmEngine({"nvidia": "gpu", "domestic": "gpu"}, FakeRunner({}))


def test_failure_is_one_line_naming_command_and_node() -> None:
    runner = FakeRunner(
        {
            ("sinfo",): (0, IDLE, ""),
            ("scontrol", "update"): (1, "", "slurm_update error: Invalid node state\nmore\n"),
            ("scontrol", "ping"): (0, "Slurmctld(primary) at ctl is UP\n", ""),
        }
    )
    engine = SlurmEngine(POOLS, runner)
    with pytest.raises(EngineError) as info:
        engine.drain("gpu01", "xid 79")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("slurm drain gpu01: scontrol update failed")
    assert "Invalid node state" in text and "Unable to contact" not in text


def test_silent_json_failure_is_explained_by_a_ping() -> None:
    down = '{"errors": [{"error": "Unspecified error", "errno": -1}], "nodes": []}'
    runner = FakeRunner(
        {
            ("sinfo",): (0, down, ""),
            ("scontrol", "ping"): (1, "Slurmctld(primary) at ctl is DOWN\n*****\n", ""),
        }
    )
    with pytest.raises(EngineError, match=r"sinfo --json failed.*Unable to contact slurm"):
        SlurmEngine(POOLS, runner).admin_states()


def test_timeout_is_an_engine_error() -> None:
    runner = FakeRunner({("squeue",): (124, "", "timed out after 30 s")})
    with pytest.raises(
        EngineError, match=r"slurm jobs: squeue --json failed: timed out after 30 s$"
    ):
        SlurmEngine(POOLS, runner).jobs()


def test_unknown_node_and_unknown_pool() -> None:
    engine = SlurmEngine(POOLS, FakeRunner({("sinfo",): (0, IDLE, "")}))
    with pytest.raises(EngineError, match="no node 'gpu09'"):
        engine.drain("gpu09", "x")
    with pytest.raises(EngineError, match="unknown pool 'amd'"):
        engine.move("12", (), "amd")


# --- against a real Slurm -------------------------------------------------------------------


@pytest.fixture
def engine(slurm: SlurmCluster) -> SlurmEngine:
    return SlurmEngine(POOLS, LocalRunner({"SLURM_CONF": str(slurm.conf)}), move_timeout=20)


def running(slurm: SlurmCluster, *job_ids: str, timeout: float = 20) -> None:
    slurm.wait_for(
        f"jobs {job_ids} running",
        lambda: all(slurm.job_state(j) == "RUNNING" for j in job_ids),
        timeout,
    )


def admin(engine: SlurmEngine, node: str) -> str:
    return engine.admin_states()[node]


def reason_of(slurm: SlurmCluster, node: str) -> str:
    return slurm.sinfo()[node]["reason"]


class StopControllerBefore:
    """A runner that stops slurmctld just before the first command matching `when`: the
    controller going away halfway through an operation."""

    def __init__(
        self, slurm: SlurmCluster, inner: LocalRunner, when: Callable[[list[str]], bool]
    ) -> None:
        self.slurm, self.inner, self.when, self.fired = slurm, inner, when, False

    def describe(self) -> str:
        return "local"

    def run(
        self, argv: Sequence[str], timeout: float, input: str | None = None
    ) -> tuple[int, str, str]:
        if not self.fired and self.when(list(argv)):
            self.fired = True
            self.slurm.stop_controller()
        return self.inner.run(argv, timeout, input)


@pytest.mark.slurm
def test_jobs_with_placement(slurm: SlurmCluster, engine: SlurmEngine) -> None:
    a = slurm.sbatch(SLEEP, "gpu", "gpu:4", extra=("--comment=runtime=cuda-compatible",))
    b = slurm.sbatch(
        SLEEP, "npu", "gpu:910b:2", nodes=2, extra=("--comment=mem_per_device_mib=60000",)
    )
    held = slurm.sbatch(SLEEP, "gpu", "gpu:1", extra=("--hold",))
    running(slurm, a, b)
    jobs = {j.id: j for j in engine.jobs()}
    assert set(jobs) == {a, b, held}
    ja, jb = jobs[a], jobs[b]
    assert (ja.pool, ja.state, ja.nodes, ja.devices_per_node, ja.runtime) == (
        "nvidia", "running", 1, 4, "cuda-compatible",
    )  # fmt: skip
    assert ja.owner == "root" and ja.name == "fleetops-test"
    assert ja.placement == (Placement(ja.placement[0].node, (0, 1, 2, 3)),)
    assert ja.placement[0].node in ("gpu01", "gpu02")
    assert (jb.pool, jb.nodes, jb.runtime, jb.mem_per_device_mib) == ("domestic", 2, "cann", 60000)
    assert sorted(p.node for p in jb.placement) == ["npu01", "npu02"]
    assert all(p.devices == (0, 1) for p in jb.placement)
    assert (jobs[held].state, jobs[held].placement) == ("pending", ())
    assert engine.job(a) == ja
    # Only the configured pools: a console that knows only nvidia does not see npu jobs.
    only_gpu = SlurmEngine({"nvidia": "gpu"}, engine.runner)
    assert {j.id for j in only_gpu.jobs()} == {a, held}
    with pytest.raises(EngineError, match="partition 'npu' is not one of"):
        only_gpu.job(b)
    with pytest.raises(EngineError, match="no job 999999"):
        engine.job("999999")


@pytest.mark.slurm
def test_drain_running_job_until_it_ends_then_resume(
    slurm: SlurmCluster, engine: SlurmEngine
) -> None:
    job = slurm.sbatch("#!/bin/sh\nsleep 3\n", "gpu", "gpu:2")
    running(slurm, job)
    node = engine.job(job).placement[0].node
    engine.drain(node, "xid 79 gpu3 OPS-1")
    assert admin(engine, node) == "draining"
    engine.drain(node, "a second reason")  # idempotent: no-op, the first reason stays
    assert reason_of(slurm, node) == "xid 79 gpu3 OPS-1"
    assert engine.job(job).state == "running"  # a drain does not touch running jobs
    slurm.wait_for("drained", lambda: admin(engine, node) == "drained", timeout=20)
    engine.resume(node)
    assert admin(engine, node) == "active"
    engine.resume(node)  # idempotent
    engine.resume("gpu02")  # never drained: no-op
    assert set(engine.admin_states().values()) == {"active"}


@pytest.mark.slurm
def test_drain_then_move_the_job_off(slurm: SlurmCluster, engine: SlurmEngine) -> None:
    job = slurm.sbatch(SLEEP, "gpu", "gpu:4")
    running(slurm, job)
    node = engine.job(job).placement[0].node
    engine.drain(node, "move everything off")
    assert admin(engine, node) == "draining"
    target = (Placement("npu01", (0, 1, 2, 3)),)
    engine.move(job, target, "domestic")  # untyped gres: requeue + update Partition
    slurm.wait_for("drained", lambda: admin(engine, node) == "drained", timeout=20)
    running(slurm, job)
    moved = engine.job(job)
    assert (moved.id, moved.pool, moved.state) == (job, "domestic", "running")
    assert moved.placement == target
    engine.move(job, target, "domestic")  # already there: no-op
    assert engine.job(job).state == "running"
    assert slurm.squeue()[0]["admin_comment"] == ""  # the move marker is gone
    # Back to nvidia anywhere: the pin to npu01 must go, or the job could never start.
    engine.move(job, (), "nvidia")
    running(slurm, job)
    assert engine.job(job).pool == "nvidia"
    assert engine.job(job).placement[0].node == ("gpu02" if node == "gpu01" else "gpu01")


@pytest.mark.slurm
def test_cordon_and_uncordon(slurm: SlurmCluster, engine: SlurmEngine) -> None:
    engine.cordon("gpu01", "rack 4 maintenance")
    assert admin(engine, "gpu01") == "cordoned"
    assert reason_of(slurm, "gpu01") == "cordon: rack 4 maintenance"
    engine.cordon("gpu01", "again")  # no-op
    assert reason_of(slurm, "gpu01") == "cordon: rack 4 maintenance"
    # Nothing new lands on a cordoned node.
    job = slurm.sbatch(SLEEP, "gpu", "gpu:1")
    running(slurm, job)
    assert engine.job(job).placement[0].node == "gpu02"
    engine.uncordon("gpu01")
    assert admin(engine, "gpu01") == "active"
    engine.uncordon("gpu01")  # no-op
    # A drain is stronger than a cordon: cordon leaves it alone, uncordon does not lift it.
    engine.drain("gpu02", "bad gpu")
    engine.cordon("gpu02", "x")
    engine.uncordon("gpu02")
    assert admin(engine, "gpu02") == "draining"
    assert reason_of(slurm, "gpu02") == "bad gpu"
    # A cordoned node can be drained (the reason becomes the drain's).
    engine.cordon("gpu01", "x")
    engine.drain("gpu01", "now drain")
    assert admin(engine, "gpu01") == "drained"


@pytest.mark.slurm
def test_move_typed_gres_resubmits(slurm: SlurmCluster, engine: SlurmEngine) -> None:
    old = slurm.sbatch(SLEEP, "gpu", "gpu:h100:2", extra=("--comment=runtime=portable",))
    running(slurm, old)
    target = (Placement("npu02", (0, 1)),)
    engine.move(old, target, "domestic")
    new = engine.moved[old]
    assert new != old
    running(slurm, new)
    assert slurm.job_state(old) == "CANCELLED"
    job = engine.job(old)  # the old id still finds the job, under its new id
    assert (job.id, job.pool, job.placement, job.runtime) == (new, "domestic", target, "portable")
    sq = {str(j["job_id"]): j for j in slurm.squeue()}
    assert sq[new]["tres_per_node"] == "gres:gpu:910b:2"
    assert sq[new]["comment"] == f"runtime=portable fleetops-moved-from={old}"
    assert [j.id for j in engine.jobs()] == [new]
    # A fresh engine (the console restarted) finds it by the comment; moving again is a no-op.
    fresh = SlurmEngine(POOLS, engine.runner)
    fresh.move(old, target, "domestic")
    assert fresh.moved == {old: new} and [j.id for j in fresh.jobs()] == [new]


@pytest.mark.slurm
def test_requeue(slurm: SlurmCluster, engine: SlurmEngine) -> None:
    job = slurm.sbatch(SLEEP, "npu", "gpu:910b:1")
    running(slurm, job)
    engine.requeue(job)
    j = engine.job(job)
    assert (j.state, j.placement, j.pool) == ("requeued", (), "domestic")
    engine.requeue(job)  # already pending: no-op
    assert engine.job(job).state == "requeued"
    slurm.run("scancel", job)
    slurm.wait_for("cancelled", lambda: slurm.job_state(job) == "CANCELLED")
    with pytest.raises(EngineError, match=f"slurm requeue {job}: the job is cancelled"):
        engine.requeue(job)


# --- hostile values -------------------------------------------------------------------------

HOSTILE_NAMES = [
    "gpu01;touch {p}", "gpu01 && touch {p}", "$(touch {p})", "`touch {p}`", "-x", "--",
    "--help", "-", "gpu01\ntouch {p}", "gpu[01-02]", "gpu01,gpu02", "", "a" * 64, "gpu01 ",
]  # fmt: skip
HOSTILE_IDS = ["1;touch {p}", "$(touch {p})", "`touch {p}`", "-1", "--", "1 2", "", "1\n2", "0x10"]


def pwned() -> Path:
    return Path(f"/tmp/fleetops-pwned-{secrets.token_hex(6)}")


@pytest.mark.slurm
def test_hostile_node_names_and_job_ids_are_refused(engine: SlurmEngine) -> None:
    marker = pwned()
    node_calls: list[Callable[[str], object]] = [
        lambda n: engine.drain(n, "x"),
        lambda n: engine.cordon(n, "x"),
        engine.uncordon,
        engine.resume,
        lambda n: engine.move("1", (Placement(n, (0,)),), "nvidia"),
    ]
    for name in HOSTILE_NAMES:
        for call in node_calls:
            with pytest.raises(EngineError, match="invalid node name"):
                call(name.format(p=marker))
    job_calls: list[Callable[[str], object]] = [
        engine.job,
        engine.requeue,
        lambda j: engine.move(j, (), "nvidia"),
    ]
    for job_id in HOSTILE_IDS:
        for call in job_calls:
            with pytest.raises(EngineError, match="invalid job id"):
                call(job_id.format(p=marker))
    assert not marker.exists()
    assert set(engine.admin_states().values()) == {"active"}


def hostile_reasons(marker: Path) -> list[str]:
    return [
        f"x; touch {marker}",
        f"$(touch {marker}) `touch {marker}` 'q' \"d\" & | > {marker}",
        "State=RESUME NodeName=gpu02",  # another field inside the value
        "--help",
        "-x leading dash",
        "Reason=nested",
    ]


@pytest.mark.slurm
@pytest.mark.parametrize("i", range(6))
def test_hostile_reasons_are_stored_literally(
    slurm: SlurmCluster, engine: SlurmEngine, i: int
) -> None:
    marker = pwned()
    reason = hostile_reasons(marker)[i]
    engine.drain("gpu01", reason)
    assert reason_of(slurm, "gpu01") == reason
    assert admin(engine, "gpu01") == "drained"
    assert admin(engine, "gpu02") == "active"
    assert not marker.exists()


@pytest.mark.slurm
@pytest.mark.parametrize(
    "reason", ["two\nlines", "tab\there", "\x1b]0;title\x07", "x" * 201, "", "   ", "bidi\u202e"]
)
def test_unprintable_reasons_are_refused(engine: SlurmEngine, reason: str) -> None:
    with pytest.raises(EngineError, match=r"slurm drain: .*reason"):
        engine.drain("gpu01", reason)
    assert admin(engine, "gpu01") == "active"


# --- over SSH -------------------------------------------------------------------------------


@pytest.fixture
def ssh_engine(slurm: SlurmCluster, sshd_fleet: SshdFleet) -> Iterator[SlurmEngine]:
    host, port = sshd_fleet.hosts[0]
    runner = SshRunner(
        host,
        port=port,
        user=sshd_fleet.user,
        identity_file=sshd_fleet.client_key,
        known_hosts=sshd_fleet.known_hosts,
        env={"SLURM_CONF": str(slurm.conf)},
        config_file="/dev/null",  # the runner's own ~/.ssh/config is not the test's business
    )
    yield SlurmEngine(POOLS, runner, move_timeout=20)


@pytest.mark.slurm
@pytest.mark.sshd
def test_over_ssh_hostile_reason_stays_literal(
    slurm: SlurmCluster, ssh_engine: SlurmEngine
) -> None:
    marker = pwned()
    job = slurm.sbatch(SLEEP, "gpu", "gpu:2")
    running(slurm, job)
    assert [j.id for j in ssh_engine.jobs()] == [job]
    node = ssh_engine.job(job).placement[0].node
    for reason in hostile_reasons(marker)[:2]:
        ssh_engine.resume(node)
        ssh_engine.drain(node, reason)
        assert reason_of(slurm, node) == reason
    assert ssh_engine.admin_states()[node] == "draining"
    ssh_engine.move(job, (Placement("npu01", (0, 1)),), "domestic")
    running(slurm, job)
    assert ssh_engine.job(job).placement[0].node == "npu01"
    assert not marker.exists()


@pytest.mark.slurm
@pytest.mark.sshd
def test_over_ssh_wrong_host_key_is_an_engine_error(
    slurm: SlurmCluster, sshd_fleet: SshdFleet
) -> None:
    host, port = sshd_fleet.hosts[0]
    runner = SshRunner(
        host, port=port, user=sshd_fleet.user, identity_file=sshd_fleet.client_key,
        known_hosts=sshd_fleet.wrong_known_hosts(), config_file="/dev/null",
    )  # fmt: skip
    with pytest.raises(EngineError, match=f"via ssh .*: ssh to {host} failed: .*Host key"):
        SlurmEngine(POOLS, runner).admin_states()


# --- the controller going away --------------------------------------------------------------


@pytest.mark.slurm
def test_controller_stopped_then_started(slurm: SlurmCluster, engine: SlurmEngine) -> None:
    job = slurm.sbatch(SLEEP, "gpu", "gpu:1")
    running(slurm, job)
    slurm.stop_controller()
    try:
        # A read first (sinfo: drain) and a mutation (requeue says "Unexpected message").
        for call in (lambda: engine.drain("gpu02", "x"), lambda: engine.requeue(job)):
            with pytest.raises(EngineError) as info:
                call()
            assert "Unable to contact slurm controller" in str(info.value)
            assert "\n" not in str(info.value)
    finally:
        slurm.start_controller()
    engine.drain("gpu02", "after the restart")
    assert admin(engine, "gpu02") == "drained"
    assert engine.job(job).state == "running"  # nothing lost


@pytest.mark.slurm
def test_controller_stopped_halfway_through_a_drain_plan(
    slurm: SlurmCluster, engine: SlurmEngine
) -> None:
    # A plan: drain gpu01, drain gpu02. The controller stops after the first step.
    jobs = [slurm.sbatch(SLEEP, "gpu", "gpu:8") for _ in range(2)]
    running(slurm, *jobs)
    plan = [("gpu01", "plan 7"), ("gpu02", "plan 7")]
    local = LocalRunner({"SLURM_CONF": str(slurm.conf)})
    flaky = SlurmEngine(POOLS, StopControllerBefore(slurm, local, lambda a: "NodeName=gpu02" in a))
    done = []
    try:
        with pytest.raises(EngineError, match=r"slurm drain gpu02: .*Unable to contact"):
            for node, reason in plan:
                flaky.drain(node, reason)
                done.append(node)
        assert done == ["gpu01"]
    finally:
        slurm.start_controller()
    # Resumed: the done step is a no-op, the failed one happens; no job was lost.
    for node, reason in plan:
        engine.drain(node, reason)
    assert {n: admin(engine, n) for n in ("gpu01", "gpu02")} == {
        "gpu01": "draining",
        "gpu02": "draining",
    }
    assert sorted(j.id for j in engine.jobs()) == sorted(jobs)


@pytest.mark.slurm
def test_move_cut_short_is_finished_by_a_second_call(
    slurm: SlurmCluster, engine: SlurmEngine
) -> None:
    job = slurm.sbatch(SLEEP, "gpu", "gpu:2")
    running(slurm, job)
    local = LocalRunner({"SLURM_CONF": str(slurm.conf)})
    flaky = SlurmEngine(
        POOLS, StopControllerBefore(slurm, local, lambda a: a[:2] == ["scontrol", "release"])
    )
    target = (Placement("npu02", (0, 1)),)
    try:
        with pytest.raises(EngineError, match=f"slurm move {job}: scontrol release {job} failed"):
            flaky.move(job, target, "domestic")
    finally:
        slurm.start_controller()
    # Requeued, held and already in npu: not lost, and marked as a move under way.
    sq = next(j for j in slurm.squeue() if str(j["job_id"]) == job)
    assert (sq["job_state"], sq["partition"], sq["priority"]) == ("PENDING", "npu", 0)
    assert "fleetops:moving" in sq["admin_comment"]
    engine.move(job, target, "domestic")
    running(slurm, job)
    assert engine.job(job).placement == target


@pytest.mark.slurm
def test_typed_move_cut_short_before_cancel(slurm: SlurmCluster, engine: SlurmEngine) -> None:
    old = slurm.sbatch(SLEEP, "gpu", "gpu:h100:1")
    running(slurm, old)
    local = LocalRunner({"SLURM_CONF": str(slurm.conf)})
    flaky = SlurmEngine(POOLS, StopControllerBefore(slurm, local, lambda a: a[0] == "scancel"))
    target = (Placement("npu01", (0,)),)
    try:
        with pytest.raises(EngineError, match=f"slurm move {old}: scancel {old} failed"):
            flaky.move(old, target, "domestic")
    finally:
        slurm.start_controller()
    new = flaky.moved[old]
    assert slurm.job_state(old) == "RUNNING"  # both exist: nothing lost
    engine.move(old, target, "domestic")  # a fresh engine: found by comment, old cancelled
    slurm.wait_for("old cancelled", lambda: slurm.job_state(old) == "CANCELLED")
    assert engine.moved == {old: new}
    running(slurm, new)
    assert [j.id for j in engine.jobs()] == [new]


# --- team safety: placements on closed nodes -----------------------------------------------

PORTABLE = "--comment=runtime=portable mem_per_device_mib=1024"


@pytest.mark.slurm
def test_a_move_onto_a_drained_node_is_refused_before_anything_changes(
        slurm: SlurmCluster, engine: SlurmEngine) -> None:
    from console.engines.base import EngineRefused

    job = slurm.sbatch(SLEEP, "gpu", "gpu:2", extra=("-w", "gpu01", PORTABLE))
    running(slurm, job)
    slurm.run("scontrol", "update", "NodeName=npu01", "State=DRAIN", "Reason=RMA do not use")
    with pytest.raises(EngineRefused, match=r"npu01 is drained \(RMA do not use\)"):
        engine.move(job, (Placement("npu01", (0, 1)),), "domestic")
    assert slurm.job_state(job) == "RUNNING" and engine.job(job).placement[0].node == "gpu01"
    assert slurm.squeue()[0]["admin_comment"] == ""  # no move was begun


class DrainBefore:
    """Another operator drains `node` (scontrol, outside fleetops) just before the first
    command matching `when`: after the engine's own look, in the middle of a move."""

    def __init__(self, slurm: SlurmCluster, inner: LocalRunner, node: str,
                 when: Callable[[list[str]], bool]) -> None:
        self.slurm, self.inner, self.node, self.when, self.fired = slurm, inner, node, when, False

    def describe(self) -> str:
        return "local"

    def run(self, argv: Sequence[str], timeout: float, input: str | None = None
            ) -> tuple[int, str, str]:
        if not self.fired and self.when(list(argv)):
            self.fired = True
            self.slurm.run("scontrol", "update", f"NodeName={self.node}", "State=DRAIN",
                           "Reason=RMA")
        return self.inner.run(argv, timeout, input)


@pytest.mark.slurm
def test_the_executor_reports_slurm_refusing_a_closed_target_as_a_replan(
        slurm: SlurmCluster, tmp_path: Path) -> None:
    from console.model.jobs import NodeView, Policy, RuntimeMatrix
    from console.ops.executor import Executor
    from console.planning.guardrails import Limits
    from console.planning.planner import Planner
    from console.state.audit import Audit
    from console.state.journal import Journal

    runner = DrainBefore(slurm, LocalRunner({"SLURM_CONF": str(slurm.conf)}), "npu01",
                         lambda argv: argv[:2] == ["scontrol", "requeuehold"])
    engine = SlurmEngine(POOLS, runner, move_timeout=20)

    class World:  # every node live and healthy
        def views(self, admin):
            return [NodeView(n, "hz", "cn", "nvidia" if n.startswith("gpu") else "domestic",
                             "H100" if n.startswith("gpu") else "910B", 8, 65536,
                             admin=admin.get(n, "active"))
                    for n in ("gpu01", "gpu02", "npu01", "npu02")]

        def telemetry(self, name):
            return next((v for v in self.views({}) if v.name == name), None)

        def planner(self, engine):
            return Planner(self.views(engine.admin_states()), engine.jobs(), Policy(),
                           RuntimeMatrix.default())

    job = slurm.sbatch(SLEEP, "gpu", "gpu:2", extra=("-w", "gpu01", PORTABLE))
    running(slurm, job)
    ex = Executor(engine, Journal(tmp_path / "journal.db"), Audit(tmp_path / "audit.db"),
                  world=World(), limits=Limits(None, None))
    plan = World().planner(engine).move([job], "domestic", "free the H100s")
    assert plan.steps[0].target[0].node == "npu01"
    out = ex.run(plan)
    assert out.status == "done" and not out.failed, out.account()
    assert "npu01 is drained" in out.replanned[0].detail  # a refusal, not a crash
    assert [r.step.target[0].node for r in out.done] == ["npu02"]
    running(slurm, job, timeout=30)
    assert engine.job(job).placement[0].node == "npu02" and engine.job(job).pool == "domestic"
    assert slurm.squeue()[0]["admin_comment"] == ""
