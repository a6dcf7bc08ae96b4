"""Hygon DCUs through `hy-smi --json` with explicit --show* flags (agents/parsers/hy_smi.py).

hy-smi keeps rocm-smi's JSON output, which survives releases better than its table.
"""

from __future__ import annotations

from agents.collectors.smi import SmiCollector
from agents.parsers import hy_smi


class DcuCollector(SmiCollector):
    name = "dcu"
    vendor = "hygon"
    tool_env = "FLEETOPS_HY_SMI"
    tool_default = "hy-smi"
    tool_args = hy_smi.ARGS
    parse = staticmethod(hy_smi.parse)
