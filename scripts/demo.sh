#!/usr/bin/env bash
# Set up fleetops in ./.venv and open the console on a simulated multi-region fleet behind a
# real SSH server on 127.0.0.1. Extra arguments go to `fleetops demo` (e.g. --nodes 200).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/fleetops demo "$@"
