"""Run one benchmark: `python -m bench NAME [--quick]`."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHES = {
    "agent": "bench.agent",
    "ingest": "bench.ingest",
    "planner": "bench.planner",
    "fanin": "bench.fanin",
    "tui": "bench.tui",
    "agent_install": "bench.agent_install",
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("name", choices=sorted(BENCHES))
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    args = parser.parse_args()
    return importlib.import_module(BENCHES[args.name]).run(quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
