"""Entry points from the CLI: `fleetops` (the console on the inventory) and `fleetops demo`.

The demo's SSH server runs in a child process (`fleetops demo --serve`), not on the
console's loop: a thousand simulated agents ticking there would compete with the UI for the
one loop the key presses use. The child prints its inventory path on its first line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from console.model.inventory import (
    Inventory,
    InventoryError,
    default_inventory_path,
    load_inventory,
)

if TYPE_CHECKING:
    from console.demo.server import DemoSpec

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEMO_START_TIMEOUT_S = 30.0


def run_console(args: argparse.Namespace) -> int:
    path = Path(args.inventory) if getattr(args, "inventory", None) else \
        default_inventory_path()
    try:
        inventory = load_inventory(path)
    except InventoryError as exc:
        print(f"fleetops: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _run_app(inventory, args)


def _run_app(inventory: Inventory, args: argparse.Namespace) -> int:
    # Imported here: the scripted commands never pay for Textual.
    from console.model.fleet import FleetState
    from console.ops.session import Ops
    from console.telemetry.ssh import FanIn, FanInOptions
    from console.tui.app import FleetApp
    from themes import user_theme_dir

    fleet = FleetState(inventory)
    fan_in = FanIn(fleet, list(inventory.nodes), FanInOptions(
        accept_new_hosts=bool(getattr(args, "accept_new_hosts", False))))
    app = FleetApp(
        fleet, fan_in=fan_in, inventory_path=str(inventory.path),
        read_only=bool(getattr(args, "read_only", False) or inventory.console.read_only),
        dry_run=inventory.console.dry_run,
        theme_name=getattr(args, "theme", None) or inventory.console.theme,
        user_theme_dir=user_theme_dir(),
        # Opened lazily on the console's ops thread: SQLite connections stay on one thread.
        ops_factory=lambda: Ops.open(inventory),
    )
    result = app.run()
    return result if isinstance(result, int) else EXIT_OK


def run_demo(spec: DemoSpec, args: argparse.Namespace) -> int:
    """Start the demo fleet server, run the console on its inventory, stop the server."""
    cmd = [sys.executable, "-m", "console.cli.main", "demo", "--serve", "--dcs", str(spec.dcs),
           "--nodes", str(spec.nodes), "--devices", str(spec.devices), "--seed",
           str(spec.seed), "--interval", str(spec.interval_s)]
    # The server's log goes to a file: on the terminal it would scribble over the console.
    with tempfile.TemporaryFile("w+", prefix="fleetops-demo-") as log:
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                  stdin=subprocess.DEVNULL, env=_child_env())
        try:
            line = _first_line(server, DEMO_START_TIMEOUT_S)
            if not line:
                log.seek(0)
                why = (log.read().strip().splitlines() or ["no output"])[-1]
                print(f"fleetops: demo server did not start: {why}", file=sys.stderr)
                return EXIT_FAILED
            # Keep draining its stdout so a chatty server never blocks on a full pipe.
            threading.Thread(target=_drain, args=(server,), daemon=True).start()
            try:
                inventory = load_inventory(line)
            except InventoryError as exc:
                print(f"fleetops: demo: {exc}", file=sys.stderr)
                return EXIT_FAILED
            return _run_app(inventory, args)
        finally:
            _stop(server)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _first_line(proc: subprocess.Popen, timeout_s: float) -> str:
    """The child's first stdout line, or "" if it exits or stays silent past the timeout."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return ""
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return ""
            buf += chunk
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def _drain(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    with contextlib.suppress(OSError, ValueError):
        while os.read(proc.stdout.fileno(), 65536):
            pass


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
