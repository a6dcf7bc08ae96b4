"""Misbehaving node agents for the hostile-agent tests: what a node's `command` could print.

    python tests/hostile_agents.py MODE --node NAME [--sim-model M] [--seed N]
    python tests/hostile_agents.py --node oversize          # MODE taken from the node name

A node's `command` in the inventory can be any program, so the console must survive whatever
it prints. Each MODE prints (to stdout, flushed) what one kind of hostile agent would, then
idles until its time is up, so the console sees the node misbehave rather than just exit;
every mode ends within MAX_RUN_S. Valid frames are built with agents.wire (encode_frame),
invalid ones are written by hand.

Without MODE the mode is the node name, or the node name without a trailing "-N" (so
`write_inventory` in tests/sshd.py, which appends `--node NAME` to one shared command line,
can give every node its own mode: node "seq-dup" runs seq-dup, "honest-2" runs honest).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

# Runs as a plain script over SSH: make the repository importable whatever the venv has.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.wire import (
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    DeviceInfo,
    DeviceSample,
    Event,
    Hello,
    Process,
    Report,
    encode_frame,
)

MAX_RUN_S = float(os.environ.get("HOSTILE_MAX_RUN_S", "15"))
FLOOD_S = min(10.0, MAX_RUN_S)
INTERVAL_S = 0.2
YEAR_S = 365 * 86400

# What a hostile node puts in the text fields it controls: terminal escapes, and Rich markup
# (which a console that renders node text as markup would obey). Fields get both, in both
# orders, so truncation to a column width still leaves some of each.
ESCAPES = (
    "\x1b[2J",                                        # clear the screen
    "\x1b[31m",                                       # colour
    "\x1b]0;PWNED-TITLE\x07",                         # OSC 0: window title
    "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",    # OSC 8: hyperlink
)
MARKUP = ("[bold red]x[/]", "[link=http://evil]y[/link]")
ESC_TEXT = "".join(ESCAPES)
MARKUP_TEXT = "".join(MARKUP)
HOSTILE_TEXT = "evil" + ESC_TEXT + MARKUP_TEXT + "end"  # escapes first
MARKUP_FIRST = MARKUP_TEXT + ESC_TEXT + "end"  # markup first

_STARTED = time.monotonic()


def _out() -> Callable[[bytes], None]:
    stream = sys.stdout.buffer

    def write(data: bytes) -> None:
        try:
            stream.write(data)
            stream.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            # The console hung up: leave quietly (and keep the interpreter from complaining
            # about stdout at exit).
            os._exit(0)

    return write


emit = _out()


def left() -> float:
    return MAX_RUN_S - (time.monotonic() - _STARTED)


def idle() -> None:
    """Stay connected and silent until the run is over."""
    while (remaining := left()) > 0:
        time.sleep(min(remaining, 0.5))


# -- valid frames -----------------------------------------------------------------------------


def device_info(i: int, model: str = "H100", pool: str = "nvidia") -> DeviceInfo:
    return DeviceInfo(uuid=f"GPU-hostile-{i:04d}", index=i, vendor="nvidia", model=model,
                      name=f"NVIDIA {model}", pool=pool, mem_total_mib=81559.0)


def sample(i: int, model: str = "H100", pool: str = "nvidia", **extra: object) -> DeviceSample:
    return DeviceSample(uuid=f"GPU-hostile-{i:04d}", index=i, vendor="nvidia", model=model,
                        pool=pool, util_pct=50.0, mem_used_mib=1024.0, mem_total_mib=81559.0,
                        temp_c=50.0, power_w=300.0, power_limit_w=700.0, **extra)


class Frames:
    """Sequence numbers and timestamps for hand-built valid frames."""

    def __init__(self, node: str, *, skew_s: float = 0.0) -> None:
        self.node = node
        self.seq = 0
        self.skew_s = skew_s

    def _env(self, seq: int | None = None) -> dict:
        if seq is None:
            self.seq += 1
            seq = self.seq
        return {"v": PROTOCOL_VERSION, "node": self.node, "seq": seq,
                "ts": time.time() + self.skew_s}

    def hello(self, devices: int = 2, hostname: str = "hostile", model: str = "H100") -> bytes:
        return encode_frame(Hello(**self._env(), agent_version="hostile-1", hostname=hostname,
                                  collectors=("hostile",), interval_s=INTERVAL_S,
                                  devices=tuple(device_info(i, model) for i in range(devices))))

    def report(self, devices: int = 2, seq: int | None = None, **extra: object) -> bytes:
        return encode_frame(Report(**self._env(seq),
                                   devices=tuple(sample(i, **extra) for i in range(devices))))

    def event(self, message: str, **extra: object) -> bytes:
        return encode_frame(Event(**self._env(), event="xid", severity="warn", message=message,
                                  device_index=0, code=13, **extra))


def honest_stream(frames: Frames, until: float) -> None:
    """A valid report every INTERVAL_S until `until` seconds are left."""
    while left() > until:
        emit(frames.report())
        time.sleep(INTERVAL_S)


# -- modes ------------------------------------------------------------------------------------


def honest(node: str, args: argparse.Namespace) -> None:
    """What the real agent does: Sampler + SimCollector, 2 devices."""
    from agents.collectors.base import CollectorOptions
    from agents.collectors.sim import SimCollector
    from agents.sampler import Sampler

    collector = SimCollector(CollectorOptions(sim_devices=2, sim_model=args.sim_model or "H100",
                                              sim_seed=args.seed))
    sampler = Sampler(collector, node=node, interval_s=INTERVAL_S)
    emit(encode_frame(sampler.hello()))
    while left() > 0:
        emit(b"".join(encode_frame(f) for f in sampler.tick()))
        time.sleep(INTERVAL_S)


def oversize(node: str, args: argparse.Namespace) -> None:
    """A 2 MiB line (in pieces, as a stream would deliver it), then an honest stream."""
    chunk = b'{"kind":"report","junk":"' + b"A" * (64 * 1024)
    sent = 0
    while sent < 2 * MAX_LINE_BYTES:
        emit(chunk)
        sent += len(chunk)
    emit(b'"}\n')
    frames = Frames(node)
    emit(frames.hello())
    honest_stream(frames, 0)


def truncated(node: str, args: argparse.Namespace) -> None:
    """Valid frames cut short, each ending a line."""
    frames = Frames(node)
    for _ in range(8):
        line = frames.hello() if frames.seq == 0 else frames.report()
        emit(line[: len(line) // 2] + b"\n")
    idle()


INVALID_JSON = (
    b"{kind: hello}",
    b'{"kind":"report",}',
    b"not json at all",
    b'{"v":1',
    b'{"v":1}}',
    b"\xff\xfe{\"v\":1}",
    b'{"kind":"report","v":1,"node":"x","seq":1,"ts":1,"devices":[]',
    b"{'single': 'quotes'}",
)


def invalid_json(node: str, args: argparse.Namespace) -> None:
    emit(b"\n".join(INVALID_JSON) + b"\n")
    idle()


def wrong_shape(node: str, args: argparse.Namespace) -> None:
    """Valid JSON, wrong shape: not an object, unknown kind, missing fields, wrong types."""
    env = {"v": 1, "node": node, "seq": 1, "ts": time.time()}
    lines = [
        [],
        "a string",
        42,
        None,
        {},
        {**env, "kind": "bogus"},
        {**env, "kind": "report"},
        {**env, "kind": "report", "devices": "none"},
        {**env, "kind": "report", "devices": [{"uuid": 1}]},
        {**env, "kind": "hello", "agent_version": "x"},
        {**env, "kind": "event", "event": "meteor", "severity": "warn", "message": "m"},
        {**env, "kind": "report", "seq": "one", "devices": []},
    ]
    emit(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
    idle()


def future_version(node: str, args: argparse.Namespace) -> None:
    """Well-formed frames of protocol v2 (with a field v1 never had)."""
    for seq in range(1, 6):
        frame = {"kind": "hello" if seq == 1 else "report", "v": 2, "node": node, "seq": seq,
                 "ts": time.time(), "devices": [], "quantum": True}
        emit(json.dumps(frame).encode() + b"\n")
    idle()


def _with(template: bytes, old: bytes, new: bytes) -> bytes:
    assert old in template, (old, template[:200])
    return template.replace(old, new, 1)


def nan(node: str, args: argparse.Namespace) -> None:
    """NaN and Infinity literals (not JSON) where numbers go."""
    frames = Frames(node)
    emit(_with(frames.hello(), b'"interval_s":0.2', b'"interval_s":NaN'))
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf", b"1e999"):
        emit(_with(frames.report(), b'"util_pct":50.0', b'"util_pct":' + literal))
    idle()


def negative(node: str, args: argparse.Namespace) -> None:
    """Numbers below every bound: negative memory, power, utilisation, seq, timestamps."""
    frames = Frames(node)
    for old, new in ((b'"util_pct":50.0', b'"util_pct":-1'),
                     (b'"mem_used_mib":1024.0', b'"mem_used_mib":-1024'),
                     (b'"power_w":300.0', b'"power_w":-300'),
                     (b'"temp_c":50.0', b'"temp_c":-273.15'),
                     (b'"index":0', b'"index":-1'),
                     (b'"kind":"report","v":1,', b'"kind":"report","v":-1,')):
        emit(_with(frames.report(), old, new))
    line = frames.report()
    emit(re.sub(rb'"seq":\d+', b'"seq":-5', line, count=1))
    emit(re.sub(rb'"ts":[0-9.e+]+', b'"ts":-1', line, count=1))
    idle()


def huge(node: str, args: argparse.Namespace) -> None:
    """Numbers past every bound: 1e308 W, 2^64 counters, 10^400."""
    frames = Frames(node)
    for old, new in ((b'"power_w":300.0', b'"power_w":1e308'),
                     (b'"mem_used_mib":1024.0', b'"mem_used_mib":1e308'),
                     (b'"util_pct":50.0', b'"util_pct":1e308'),
                     (b'"index":0', b'"index":18446744073709551616'),
                     (b'"temp_c":50.0', b'"temp_c":1' + b"0" * 400)):
        emit(_with(frames.report(), old, new))
    line = frames.report()
    emit(re.sub(rb'"seq":\d+', b'"seq":' + str(2**64).encode(), line, count=1))
    emit(re.sub(rb'"ts":[0-9.e+]+', b'"ts":1e308', line, count=1))
    idle()


def devices_10000(node: str, args: argparse.Namespace) -> None:
    """One report with 10,000 devices (the protocol allows 256), then an honest stream."""
    devices = [{"uuid": f"G{i}", "index": i, "vendor": "nvidia", "model": "H100",
                "pool": "nvidia"} for i in range(10_000)]
    frame = {"kind": "report", "v": 1, "node": node, "seq": 1, "ts": time.time(),
             "devices": devices}
    line = json.dumps(frame, separators=(",", ":")).encode() + b"\n"
    assert len(line) < MAX_LINE_BYTES  # rejected for its shape, not its size
    emit(line)
    frames = Frames(node)
    frames.seq = 1
    emit(frames.hello())
    honest_stream(frames, 0)


def seq_dup(node: str, args: argparse.Namespace) -> None:
    """Every report sent twice with the same seq."""
    frames = Frames(node)
    emit(frames.hello())
    while left() > 0:
        line = frames.report()
        emit(line + line)
        time.sleep(INTERVAL_S)


def seq_backwards(node: str, args: argparse.Namespace) -> None:
    """After two good reports, seq goes backwards."""
    frames = Frames(node)
    emit(frames.hello())
    seq = 1000
    emit(frames.report(seq=seq))
    while left() > 0 and seq > 2:
        seq -= 1
        emit(frames.report(seq=seq))
        time.sleep(INTERVAL_S)
    idle()


def clock_skew(node: str, args: argparse.Namespace) -> None:
    """Timestamps a year ahead (args.seed even) or behind (odd), otherwise honest."""
    skew = YEAR_S if args.seed % 2 == 0 else -YEAR_S
    frames = Frames(node, skew_s=skew)
    emit(frames.hello())
    emit(frames.event("a Xid from the future" if skew > 0 else "a Xid from the past"))
    honest_stream(frames, 0)


def flood(node: str, args: argparse.Namespace) -> None:
    """Valid frames as fast as the pipe takes them for FLOOD_S seconds."""
    frames = Frames(node)
    emit(frames.hello())
    template = frames.report().replace(b'"seq":2,', b'"seq":%d,', 1)
    assert b"%d" in template
    seq = 2
    end = time.monotonic() + min(FLOOD_S, left())
    while time.monotonic() < end:
        emit(b"".join(template % s for s in range(seq, seq + 500)))
        seq += 500
    idle()


def silent_after_hello(node: str, args: argparse.Namespace) -> None:
    emit(Frames(node).hello())
    idle()


def binary(node: str, args: argparse.Namespace) -> None:
    """Random bytes (seeded): NULs, lone surrogates' UTF-8, C1 controls, newlines now and then."""
    rng = random.Random(args.seed)
    for _ in range(64):
        emit(rng.randbytes(4096))
    emit(b"\n")
    idle()


