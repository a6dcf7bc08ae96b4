"""`fleetops-agent`: stream, once, daemon, schema.

Exit codes: 0 done (or the reader went away), 1 the collector cannot work (no devices, tool
broken) or the daemon's socket cannot be trusted or taken, 2 usage error. Errors are one line
on stderr; stdout carries only what was asked.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from agents import __version__
from agents.collectors.base import CollectorError, CollectorOptions
from agents.collectors.registry import CHOICES, resolve
from agents.sockpath import SocketError, default_socket

log = logging.getLogger("fleetops.agent")


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be in (0, 3600], got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _devices(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be 1..64, got {text}")
    return value


def _fault(text: str) -> str:
    from agents.collectors.sim import Fault

    try:
        Fault.parse(text)
    except CollectorError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("bad --sim-fault ")) from None
    return text


def _host_port(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return text


def _collector_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("collector")
    g.add_argument("--collector", choices=CHOICES, default="auto",
                   help="what to sample (default: auto, probes nvml, ascend, ppu, mlu, dcu)")
    g.add_argument("--interval", type=_positive, default=1.0, metavar="S",
                   help="seconds between reports (default 1)")
    g.add_argument("--node", help="node name in frames (default: this host's name)")
    g.add_argument("--smi-path", help="path of the vendor SMI tool (domestic collectors)")
    g.add_argument("--smi-timeout", type=_positive, default=5.0, metavar="S",
                   help="kill the SMI tool after S seconds (default 5)")
    g.add_argument("--sim-devices", type=_devices, default=8, metavar="N")
    g.add_argument("--sim-model", default="H100",
                   help="H100, H20, A100, PPU, 910B, MLU590 or DCU")
    g.add_argument("--sim-seed", type=int, default=0, metavar="S")
    g.add_argument("--sim-fault", action="append", default=[], type=_fault,
                   metavar="KIND:DEVICE:AFTER_S",
                   help="inject a fault: xid<N>, ecc-dbe, thermal or lost (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleetops-agent",
                                     description="fleetops node agent: accelerator telemetry")
    parser.add_argument("--version", action="version", version=f"fleetops-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("stream", help="hello, then a report every interval, as NDJSON")
    _collector_args(s)
    s.add_argument("--count", type=_count, help="exit after N reports")
    s.add_argument("--socket", default=None,
                   help="attach to the daemon listening here (default: "
                        f"{default_socket()}) when --collector is not given")
    s.add_argument("--local", action="store_true",
                   help="sample in this process even if a daemon is running")

    o = sub.add_parser("once", help="one snapshot: a table, or the report frame with --json")
    _collector_args(o)
    o.add_argument("--json", action="store_true", help="print the report frame")

    d = sub.add_parser("daemon", help="sample continuously and serve readers on a socket")
    _collector_args(d)
    d.add_argument("--socket", default=None, help=f"listen here (default {default_socket()})")
    d.add_argument("--metrics-addr", metavar="HOST:PORT", type=_host_port,
                   help="serve Prometheus metrics (dcgm-exporter names) here")
    d.add_argument("--metrics-hostname-label", default="Hostname", choices=["Hostname", "hostname"],
                   help="casing of the host label (dcgm-exporter changed it; default Hostname)")
    d.add_argument("--history", type=_positive, default=300, metavar="S",
                   help="seconds of events to replay to a new client (default 300); of reports "
                        "only the latest is kept")
    d.add_argument("--max-clients", type=_count, default=32, metavar="N",
                   help="serve at most N clients at once; more are closed at once (default 32)")

    sub.add_parser("schema", help="print the wire protocol's JSON Schema")
    return parser


def _options(args: argparse.Namespace) -> CollectorOptions:
    return CollectorOptions(
        smi_path=args.smi_path, smi_timeout_s=args.smi_timeout, sim_devices=args.sim_devices,
        sim_model=args.sim_model, sim_seed=args.sim_seed, sim_faults=list(args.sim_fault),
    )


def _sampler(args: argparse.Namespace):
    from agents.sampler import Sampler

    collector = resolve(args.collector, _options(args))
    return Sampler(collector, node=args.node, interval_s=args.interval)


def cmd_stream(args: argparse.Namespace) -> int:
    from agents import sockpath, stream

    explicit = args.collector != "auto" or args.local
    if not explicit:
        path = args.socket or default_socket()
        # A socket that is there but untrusted is an error, never a silent local fallback.
        conn = sockpath.connect(path)
        if conn is not None:
            log.info("relaying the daemon at %s", path)
            with conn:
                return stream.relay(conn, sys.stdout.buffer, count=args.count)
    sampler = _sampler(args)
    try:
        return stream.run_local(sampler, sys.stdout.buffer, count=args.count)
    finally:
        sampler.collector.close()


def cmd_once(args: argparse.Namespace) -> int:
    from agents.wire import Report, encode_frame

    sampler = _sampler(args)
    try:
        frames = sampler.tick()
    finally:
        sampler.collector.close()
    report = next(f for f in frames if isinstance(f, Report))
    if args.json:
        sys.stdout.buffer.write(encode_frame(report))
        return 0
    from agents.table import print_report

    print_report(sampler.hello(), report)
    return 0


def cmd_daemon(args: argparse.Namespace) -> int:
    from agents.daemon import Daemon

    sampler = _sampler(args)
    daemon = Daemon(sampler, args.socket or default_socket(), keep_s=args.history,
                    max_clients=args.max_clients)
    try:
        daemon.claim()  # before the metrics port: a second daemon is named, not "in use"
        if args.metrics_addr:
            _serve_metrics(daemon, args.metrics_addr, args.metrics_hostname_label)
    except BaseException:
        if daemon.listener is not None:
            daemon.listener.close()
        sampler.collector.close()
        raise
    import asyncio  # only the daemon needs it: stream and once start sooner without it

    asyncio.run(daemon.run())
    return 0


def _serve_metrics(daemon, addr: str, hostname_label: str) -> None:
    from prometheus_client import CollectorRegistry, start_http_server

    from agents.metrics import FleetopsMetrics

    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise CollectorError(f"bad --metrics-addr {addr!r}: expected HOST:PORT")
    registry = CollectorRegistry()
    registry.register(FleetopsMetrics(daemon.hello, lambda: daemon.history.latest,
                                      lambda: list(daemon.history.events), hostname_label))
    start_http_server(int(port), addr=host.strip("[]"), registry=registry)
    log.info("metrics on http://%s/metrics", addr)


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from agents.wire import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return 0


COMMANDS = {"stream": cmd_stream, "once": cmd_once, "daemon": cmd_daemon, "schema": cmd_schema}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO if args.verbose else logging.WARNING,
                        format="fleetops-agent: %(levelname)s %(message)s")
    # SIGTERM/SIGHUP (ssh closing the session) end the agent like Ctrl-C: quietly, cleanly.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    try:
        return COMMANDS[args.command](args)
    except (CollectorError, SocketError) as exc:
        print(f"fleetops-agent: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"fleetops-agent: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
