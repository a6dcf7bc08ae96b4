"""Pure parts of the operations console: the jobs index and its flags, job rows and filters,
and the `:` commands that take several arguments."""

from __future__ import annotations

import pytest
from fleet_fixture import STALE, build_fleet
from ops_fixture import fixture_jobs

from console.model.job_flags import GRACE_S, JobsIndex
from console.model.jobs import Placement
from console.tui.commands import CommandError, completions, parse_command
from console.tui.filtering import JOB_KEYS, job_matches, parse_filter
from console.tui.job_rows import job_row, sort_jobs


def index() -> JobsIndex:
    fleet, clock = build_fleet()
    jobs = JobsIndex(fleet)
    jobs.set_jobs(fixture_jobs(), clock())
    jobs.refresh_flags(clock())
    return jobs


def test_counts_by_node_and_data_center() -> None:
    jobs = index()
    assert jobs.count_on("hz-h100-01") == 3 and jobs.count_on("xn-dcu-01") == 0
    assert jobs.count_in("hangzhou") == "9" and jobs.count_in("frankfurt") == "1"
    assert JobsIndex(build_fleet()[0]).count_on("hz-h100-01") is None  # no engine yet


def test_flags_no_process_and_busy_without_a_job() -> None:
    jobs = index()
    assert jobs.job_flag("j-108") == "no process on xn-mlu590-01[0,2]"
    assert jobs.flags["xn-dcu-01"].busy == (0, 1, 2, 3)
    assert STALE not in jobs.flags  # a stale node's samples are old news
    assert [key for _text, key in jobs.problems()] == ["j-108", "xn-dcu-01"]


def test_a_job_just_placed_gets_time_to_start() -> None:
    jobs = index()
    fleet = jobs.fleet
    now = 1e9
    moved = [j if j.id != "j-101" else
             type(j)(**{**{f: getattr(j, f) for f in j.__slots__},
                        "placement": (Placement("hz-h100-01", (0, 1, 2, 3)),)})
             for j in fixture_jobs()]
    assert jobs.set_jobs(moved, now) and not jobs.set_jobs(moved, now)  # no change twice
    jobs.mark(fleet.nodes)
    jobs.refresh_flags(now)
    assert jobs.job_flag("j-101") == ""  # device 3 idle, but the job was just placed there
    jobs.mark(["hz-h100-01"])
    jobs.refresh_flags(now + GRACE_S)
    assert jobs.job_flag("j-101") == "no process on hz-h100-01[3]"


def test_job_rows_filters_and_sorting() -> None:
    jobs = index()
    j108 = jobs.jobs["j-108"]
    row = job_row(j108, jobs.job_flag("j-108"))
    assert row[6] == ("1×2", "") and row[7] == ("20 GiB", "")
    assert row[-1] == ("▲ no process on xn-mlu590-01[0,2]", "warn")
    f = parse_filter("node=xn-* flag=yes", JOB_KEYS)
    assert [j.id for j in jobs.jobs.values() if job_matches(f, j, bool(jobs.job_flag(j.id)))] \
        == ["j-108"]
    assert sort_jobs(list(jobs.jobs.values()), "flag", False, jobs.job_flag)[0] == "j-108"
    assert sort_jobs(list(jobs.jobs.values()), "mem", True, jobs.job_flag)[0] == "j-114"


@pytest.mark.parametrize(("text", "name", "args"), [
    ("drain n1 n2", "drain", ("n1", "n2")),
    (":move j-1 j-2 domestic", "move", ("j-1", "j-2", "domestic")),
    ("evacuate xining", "evacuate", ("xining",)),
    ("plan RESUME 3", "plan", ("resume", "3")),
    ("prop", "proposals", ()),
])
def test_commands_with_arguments(text: str, name: str, args: tuple[str, ...]) -> None:
    cmd = parse_command(text)
    assert (cmd.name, cmd.args) == (name, args)


@pytest.mark.parametrize(("text", "error"), [
    ("drain", "usage: :drain NODE…"),
    ("move j-1", "usage: :move JOB… POOL"),
    ("move j-1 amd", "the pool: nvidia or domestic"),
    ("evacuate xining amd", "the pool: nvidia or domestic"),
    ("plan undo 3", "usage: :plan resume ID or :plan rollback ID"),
    ("audit now", ":audit takes no argument"),
])
def test_command_mistakes_say_how(text: str, error: str) -> None:
    with pytest.raises(CommandError, match=error):
        parse_command(text)


def test_completions_know_the_argument_position() -> None:
    def names(command: str, position: int) -> list[str]:
        return ["nvidia", "domestic"] if command == "move" and position else ["j-1"]

    assert completions("move ", names) == ["move j-1"]
    assert completions("move j-1 d", names) == ["move j-1 nvidia", "move j-1 domestic"]
