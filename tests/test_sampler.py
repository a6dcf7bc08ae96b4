"""Sampler: frames from a collector, seq rules, events between ticks, collector trouble."""

from __future__ import annotations

from agents.collectors.base import Collector, CollectorEvent, SystemInfo
from agents.sampler import Sampler
from agents.wire import DeviceInfo, DeviceSample, Event, Hello, Report


class Scripted(Collector):
    """A collector whose samples and events the test writes."""

    name = "scripted"

    def __init__(self):
        super().__init__()
        self.samples: list[dict] = [{}]
        self.events: list[CollectorEvent] = []
        self.fail = False

    def open(self):
        return SystemInfo("1.0", None, [DeviceInfo(
            uuid="GPU-a", index=0, vendor="nvidia", model="H100", name="H100", pool="nvidia",
            slowdown_temp_c=87, shutdown_temp_c=92)])

    def sample(self, now):
        if self.fail:
            raise RuntimeError("tool crashed")
        metrics = self.samples[0]
        return [DeviceSample(uuid="GPU-a", index=0, vendor="nvidia", model="H100",
                             pool="nvidia", **metrics)]

    def poll_events(self):
        out, self.events = self.events, []
        return out


def make(clock=None):
    c = Scripted()
    t = [100.0]
    return c, Sampler(c, node="n", clock=clock or (lambda: t[0])), t


def test_seq_strictly_increases_across_kinds():
    c, s, _t = make()
    frames = [s.hello()]
    c.samples[0] = {"temp_c": 95}
    frames += s.tick()
    c.events.append(CollectorEvent(100.5, "xid", 0, "Xid 13", 13))
    frames += s.drain_events()
    frames += s.tick()
    seqs = [f.seq for f in frames]
    assert seqs == sorted(set(seqs)) and isinstance(frames[0], Hello)


def test_xid_between_ticks_is_an_event_with_class_and_action():
    c, s, _ = make()
    c.events.append(CollectorEvent(100.0, "xid", 0, "Xid 48", 48))
    (event,) = s.drain_events()
    assert isinstance(event, Event)
    assert (event.code, event.action_class, event.severity) == (48, "RESET", "crit")
    assert event.device_uuid == "GPU-a" and "reset" in event.action


def test_xid_feeds_the_health_window():
    c, s, _t = make()
    c.events.append(CollectorEvent(100.0, "xid", 0, "Xid 79", 79))
    frames = s.tick()
    report = frames[-1]
    assert isinstance(report, Report) and report.devices[0].health == "crit"
    assert any(isinstance(f, Event) and f.event == "health" for f in frames)


def test_health_transition_events_both_ways():
    c, s, _t = make()
    c.samples[0] = {"temp_c": 90}
    up = [f for f in s.tick() if isinstance(f, Event)]
    c.samples[0] = {"temp_c": 60}
    down = [f for f in s.tick() if isinstance(f, Event)]
    assert (up[0].health_from, up[0].health_to, up[0].severity) == ("ok", "warn", "warn")
    assert (down[0].health_from, down[0].health_to, down[0].severity) == ("warn", "ok", "info")


def test_dbe_counter_rise_is_an_event_once():
    c, s, _ = make()
    c.samples[0] = {"ecc_dbe_volatile": 0}
    s.tick()
    c.samples[0] = {"ecc_dbe_volatile": 2}
    first = [f.event for f in s.tick() if isinstance(f, Event)]
    again = [f.event for f in s.tick() if isinstance(f, Event)]
    assert "ecc-dbe" in first and "ecc-dbe" not in again


def test_row_remap_failure_event_on_transition():
    c, s, _ = make()
    c.samples[0] = {"remap_failure": True}
    events = [f.event for f in s.tick() if isinstance(f, Event)]
    assert "row-remap-failure" in events
    assert "row-remap-failure" not in [f.event for f in s.tick() if isinstance(f, Event)]


def test_a_collector_failing_one_tick_reports_the_error_and_goes_on():
    c, s, _ = make()
    c.fail = True
    report = s.tick()[-1]
    assert report.devices == () and "tool crashed" in report.errors[0]
    c.fail = False
    assert s.tick()[-1].devices[0].uuid == "GPU-a"
