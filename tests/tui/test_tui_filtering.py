"""The `/` filter language, table-driven over the fixture fleet."""

from __future__ import annotations

import pytest
from fleet_fixture import AUTH_FAILED, CONNECTING, STALE, XID_NODE, build_fleet

from console.tui.filtering import EVENT_KEYS, FilterError, event_matches, node_matches, parse_filter

FLEET, _CLOCK = build_fleet()
XINING = {"xn-910b-01", "xn-mlu590-01", "xn-a100-01", "xn-dcu-01"}


def matching(text: str) -> set[str]:
    f = parse_filter(text)
    return {n for n, node in FLEET.nodes.items() if node_matches(f, node)}


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("", set(FLEET.nodes), id="empty-keeps-everything"),
    pytest.param("dc=xining", XINING, id="dc-term"),
    pytest.param("DC=Xining", XINING, id="case-insensitive"),
    pytest.param("dc=xining pool=domestic", XINING - {"xn-a100-01"}, id="terms-and"),
    pytest.param("dc=xining,singapore pool=nvidia", {"xn-a100-01", "sg-h100-01", AUTH_FAILED},
                 id="comma-is-or"),
    pytest.param("health=crit", {XID_NODE, "xn-a100-01"}, id="health-crit"),
    pytest.param("dc=hangzhou health!=ok", {XID_NODE}, id="negated-term"),
    pytest.param("health=none", {AUTH_FAILED, CONNECTING}, id="never-reported"),
    pytest.param("state=down", {AUTH_FAILED}, id="down-means-every-failed-link"),
    pytest.param("state=auth-failed", {AUTH_FAILED}, id="exact-link"),
    pytest.param("state=stale", {STALE}, id="stale"),
    pytest.param("state=connecting", {CONNECTING}, id="connecting"),
    pytest.param("model=mlu*", {"xn-mlu590-01"}, id="glob-value"),
    pytest.param("name=hz-h100-0?", {"hz-h100-01", XID_NODE}, id="glob-name"),
    pytest.param("admin=active", set(FLEET.nodes), id="admin"),
    pytest.param("h100", {"hz-h100-01", XID_NODE, "sg-h100-01", CONNECTING}, id="free-word"),
    pytest.param("publickey", {AUTH_FAILED}, id="word-matches-error"),
    pytest.param("xining 910b", {"xn-910b-01"}, id="words-and"),
])
def test_node_filter(text: str, expected: set[str]) -> None:
    assert matching(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("foo=1", "unknown key 'foo' (keys: dc, pool, state, health, model, admin, "
                 "name)", id="unknown-key"),
    pytest.param("pool=amd", "pool cannot be 'amd' (one of: nvidia, domestic)", id="bad-pool"),
    pytest.param("health=", "'health=' needs a value, e.g. health=ok", id="empty-value"),
    pytest.param("state=sleeping", "state cannot be 'sleeping'", id="bad-state"),
])
def test_mistakes_are_filter_errors_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(FilterError) as err:
        parse_filter(text)
    assert str(err.value).startswith(message)


def test_hostile_key_is_neutralised_in_the_message() -> None:
    with pytest.raises(FilterError) as err:
        parse_filter("\x1b]0;x\x07k=1")
    assert "\x1b" not in str(err.value)


@pytest.mark.parametrize(("text", "count"), [
    pytest.param("", 5, id="all"),
    pytest.param("severity=crit", 4, id="severity"),
    pytest.param("event=xid", 1, id="event-kind"),
    pytest.param("node=xn-a100-01", 2, id="node"),
    pytest.param("dc=hangzhou", 3, id="dc"),
    pytest.param("fallen", 2, id="word-in-message"),
])
def test_event_filter(text: str, count: int) -> None:
    f = parse_filter(text, EVENT_KEYS)
    hits = [e for n, e in FLEET.events if event_matches(f, n, FLEET.nodes[n].dc, e)]
    assert len(hits) == count
