"""agent: `fleetops-agent stream` at 1 Hz on 8 simulated devices: CPU share and peak RSS.

The CPU share is measured at steady state, from the first report on, so interpreter start-up
(a one-off cost) is reported apart. Goal: < 0.5% of one core and < 30 MB RSS.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import cpu_seconds, result, status_kib

AGENT = str(Path(sys.executable).parent / "fleetops-agent")


def run(quick: bool = False) -> int:
    seconds = 15 if quick else 60
    t_start = time.monotonic()
    p = subprocess.Popen([AGENT, "stream", "--collector", "sim", "--sim-devices", "8",
                          "--interval", "1"], stdout=subprocess.PIPE)
    assert p.stdout is not None
    p.stdout.readline()  # hello
    p.stdout.readline()  # first report: start-up is over
    startup_cpu = cpu_seconds(p.pid)
    startup_wall = time.monotonic() - t_start
    lines = [0]

    def drain() -> None:
        for _ in p.stdout:
            lines[0] += 1

    threading.Thread(target=drain, daemon=True).start()
    t0, c0 = time.monotonic(), cpu_seconds(p.pid)
    time.sleep(seconds)
    t1, c1 = time.monotonic(), cpu_seconds(p.pid)
    peak_rss_mb = status_kib(p.pid, "VmHWM") / 1024
    p.terminate()
    p.wait(timeout=10)
    share = 100 * (c1 - c0) / (t1 - t0)
    print(f"agent: 8 simulated devices at 1 Hz for {seconds}s: {lines[0]} frames, "
          f"CPU {share:.3f}% of one core at steady state, peak RSS {peak_rss_mb:.1f} MB "
          f"(start-up: {startup_cpu:.2f} CPU-s in {startup_wall:.2f}s)")
    result("agent", share, "% of one core", "< 0.5", share < 0.5, metric="cpu_share")
    result("agent", peak_rss_mb, "MB peak RSS", "< 30", peak_rss_mb < 30, metric="peak_rss")
    return 0
