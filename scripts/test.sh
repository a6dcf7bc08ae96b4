#!/usr/bin/env bash
# Set up everything the tests use, then run the whole suite. Extra arguments go to pytest.
# With CI=true a missing component fails its tests instead of skipping them, and a run in
# which no test ran fails.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --system
.venv/bin/ruff check --quiet .
set +e
.venv/bin/python -m pytest -q -rs "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "test: no test ran; failing" >&2
    exit 1
fi
exit $rc
