"""Collector -> frames: the one place samples become wire frames.

`Sampler` owns a collector, the health state of each device and the stream's sequence
numbers. `stream`, `once`, the daemon and the console's demo fleet all drive it the same way:
`hello()` once, then `tick()` every interval and `drain_events()` in between. It does no I/O
of its own and takes the clock as an argument, so it is tested without sleeping.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from agents import __version__, health, xid
from agents.collectors.base import Collector, CollectorEvent
from agents.wire import (
    PROTOCOL_VERSION,
    DeviceInfo,
    DeviceSample,
    Event,
    Frame,
    Hello,
    Report,
)


class _DeviceState:
    __slots__ = ("dbe", "health", "info", "lost", "remap_failure", "xids")

    def __init__(self, info: DeviceInfo) -> None:
        self.info = info
        self.health: str = "ok"
        self.lost = False
        self.xids = health.XidWindow()
        self.dbe: int | None = None
        self.remap_failure: bool | None = None


class Sampler:
    def __init__(
        self,
        collector: Collector,
        *,
        node: str | None = None,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.collector = collector
        self.node = node or socket.gethostname()
        self.interval_s = interval_s
        self.clock = clock
        self.seq = 0
        self.system = collector.open()
        self._devices = {d.index: _DeviceState(d) for d in self.system.devices}

    def _next(self) -> tuple[int, float]:
        self.seq += 1
        return self.seq, self.clock()

    def hello(self) -> Hello:
        seq, ts = self._next()
        return Hello(
            v=PROTOCOL_VERSION, node=self.node, seq=seq, ts=ts,
            agent_version=__version__, hostname=socket.gethostname(),
            collectors=(self.collector.name,), interval_s=self.interval_s,
            driver_version=self.system.driver_version,
            runtime_version=self.system.runtime_version,
            devices=tuple(self.system.devices),
        )

    def tick(self) -> list[Frame]:
        """Sample every device: the events that happened since the last tick, then a report."""
        now = self.clock()
        errors: list[str] = []
        try:
            samples = self.collector.sample(now)
        except Exception as exc:  # a collector failing one tick must not end the stream
            samples = []
            errors.append(f"{self.collector.name}: {exc}")
        frames: list[Frame] = self.drain_events()
        for s in samples:
            frames.extend(self._assess(s, now))
        seq, ts = self._next()
        frames.append(Report(v=PROTOCOL_VERSION, node=self.node, seq=seq, ts=ts,
                             devices=tuple(samples), errors=tuple(errors)))
        return frames

    def drain_events(self) -> list[Frame]:
        """Events the collector saw since it was last asked (Xids arrive between ticks)."""
        return [self._event_frame(e) for e in self.collector.poll_events()]

    # -- internals ----------------------------------------------------------------------

    def _event_frame(self, e: CollectorEvent) -> Event:
        state = self._devices.get(e.index)
        uuid = state.info.uuid if state else None
        nvidia = state is not None and state.info.vendor == "nvidia"
        action_class = action = None
        severity = "warn"
        if e.event == "xid" and e.code is not None:
            if state:
                state.xids.record(e.ts, e.code)
            if nvidia:
                info = xid.lookup(e.code)
                action_class, action = info.action_class, info.action
                severity = "crit" if action_class in xid.DRAIN_CLASSES else (
                    "info" if action_class == "INFO" else "warn")
        elif e.event == "device-lost":
            if state:
                state.lost = True
            severity, action = "crit", "drain the node and reboot it; RMA if it recurs"
        elif e.event == "ecc-dbe":
            severity, action = "crit", "drain the GPU's jobs and reset the GPU"
            if state:
                state.dbe = (state.dbe or 0) + 1  # counted, so the counter check stays quiet
        return self._event(e.event, severity, e.message, e.index, uuid, code=e.code,
                           action_class=action_class, action=action)

    def _event(self, event: str, severity: str, message: str, index: int | None,
               uuid: str | None, **extra: object) -> Event:
        seq, ts = self._next()
        return Event(v=PROTOCOL_VERSION, node=self.node, seq=seq, ts=ts, event=event,
                     severity=severity, message=message, device_index=index,
                     device_uuid=uuid, **extra)

    def _assess(self, s: DeviceSample, now: float) -> list[Event]:
        state = self._devices.get(s.index)
        if state is None:  # a device that appeared after hello: judge it without history
            state = self._devices[s.index] = _DeviceState(DeviceInfo(
                uuid=s.uuid, index=s.index, vendor=s.vendor, model=s.model, name=s.model,
                pool=s.pool))
        out: list[Event] = []
        dbe = s.ecc_dbe_volatile
        if dbe is not None and state.dbe is not None and dbe > state.dbe:
            out.append(self._event("ecc-dbe", "crit", f"{dbe - state.dbe} new uncorrectable "
                                   "ECC error(s)", s.index, s.uuid,
                                   action="drain the GPU's jobs and reset the GPU"))
        if dbe is not None:
            state.dbe = dbe
        if s.remap_failure and not state.remap_failure:
            out.append(self._event("row-remap-failure", "crit", "row remapping failed",
                                   s.index, s.uuid, action="drain the node; RMA candidate"))
        state.remap_failure = s.remap_failure
        ctx = health.Context(
            now=now, slowdown_temp_c=state.info.slowdown_temp_c,
            shutdown_temp_c=state.info.shutdown_temp_c, lost=state.lost,
            xids=tuple(state.xids.recent(now)),
            apply_xid_catalog=s.vendor == "nvidia",
        )
        s.health, reasons = health.assess(s, ctx)
        s.reasons = tuple(reasons)
        if s.health != state.health:
            sev = "info" if s.health == "ok" else s.health
            reason = s.reasons[0] if s.reasons else "all checks pass"
            out.append(self._event("health", sev, f"health {state.health} -> {s.health}: "
                                   f"{reason}", s.index, s.uuid, health_from=state.health,
                                   health_to=s.health))
            state.health = s.health
        return out
