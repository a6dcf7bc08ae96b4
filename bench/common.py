"""Helpers shared by the benchmarks: process CPU and memory from /proc, the result line."""

from __future__ import annotations

import json
import os


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def status_kib(pid: int, key: str) -> int:
    """A `kB` line of /proc/PID/status, e.g. VmHWM (peak RSS) or VmRSS."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def result(bench: str, value: float, unit: str, goal: str, ok: bool, **extra) -> None:
    print(json.dumps({"bench": bench, "value": round(value, 4), "unit": unit, "goal": goal,
                      "ok": ok, **extra}))
