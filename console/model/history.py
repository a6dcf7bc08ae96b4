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


class NodeHistory:
    __slots__ = ("_buf", "capacity", "count", "devices", "head", "ts")

    def __init__(self, devices: int, capacity: int = 300) -> None:
        self.devices = devices
        self.capacity = capacity
        self._buf = bytearray(b"\xff" * (capacity * devices * _M))
        self.ts = array("d", bytes(8 * capacity))
        self.head = 0  # next slot to write
        self.count = 0

    def append(self, ts: float, samples) -> tuple:
        """Record one report (`samples`: wire DeviceSamples indexed by position).

        Returns the sums the fleet totals need, (util_sum, util_n, power_w, mem_used_mib,
        mem_total_mib, ok, warn, crit, hottest_c), so that applying a frame reads each device
        once. This loop is most of the console's per-frame cost beyond decoding, which is why
        the quantisation is written out inline rather than in helpers.
        """
        util_sum = power = used = total = 0.0
        util_n = ok = warn = crit = 0
        hottest = None
        buf = self._buf
        o = self.head * self.devices * _M
        end = o + self.devices * _M
        for s in samples:
            u, m, mt, t, p = s.util_pct, s.mem_used_mib, s.mem_total_mib, s.temp_c, s.power_w
            if o < end:
                buf[o] = NULL if u is None else int(u * 2 + 0.5)
                if m is None or not mt:
                    buf[o + 1] = NULL
                else:
                    # Compare before int(): a tiny total from a hostile node makes q infinite.
                    q = m * 200 / mt
                    buf[o + 1] = int(q + 0.5) if q < 254 else 254
                if t is None:
                    buf[o + 2] = NULL
                else:
                    q = int(t + 0.5)
                    buf[o + 2] = 0 if q < 0 else 254 if q > 254 else q
                limit = s.power_limit_w
                if p is None or not limit:
                    buf[o + 3] = NULL
                else:
                    q = p * 200 / limit
                    buf[o + 3] = int(q + 0.5) if q < 254 else 254
                o += _M
            if u is not None:
                util_sum += u
                util_n += 1
            if p is not None:
                power += p
            if m is not None:
                used += m
            if mt is not None:
                total += mt
            if t is not None and (hottest is None or t > hottest):
                hottest = t
            h = s.health
            if h == "ok":
                ok += 1
            elif h == "warn":
                warn += 1
            else:
                crit += 1
        self.ts[self.head] = ts
        self.head = (self.head + 1) % self.capacity
        if self.count < self.capacity:
            self.count += 1
        return util_sum, util_n, power, used, total, ok, warn, crit, hottest

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