def escapes(node: str, args: argparse.Namespace) -> None:
    """Valid frames with terminal escapes and Rich markup in every text field a node owns."""
    esc, mk = HOSTILE_TEXT, MARKUP_FIRST
    hello = Hello(v=1, node=node, seq=1, ts=time.time(), agent_version=mk,
                  hostname="host" + esc, collectors=(esc,), interval_s=INTERVAL_S,
                  driver_version=mk, runtime_version=esc,
                  devices=tuple(DeviceInfo(uuid=f"GPU-esc-{i}", index=i, vendor="nvidia",
                                           model=mk if i == 0 else "M" + esc,
                                           name="N" + esc, pool="nvidia", serial=esc,
                                           vbios=mk) for i in range(2)))
    emit(encode_frame(hello))
    seq = 2
    for i, text in enumerate((esc, mk)):
        emit(encode_frame(Event(v=1, node=node, seq=seq, ts=time.time(), event="xid",
                                severity="warn", message=text, device_index=i,
                                device_uuid=f"GPU-esc-{i}", code=13, action_class="RESET",
                                action=mk if i == 0 else esc)))
        seq += 1
    while left() > 0:
        emit(encode_frame(Report(
            v=1, node=node, seq=seq, ts=time.time(), errors=(esc, mk),
            devices=tuple(
                DeviceSample(uuid=f"GPU-esc-{i}", index=i, vendor="nvidia",
                             model=mk if i == 0 else "M" + esc, pool="nvidia", util_pct=10.0,
                             mem_used_mib=100.0, mem_total_mib=1000.0, temp_c=40.0,
                             power_w=100.0, power_limit_w=700.0, health="warn",
                             reasons=(mk if i == 0 else esc,), vendor_health=esc,
                             recovery_action=mk, throttle_reasons=(esc, mk),
                             processes=(Process(pid=4242, name=mk, used_mib=10.0),
                                        Process(pid=4343, name="proc" + esc, used_mib=5.0)))
                for i in range(2)))))
        seq += 1
        time.sleep(INTERVAL_S)


