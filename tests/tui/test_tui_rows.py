"""Node and event rows, and sort keys (pure)."""

from __future__ import annotations

import pytest
from fleet_fixture import AUTH_FAILED, CONNECTING, STALE, XID_NODE, build_fleet

from console.tui.rows import (
    NODE_SORT_KEYS,
    age,
    event_row,
    node_columns,
    node_row,
    recommended_action,
    sort_names,
)

FLEET, CLOCK = build_fleet()
COLUMNS = [c.key for c in node_columns()]


def cells(name: str) -> dict[str, tuple[str, str]]:
    return dict(zip(COLUMNS, node_row(FLEET.nodes[name], CLOCK()), strict=True))


def test_every_column_has_a_sort_key() -> None:
    assert set(COLUMNS) == set(NODE_SORT_KEYS)


def test_live_node_row() -> None:
    row = cells("hz-h100-01")
    assert row["devices"] == ("H100×8", "")
    assert row["state"] == ("● live", "ok")
    assert row["health"] == ("✔ ok", "ok")
    assert row["seen"] == ("0s", "")
    assert row["util"][0].isdigit()


def test_failed_node_shows_why_in_place() -> None:
    row = cells(AUTH_FAILED)
    assert row["state"] == ("⊘ auth-failed", "crit")
    assert row["health"] == ("—", "muted")
    assert row["info"] == ("permission denied (publickey) as fleetops", "crit")


def test_stale_node_numbers_are_muted_and_say_since_when() -> None:
    row = cells(STALE)
    assert row["state"] == ("◐ stale", "warn")
    assert row["util"][1] == "muted"
    assert row["seen"] == ("20s", "muted")
    assert row["info"][0].startswith("no frame for")


def test_critical_device_reason_in_info() -> None:
    text, tone = cells(XID_NODE)["info"]
    assert text.startswith("#3 ") and "lost" in text and tone == "crit"


@pytest.mark.parametrize(("column", "first", "last"), [
    pytest.param("name", "fra-a100-01", "xn-mlu590-01", id="name"),
    pytest.param("health", "fra-a100-01", AUTH_FAILED, id="health-none-last"),
    pytest.param("state", "hz-h100-01", AUTH_FAILED, id="state-live-first"),
])
def test_sort(column: str, first: str, last: str) -> None:
    order = sort_names(FLEET.nodes, list(FLEET.nodes), column)
    assert order[0] == first and order[-1] == last


def test_nodes_without_a_value_sort_last_both_ways() -> None:
    for reverse in (False, True):
        order = sort_names(FLEET.nodes, list(FLEET.nodes), "util", reverse)
        assert set(order[-2:]) == {AUTH_FAILED, CONNECTING}
        utils = [FLEET.nodes[n].summary.util_sum / FLEET.nodes[n].summary.util_n
                 for n in order[:-2]]
        assert utils == sorted(utils, reverse=reverse)


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"), (0.4, "0s"), (59, "59s"), (150, "2m"), (7200, "2h"), (400_000, "5d"),
])
def test_age(seconds: float | None, text: str) -> None:
    assert age(seconds) == text


def test_event_rows_carry_a_recommended_action() -> None:
    for name, event in FLEET.events:
        row = event_row(name, event)
        assert row[-1][0], event
    xid = next(e for _, e in FLEET.events if e.event == "xid")
    assert event_row(XID_NODE, xid)[3] == ("xid 79", "crit")
    health = next(e for _, e in FLEET.events if e.event == "health" and e.health_to == "warn")
    assert recommended_action(health) == "watch the device; check its health reasons"
