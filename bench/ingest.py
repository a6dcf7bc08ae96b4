"""ingest: 8-device report frames through decode, validation and apply, for 1k and 10k nodes.

Frames are the real output of the sim collector (one pre-encoded line per node and tick, so
the timed loop is exactly what the console does per line: Intake.feed -> decode -> apply).
Also: the memory that history costs per device-sample. Goals: >= 50,000 frames per CPU-second;
<= 16 bytes per device-sample of history.
"""

from __future__ import annotations

import gc
import time

from agents.collectors.base import CollectorOptions
from agents.collectors.sim import SimCollector
from agents.sampler import Sampler
from agents.wire import Report, encode_frame
from bench.common import result
from console.model.fleet import FleetState
from console.telemetry.intake import Intake

DEVICES = 8


def _lines(ticks: int) -> tuple[bytes, list[bytes]]:
    """A hello and `ticks` report lines of one simulated 8-device node."""
    t = [1000.0]
    s = Sampler(SimCollector(CollectorOptions(sim_devices=DEVICES, sim_seed=1)), node="n",
                clock=lambda: t[0])
    hello = encode_frame(s.hello())
    reports = []
    for _ in range(ticks):
        reports += [encode_frame(f) for f in s.tick() if isinstance(f, Report)]
        t[0] += 1.0
    return hello, reports


def measure(nodes: int, rounds: int) -> tuple[float, int]:
    hello, reports = _lines(rounds)
    fleet = FleetState(history_s=300)
    intakes = []
    for i in range(nodes):
        name = f"n{i:05d}"
        fleet.add_node(name, f"dc{i % 4}", "nvidia" if i % 3 else "domestic")
        intake = Intake(fleet, name, clock=time.time)
        intake.rate = 1e9  # the benchmark feeds faster than real time on purpose
        intake._tokens = 1e12
        intake.feed(hello)
        intakes.append(intake)
    gc.collect()
    frames = 0
    c0 = time.process_time()
    for r in range(rounds):
        line = reports[r]
        for intake in intakes:
            intake.feed(line)
        frames += nodes
    cpu = time.process_time() - c0
    assert fleet.nodes["n00000"].reports == rounds
    return frames / cpu, frames


def history_bytes_per_sample(nodes: int = 1000, seconds: int = 300) -> float:
    """Bytes of history rings per device-sample kept, for a fleet of 8-device nodes."""
    hello, _ = _lines(1)
    fleet = FleetState(history_s=seconds)
    for i in range(nodes):
        fleet.add_node(f"n{i}", "dc", "nvidia")
        Intake(fleet, f"n{i}").feed(hello)
    kept = sum(n.history.nbytes for n in fleet.nodes.values() if n.history)
    return kept / (nodes * DEVICES * seconds)


def run(quick: bool = False) -> int:
    rounds = 5 if quick else 20
    ok = True
    for nodes in (1_000, 10_000):
        rate, frames = measure(nodes, rounds)
        print(f"ingest: {nodes} nodes x {rounds} rounds = {frames} frames: "
              f"{rate:,.0f} frames per CPU-second")
        result("ingest", rate, "frames/CPU-s", ">= 50000", rate >= 50_000, nodes=nodes)
        ok &= rate >= 50_000
    per_sample = history_bytes_per_sample()
    fleet_mb = per_sample * 10_000 * 8 * 300 / 1e6
    print(f"ingest: history costs {per_sample:.2f} bytes per device-sample "
          f"(10,000 nodes x 8 devices x 5 min at 1 Hz: {fleet_mb:.0f} MB)")
    result("ingest", per_sample, "bytes/device-sample", "<= 16", per_sample <= 16,
           metric="history")
    return 0
