"""Cambricon MLUs through the `cnmon` table (agents/parsers/cnmon.py).

cnmon has no documented JSON output, so the default table is read; it carries no health
word, so `vendor_health` stays None and the other rules judge MLUs.
"""

from __future__ import annotations

from agents.collectors.smi import SmiCollector
from agents.parsers import cnmon


class MluCollector(SmiCollector):
    name = "mlu"
    vendor = "cambricon"
    tool_env = "FLEETOPS_CNMON"
    tool_default = "cnmon"
    parse = staticmethod(cnmon.parse)
