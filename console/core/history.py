"""Compact per-device history rings for sparklines.

One ring per node: for each sample, one byte per (device, metric) plus the node-level
timestamp, so a device-sample costs 4 bytes (+ 8/N for the shared timestamp) instead of the
~100 bytes a list of floats would. Values are quantised to what a sparkline can show:
utilisation, memory and power in half-percent steps, temperature in whole degrees.
"""

from __future__ import annotations

from array import array

METRICS = ("util", "mem", "temp", "power")
NULL = 255  # the byte for "the device did not report this"
_M = len(METRICS)


def _pct(value: float | None, total: float | None) -> int:
    if value is None or not total:
        return NULL
    q = int(value * 200 / total + 0.5)
    return 0 if q < 0 else 254 if q > 254 else q


def _temp(value: float | None) -> int:
    if value is None:
        return NULL
    q = int(value + 0.5)
    return 0 if q < 0 else 254 if q > 254 else q


class NodeHistory:
    __slots__ = ("_buf", "capacity", "count", "devices", "head", "ts")

    def __init__(self, devices: int, capacity: int = 300) -> None:
        self.devices = devices
        self.capacity = capacity
        self._buf = bytearray(b"\xff" * (capacity * devices * _M))
        self.ts = array("d", bytes(8 * capacity))
        self.head = 0  # next slot to write
        self.count = 0

    def append(self, ts: float, samples) -> None:
        """Record one report. `samples` are wire DeviceSamples indexed by position."""
        slot = self.head
        base = slot * self.devices * _M
        buf = self._buf
        for i, s in enumerate(samples):
            if i >= self.devices:
                break
            o = base + i * _M
            util = s.util_pct
            buf[o] = NULL if util is None else int(util * 2 + 0.5)
            buf[o + 1] = _pct(s.mem_used_mib, s.mem_total_mib)
            buf[o + 2] = _temp(s.temp_c)
            buf[o + 3] = _pct(s.power_w, s.power_limit_w)
        self.ts[slot] = ts
        self.head = (slot + 1) % self.capacity
        if self.count < self.capacity:
            self.count += 1

    def series(self, device: int, metric: str) -> list[float | None]:
        """Oldest to newest. util/mem/power in percent, temp in degrees C."""
        m = METRICS.index(metric)
        scale = 1.0 if metric == "temp" else 0.5
        out: list[float | None] = []
        start = (self.head - self.count) % self.capacity
        stride = self.devices * _M
        for k in range(self.count):
            slot = (start + k) % self.capacity
            b = self._buf[slot * stride + device * _M + m]
            out.append(None if b == NULL else b * scale)
        return out

    def timestamps(self) -> list[float]:
        start = (self.head - self.count) % self.capacity
        return [self.ts[(start + k) % self.capacity] for k in range(self.count)]

    @property
    def nbytes(self) -> int:
        return len(self._buf) + self.ts.itemsize * len(self.ts)
