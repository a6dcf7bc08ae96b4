"""Parsers of Slurm's output, on real 22.05 captures (tests/data/slurm) and hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.engines.slurm_parse import (
    MAX_HOSTLIST,
    Gres,
    SlurmParseError,
    expand_hostlist,
    parse_gres,
    parse_gres_list,
    parse_scontrol,
    parse_scontrol_line,
    parse_sinfo_json,
    parse_squeue_json,
)

DATA = Path(__file__).parent / "data" / "slurm"


def read(name: str) -> str:
    return (DATA / name).read_text()


# --- hostlists ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("gpu01", ["gpu01"]),
        ("gpu[01-03,07]", ["gpu01", "gpu02", "gpu03", "gpu07"]),
        ("a-[1-2],b1", ["a-1", "a-2", "b1"]),
        ("npu[01-02]", ["npu01", "npu02"]),
        ("n[8-11]", ["n8", "n9", "n10", "n11"]),  # no padding unless the bound has it
        ("n[098-101]", ["n098", "n099", "n100", "n101"]),
        ("r[1-2]n[01-02]", ["r1n01", "r1n02", "r2n01", "r2n02"]),
        ("gpu[01-02]-ib,cpu7", ["gpu01-ib", "gpu02-ib", "cpu7"]),
        ("a[3]", ["a3"]),
        ("a,,b", ["a", "b"]),
        ("", []),
        ("(null)", []),
        (None, []),
    ],
)
def test_expand_hostlist(text: str | None, names: list[str]) -> None:
    assert expand_hostlist(text) == names


@pytest.mark.parametrize(
    "text",
    ["gpu[01-03", "gpu01-03]", "gpu[a-b]", "gpu[3-1]", "gpu[]", "gpu[1-2", "x]y[", "g[1-2]]"],
)
def test_expand_hostlist_refuses_malformed(text: str) -> None:
    with pytest.raises(SlurmParseError):
        expand_hostlist(text)


@pytest.mark.parametrize("text", ["n[0-999999999]", "a[0-999]b[0-999]", "x[1-60000],y[1-60000]"])
def test_expand_hostlist_is_bounded(text: str) -> None:
    with pytest.raises(SlurmParseError, match=str(MAX_HOSTLIST)):
        expand_hostlist(text)


# --- GRES -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gres"),
    [
        ("gpu:h100:8", Gres("gpu", "h100", 8)),
        ("gpu:4", Gres("gpu", None, 4)),
        ("gpu", Gres("gpu", None, 1)),
        ("gres:gpu:4", Gres("gpu", None, 4)),  # 22.05 tres_per_node
        ("gres:gpu:h100:2", Gres("gpu", "h100", 2)),
        ("gres/gpu:910b:2", Gres("gpu", "910b", 2)),  # 23.02+
        ("gpu:h100:6(IDX:0-5)", Gres("gpu", "h100", 6, (0, 1, 2, 3, 4, 5))),
        ("gpu:h100:3(IDX:0-1,4)", Gres("gpu", "h100", 3, (0, 1, 4))),
        ("gpu:h100:0(IDX:N/A)", Gres("gpu", "h100", 0, None)),
        ("gpu:l40s:4(S:0-1)", Gres("gpu", "l40s", 4, None)),
        ("tmpsize:7T", Gres("tmpsize", None, 7 * 1024**4)),
    ],
)
def test_parse_gres(text: str, gres: Gres) -> None:
    assert parse_gres(text) == gres


def test_parse_gres_list_keeps_commas_inside_parentheses() -> None:
    assert parse_gres_list("gpu:h100:3(IDX:0-1,4),npu:2") == (
        Gres("gpu", "h100", 3, (0, 1, 4)),
        Gres("npu", None, 2),
    )
    assert parse_gres_list("") == ()
    assert parse_gres("N/A") is None
    assert Gres("gpu", "910b", 4).spec() == "gpu:910b:4"
    assert Gres("gpu", None, 4).spec() == "gpu:4"


@pytest.mark.parametrize("text", [":4", "a:b:c:4", "gpu:h100:8(IDX:0-7", "gpu:h(:1"])
def test_parse_gres_refuses_malformed(text: str) -> None:
    with pytest.raises(SlurmParseError):
        parse_gres_list(text)


# --- sinfo --json ---------------------------------------------------------------------------


def test_sinfo_idle_capture() -> None:
    nodes = {n.name: n for n in parse_sinfo_json(read("sinfo_22.05_idle.json"))}
    assert list(nodes) == ["gpu01", "gpu02", "npu01", "npu02"]
    gpu01 = nodes["gpu01"]
    assert (gpu01.state, gpu01.flags, gpu01.reason) == ("idle", frozenset(), "")
    assert gpu01.partitions == ("gpu",)
    assert gpu01.gres == (Gres("gpu", "h100", 8),)
    assert nodes["npu02"].gres == (Gres("gpu", "910b", 8),)
    assert not any(n.drain or n.busy for n in nodes.values())


def test_sinfo_draining_drained_and_cordoned_capture() -> None:
    nodes = {n.name: n for n in parse_sinfo_json(read("sinfo_22.05_drain.json"))}
    draining, cordoned = nodes["gpu01"], nodes["gpu02"]
    assert draining.state == "mixed" and draining.drain and draining.busy
    assert draining.reason == "xid79 gpu3 ticket OPS-1 by alice"
    assert draining.gres_used == (Gres("gpu", "h100", 6, (0, 1, 2, 3, 4, 5)),)
    assert cordoned.state == "idle" and cordoned.drain and not cordoned.busy
    assert cordoned.reason == "cordon: rack maintenance"
    assert not nodes["npu01"].drain and nodes["npu01"].busy


def test_sinfo_keeps_hostile_reasons_literally() -> None:
    nodes = {n.name: n for n in parse_sinfo_json(read("sinfo_22.05_not_responding.json"))}
    assert nodes["npu01"].reason == 'ecc errors; "quoted" & $(id) `x`'
    nodes = {n.name: n for n in parse_sinfo_json(read("sinfo_22.05_draining_hostile_reason.json"))}
    assert nodes["gpu01"].reason == "x; touch /tmp/pwned-1 $(id) `id` State=RESUME"


def test_sinfo_down_capture() -> None:
    nodes = {n.name: n for n in parse_sinfo_json(read("sinfo_22.05_down.json"))}
    assert nodes["npu02"].state == "down"
    assert nodes["npu02"].flags == {"NOT_RESPONDING"}
    assert nodes["npu02"].reason == "Not responding"


def test_sinfo_controller_down_is_an_error_not_an_empty_cluster() -> None:
    # rc 0 and valid JSON, but "errors" filled and no nodes: must not read as "no nodes".
    with pytest.raises(SlurmParseError, match="Unspecified error"):
        parse_sinfo_json(read("sinfo_22.05_controller_down.json"))


def test_sinfo_23_02_shapes() -> None:
    # Hand-written (no 23.02 in bookworm): states as one list, numbers as objects.
    doc = {
        "meta": {"slurm": {"version": {"major": "23", "minor": "02", "micro": "6"}}},
        "errors": [],
        "warnings": [],
        "nodes": [
            {
                "name": "gpu01",
                "state": ["MIXED", "DRAIN"],
                "reason": "xid 79",
                "partitions": ["gpu"],
                "gres": "gpu:h100:8(S:0-1)",
                "gres_used": "gpu:h100:2(IDX:0-1)",
                "cpus": {"set": True, "infinite": False, "number": 16},
            },
            {"name": "gpu02", "state": ["IDLE"], "reason": "", "partitions": "gpu,all"},
        ],
    }
    a, b = parse_sinfo_json(json.dumps(doc))
    assert (a.state, a.flags, a.busy, a.drain) == ("mixed", {"DRAIN"}, True, True)
    assert a.gres_used == (Gres("gpu", "h100", 2, (0, 1)),)
    assert (b.state, b.flags, b.partitions) == ("idle", frozenset(), ("gpu", "all"))


def test_sinfo_24_x_entries_are_merged_per_node() -> None:
    # 24.x lists one entry per (partition, state) group under "sinfo"; reason may be an object.
    entry = {
        "node": {"state": ["IDLE", "DRAIN"]},
        "nodes": {"nodes": ["gpu01"]},
        "partition": {"name": "gpu"},
        "gres": {"total": "gpu:h100:8", "used": "gpu:h100:0(IDX:N/A)"},
        "reason": {"description": "cordon: rack", "user": "root"},
    }
    doc = {"errors": [], "sinfo": [entry, {**entry, "partition": {"name": "all"}}]}
    (node,) = parse_sinfo_json(json.dumps(doc))
    assert node.partitions == ("gpu", "all")
    assert (node.state, node.flags, node.reason) == ("idle", {"DRAIN"}, "cordon: rack")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty output"),
        ("   \n", "empty output"),
        ('{"meta": {}, "errors": [], "nodes": [', "not JSON"),
        ("Unable to contact slurm controller", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"errors": []}', "no 'sinfo' list"),
        ('{"errors": [{"error": "Invalid", "errno": 2}], "nodes": []}', "Invalid: errno 2"),
        ('{"errors": ["plain text"], "nodes": []}', "plain text"),
        ('{"errors": [], "nodes": [{"state": "idle"}]}', "without a name"),
        ('{"errors": [], "nodes": {"name": "x"}}', "no 'sinfo' list"),
    ],
)
def test_sinfo_refuses_what_is_not_success(text: str, says: str) -> None:
    with pytest.raises(SlurmParseError, match=says.replace("(", r"\(")):
        parse_sinfo_json(text)


def test_parse_errors_are_one_line() -> None:
    doc = {"errors": [{"description": "line one\nline two\x1b[31m", "error": "e"}], "jobs": []}
    with pytest.raises(SlurmParseError) as info:
        parse_squeue_json(json.dumps(doc))
    assert "\n" not in str(info.value)


# --- squeue --json --------------------------------------------------------------------------


def test_squeue_capture() -> None:
    jobs = {j.job_id: j for j in parse_squeue_json(read("squeue_22.05_mixed.json"))}
    untyped, typed, two = jobs["6"], jobs["7"], jobs["8"]
    assert (untyped.name, untyped.user, untyped.state, untyped.partition) == (
        "train-untyped",
        "root",
        "RUNNING",
        "gpu",
    )
    assert untyped.gres == Gres("gpu", None, 4)
    assert untyped.gres_per_node == (Gres("gpu", "h100", 4, (0, 1, 2, 3)),)
    assert typed.gres == Gres("gpu", "h100", 2)
    assert typed.gres_per_node[0].indices == (4, 5)
    assert typed.comment == "runtime=cuda mem_per_device_mib=40000"
    assert two.nodes == ("npu01", "npu02") and two.node_count == 2
    assert [g.indices for g in two.gres_per_node] == [(0, 1, 2, 3), (0, 1, 2, 3)]
    assert jobs["11"].state == "PENDING" and jobs["11"].nodes == () and not jobs["11"].held
    assert jobs["11"].state_reason == "Resources"
    assert jobs["12"].held  # sbatch --hold
    assert jobs["13"].restarts == 1 and not jobs["13"].held  # requeued
    assert jobs["14"].held and jobs["14"].restarts == 1  # requeuehold
    assert jobs["5"].comment == "fleetops-moved-from=2"
    assert {j.job_id for j in jobs.values() if j.finished} == {"1", "2", "3", "4", "5", "9", "10"}
    assert jobs["10"].state == "FAILED" and jobs["9"].state == "COMPLETED"
    assert untyped.time_limit_min is None  # UNLIMITED is null in 22.05


def test_squeue_empty_and_controller_down() -> None:
    assert parse_squeue_json(read("squeue_22.05_empty.json")) == []
    with pytest.raises(SlurmParseError, match="Failed while looking for jobs"):
        parse_squeue_json(read("squeue_22.05_controller_down.json"))


def test_squeue_23_02_shapes() -> None:
    job = {
        "job_id": 42,
        "name": "train",
        "user_name": "alice",
        "job_state": ["RUNNING"],
        "partition": "gpu",
        "nodes": "gpu[01-02]",
        "node_count": {"set": True, "infinite": False, "number": 2},
        "tres_per_node": "gres/gpu:h100:4",
        "gres_detail": ["gpu:h100:4(IDX:0-3)", "gpu:h100:4(IDX:4-7)"],
        "priority": {"set": True, "infinite": False, "number": 0},
        "restart_cnt": {"set": True, "infinite": False, "number": 1},
        "time_limit": {"set": False, "infinite": True, "number": 0},
    }
    (j,) = parse_squeue_json(json.dumps({"errors": [], "jobs": [job]}))
    assert (j.job_id, j.state, j.nodes, j.node_count) == ("42", "RUNNING", ("gpu01", "gpu02"), 2)
    assert j.gres == Gres("gpu", "h100", 4)
    assert [g.indices for g in j.gres_per_node] == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert (j.priority, j.restarts, j.time_limit_min) == (0, 1, None)


@pytest.mark.parametrize(
    ("jobs", "says"),
    [
        ([{"name": "x"}], "numeric job_id"),
        ([{"job_id": "12; rm -rf /"}], "numeric job_id"),
        ([{"job_id": True}], "numeric job_id"),
        (["job"], "not an object"),
        ([{"job_id": 1, "nodes": "gpu[01-"}], "unbalanced"),
    ],
)
def test_squeue_refuses_odd_jobs(jobs: list, says: str) -> None:
    with pytest.raises(SlurmParseError, match=says):
        parse_squeue_json(json.dumps({"errors": [], "jobs": jobs}))


def test_squeue_truncated_capture() -> None:
    text = read("squeue_22.05_mixed.json")
    with pytest.raises(SlurmParseError, match="not JSON"):
        parse_squeue_json(text[: len(text) // 2])


def test_squeue_tolerates_missing_fields() -> None:
    (j,) = parse_squeue_json('{"errors": [], "jobs": [{"job_id": 7, "job_state": "PENDING"}]}')
    assert (j.job_id, j.state, j.nodes, j.gres, j.partition) == ("7", "PENDING", (), None, "")


# --- scontrol -o ----------------------------------------------------------------------------


def test_scontrol_show_node_capture() -> None:
    nodes = {n["NodeName"]: n for n in parse_scontrol(read("scontrol_show_node_22.05.txt"))}
    assert nodes["gpu01"]["State"] == "MIXED+DRAIN"
    assert nodes["gpu01"]["Gres"] == "gpu:h100:8"
    assert nodes["gpu01"]["Partitions"] == "gpu"
    # Free text with spaces, and the reason's "[user@time]" suffix removed.
    assert nodes["gpu01"]["OS"].startswith("Linux ") and " SMP " in nodes["gpu01"]["OS"]
    assert nodes["gpu01"]["Reason"] == "xid79 gpu3 ticket OPS-1 by alice"
    assert nodes["npu01"]["Reason"] == 'ecc errors; "quoted" & $(id) `x`'
    assert nodes["npu02"]["State"] == "DOWN+NOT_RESPONDING"


def test_scontrol_show_job_capture() -> None:
    jobs = {j["JobId"]: j for j in parse_scontrol(read("scontrol_show_job_22.05.txt"), "job")}
    assert jobs["7"]["JobState"] == "RUNNING" and jobs["7"]["Reason"] == "None"
    assert jobs["7"]["Comment"] == "runtime=cuda mem_per_device_mib=40000"
    assert jobs["7"]["StdOut"].endswith("slurm-7.out")
    assert jobs["7"]["TresPerNode"] == "gres:gpu:h100:2"
    assert jobs["7"]["AllocNode:Sid"]  # keys with ':' and '/'
    assert jobs["7"]["CPUs/Task"] == "1"
    assert jobs["14"]["JobState"] == "PENDING"
    assert jobs["14"]["Reason"] == "job_requeued_in_held_state"


def test_scontrol_reason_is_the_rest_of_a_node_line() -> None:
    line = (
        "NodeName=n1 State=IDLE+DRAIN Reason=x; y State=RESUME Reason=z [root@2026-01-01T00:00:00]"
    )
    fields = parse_scontrol_line(line, ["Reason"])
    assert fields["State"] == "IDLE+DRAIN"
    assert fields["Reason"] == "x; y State=RESUME Reason=z"


def test_scontrol_repeated_key_stays_inside_the_value() -> None:
    fields = parse_scontrol_line("JobId=1 Comment=a JobId=2 b Partition=gpu")
    assert fields == {"JobId": "1", "Comment": "a JobId=2 b", "Partition": "gpu"}


def test_scontrol_refuses_other_output() -> None:
    assert parse_scontrol("") == []
    assert parse_scontrol("\n\n") == []
    with pytest.raises(SlurmParseError, match="without NodeName"):
        parse_scontrol("slurm_load_node error: Unable to contact slurm controller")
    with pytest.raises(SlurmParseError, match="without JobId"):
        parse_scontrol(read("scontrol_show_node_22.05.txt"), "job")


def _sj(job_id: str, user: str, comment: str = ""):
    from console.engines.slurm_parse import SlurmJob

    return SlurmJob(job_id=job_id, name="j", user=user, state="RUNNING", state_reason="None",
                    partition="gpu", nodes=("gpu01",), node_count=1, gres=None,
                    comment=comment)


def test_a_comment_cannot_redirect_an_operators_move_to_another_users_job() -> None:
    from console.engines.slurm import _successor

    victim = _sj("1234", "alice")
    forged = _sj("1300", "mallory", "fleetops-moved-from=1234")
    older = _sj("1000", "alice", "fleetops-moved-from=1234")
    real = _sj("1301", "alice", "fleetops-moved-from=1234")
    assert _successor("1234", [victim, forged], owner="alice") is None
    assert _successor("1234", [victim, older], owner="alice") is None  # not submitted after it
    assert _successor("1234", [victim, forged, real], owner="alice") is real
