"""The daemon keeps only what it serves: the latest report and a bounded window of events."""

from __future__ import annotations

from agents.daemon import History
from agents.wire import Event, Report


def report(ts: float) -> Report:
    return Report(v=1, node="n", seq=0, ts=ts, devices=())


def event(ts: float) -> Event:
    return Event(v=1, node="n", seq=0, ts=ts, event="xid", severity="crit", message="x")


def test_history_keeps_the_latest_report_only():
    h = History(keep_s=300)
    for i in range(10_000):
        h.add(report(float(i)))
    assert h.latest is not None and h.latest.ts == 9999.0
    assert not hasattr(h, "reports")  # no window of reports: nothing serves them
    assert len(h.events) == 0


def test_history_events_are_bounded_by_count_and_by_age():
    h = History(keep_s=300, max_events=50)
    for i in range(1000):
        h.add(event(1000.0 + i / 100))  # 1000 events within 10 s
    assert len(h.events) == 50 and h.events[-1].ts == 1009.99
    h.add(report(1000.0 + 400))  # time passes without events: they still age out
    assert len(h.events) == 0
    assert h.latest is not None and h.latest.ts == 1400.0