MODES: dict[str, Callable[[str, argparse.Namespace], None]] = {
    "honest": honest,
    "oversize": oversize,
    "truncated": truncated,
    "invalid-json": invalid_json,
    "wrong-shape": wrong_shape,
    "future-version": future_version,
    "nan": nan,
    "negative": negative,
    "huge": huge,
    "devices-10000": devices_10000,
    "seq-dup": seq_dup,
    "seq-backwards": seq_backwards,
    "clock-skew": clock_skew,
    "flood": flood,
    "silent-after-hello": silent_after_hello,
    "binary": binary,
    "escapes": escapes,
}


def mode_of(node: str) -> str:
    if node in MODES:
        return node
    base = re.sub(r"-\d+$", "", node)
    if base in MODES:
        return base
    raise SystemExit(f"hostile_agents: no mode for node {node!r} (modes: {', '.join(MODES)})")


def write_inventory(fleet, path: Path, names: Iterable[str]) -> Path:
    """An inventory for a tests/sshd.py SshdFleet: one node per name, in host order, each
    running this script in the mode its name says (write_inventory appends `--node NAME`, and
    `--sim-model 910B` for the domestic pool, which honest nodes use)."""
    pools = ("nvidia", "domestic")
    nodes = [(n, pools[i % 2], "") for i, n in enumerate(names)]
    # Absolute paths: the command runs through the remote login shell. The venv's python is
    # not resolved (it is a symlink out of the venv).
    command = f"{os.path.abspath(sys.executable)} {Path(__file__).resolve()}"
    return fleet.write_inventory(path, nodes, command=command)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", choices=list(MODES))
    p.add_argument("--node", required=True)
    p.add_argument("--sim-model", default="")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    mode = args.mode or mode_of(args.node)
    if not args.mode and (m := re.search(r"-(\d+)$", args.node)):
        args.seed = int(m.group(1))  # clock-skew-1 is behind, clock-skew-2 ahead, ...
    MODES[mode](args.node, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
