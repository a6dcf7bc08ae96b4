#!/usr/bin/env bash
# Set up fleetops in ./.venv: the console, the agent and the test tools always; with --system
# (as root, Debian/Ubuntu) also the real components the tests drive (OpenSSH server, ...).
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(openssh-server slurm-wlm slurmctld slurmd munge tmux)

want_system=0
[[ "${1:-}" == "--system" ]] && want_system=1

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "setup: not root or no apt-get; cannot install ${missing[*]} (tests needing them skip)" >&2
        return 0
    fi
    echo "setup: apt-get install ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: fleetops needs Python 3.11 or newer ($PY is $("$PY" -V 2>&1))" >&2
    exit 1
fi
if ! "$PY" -m venv --help >/dev/null 2>&1; then
    apt_install python3-venv
fi
((want_system)) && apt_install "${SYSTEM_PACKAGES[@]}"

if [[ ! -x .venv/bin/python ]]; then
    "$PY" -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install.
stamp=.venv/.fleetops-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # console + agent + test tools: the demo and the suite use all three (pyproject.toml).
    .venv/bin/python -m pip install -q -e '.[console,test]'
    touch "$stamp"
fi
