"""`fleetops`: the console's command line.

Exit codes (documented in the README): 0 done and every node answered; 1 plan impossible;
2 usage or inventory error, or a refusal (read-only, nothing to confirm on): one line on
stderr, no traceback; 3 some nodes did not answer, the scheduler could not be reached, or an
operation was only partly done; 4 an unexpected error (a bug): one line, and the traceback
with FLEETOPS_DEBUG=1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from console import __version__
from console.cli.ops import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    positive_int,
    positive_seconds,
)


class UsageError(Exception):
    """A mistake in what the user asked; printed as one line, exit 2."""


def _inventory_path(args: argparse.Namespace) -> Path:
    from console.model.inventory import default_inventory_path

    return Path(args.inventory) if args.inventory else default_inventory_path()


def _load(args: argparse.Namespace):
    from console.model.inventory import load_inventory

    return load_inventory(_inventory_path(args))


def _selected(inventory, args: argparse.Namespace):
    return inventory.filter(dc=args.dc, pool=args.pool)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def cmd_read(args: argparse.Namespace) -> int:
    """nodes | devices | events: a fresh snapshot, as a table or JSON."""
    from console.cli import views
    from console.telemetry.snapshot import answered, snapshot

    inventory = _load(args)
    nodes = _selected(inventory, args)
    fleet = asyncio.run(snapshot(inventory, nodes, timeout_s=args.timeout,
                                 settle_s=0.3 if args.command == "events" else 0.0,
                                 accept_new_hosts=args.accept_new_hosts))
    names = [n.name for n in nodes]
    _apply_admin(inventory, fleet)
    if args.json:
        shape = {"nodes": views.nodes_json, "devices": views.devices_json,
                 "events": views.events_json}[args.command]
        _print_json(shape(fleet, names))
    else:
        from rich.console import Console

        table = {"nodes": lambda: views.nodes_table(fleet, names, time.time()),
                 "devices": lambda: views.devices_table(fleet, names),
                 "events": lambda: views.events_table(fleet, names)}[args.command]()
        # Piped output is read by scripts and `less -S`: don't squeeze it into 80 columns.
        Console(width=None if sys.stdout.isatty() else 200).print(table)
    missing = [n for n in names if not answered(fleet, n)]
    if missing:
        print(f"fleetops: {len(missing)} of {len(names)} node(s) did not answer: "
              + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""),
              file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _apply_admin(inventory, fleet) -> None:
    """Nodes show their admin state (cordoned, draining, drained) from the engine; a read
    command still answers, with a warning, when the engine cannot be asked."""
    from console.engines.base import EngineError
    from console.ops.session import engine_exists, open_engine

    if not engine_exists(inventory):
        return
    try:
        engine = open_engine(inventory, readonly=True)
        try:
            states = engine.admin_states()
        finally:
            engine.close()
    except EngineError as exc:
        print(f"fleetops: warning: admin states unknown: {exc}", file=sys.stderr)
        return
    for name in fleet.nodes:
        fleet.set_admin(name, states.get(name, "active"))


def cmd_demo(args: argparse.Namespace) -> int:
    from console.demo.server import DemoSpec, serve_forever

    try:
        spec = DemoSpec(dcs=args.dcs, nodes=args.nodes, devices=args.devices, seed=args.seed,
                        interval_s=args.interval)
    except ValueError as exc:
        raise UsageError(f"demo: {exc}") from None
    if args.serve:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_forever(spec))
        return EXIT_OK
    from console.tui.run import run_demo

    return run_demo(spec, args)


def cmd_ops(args: argparse.Namespace) -> int:
    """cordon, uncordon, drain, resume, move, plan, jobs, audit (console/cli/ops.py)."""
    from console.cli import ops as ops_cli
    from console.engines.base import EngineError
    from console.planning.planner import UnknownTarget
    from console.state.audit import AuditError
    from console.state.journal import JournalError
    from console.state.lease import LeaseHeld

    inventory = _load(args)
    try:
        return ops_cli.run(args, inventory)
    except (ops_cli.Refused, UnknownTarget, LeaseHeld) as exc:  # read-only, unknown job, ...
        print(f"fleetops: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except JournalError as exc:  # an unknown plan id, or the journal cannot be used
        print(f"fleetops: {exc}", file=sys.stderr)
        return EXIT_USAGE if "no plan" in str(exc) else EXIT_PARTIAL
    except (EngineError, AuditError) as exc:  # nothing was changed: it failed before a step
        print(f"fleetops: {exc}", file=sys.stderr)
        return EXIT_PARTIAL


def _read_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dc", help="only this data center")
    p.add_argument("--pool", choices=["nvidia", "domestic"], help="only this pool")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=positive_seconds, default=10.0, metavar="S",
                   help="give nodes this long to answer (default 10)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetops", description="Operations console for mixed Nvidia/domestic GPU fleets.")
    parser.add_argument("--version", action="version", version=f"fleetops {__version__}")
    parser.add_argument("--inventory", metavar="PATH",
                        help="inventory TOML (default: $XDG_CONFIG_HOME/fleetops/inventory.toml)")
    parser.add_argument("--read-only", action="store_true",
                        help="hide and refuse every action that changes the fleet")
    parser.add_argument("--theme", metavar="NAME", help="TUI theme (see themes/)")
    parser.add_argument("--accept-new-hosts", action="store_true",
                        help="record unknown host keys in known_hosts (changed keys are "
                             "always refused)")
    sub = parser.add_subparsers(dest="command")
    for name, text in (("nodes", "every node: state, health, devices"),
                       ("devices", "every device of every node"),
                       ("events", "recent events (XID, ECC, health) across the fleet")):
        _read_args(sub.add_parser(name, help=text))
    from console.cli.ops import add_parsers

    add_parsers(sub)
    d = sub.add_parser("demo", help="a simulated multi-region fleet behind a real SSH server")
    d.add_argument("--serve", action="store_true",
                   help="only run the fleet server; print the inventory path first")
    d.add_argument("--dcs", type=positive_int, default=4, metavar="N")
    d.add_argument("--nodes", type=positive_int, default=60, metavar="N", help="total nodes")
    d.add_argument("--devices", type=positive_int, default=8, metavar="N",
                   help="devices per node (1-64)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--interval", type=positive_seconds, default=1.0, metavar="S")
    return parser


COMMANDS = {"nodes": cmd_read, "devices": cmd_read, "events": cmd_read, "demo": cmd_demo,
            **{c: cmd_ops for c in ("cordon", "uncordon", "drain", "resume", "move", "plan",
                                    "jobs", "audit")}}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from console.tui.run import run_console

        return run_console(args)
    from console.model.inventory import InventoryError, UnknownNode

    try:
        return COMMANDS[args.command](args)
    except (InventoryError, UnknownNode, UsageError) as exc:
        print(f"fleetops: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `fleetops audit --jsonl | head`: the reader is done; leave without a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # a bug: still one line, the traceback on request
        if os.environ.get("FLEETOPS_DEBUG"):
            raise
        print(f"fleetops: internal error: {type(exc).__name__}: {exc} "
              "(FLEETOPS_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
