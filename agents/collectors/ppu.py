"""T-Head PPUs through `ppu-smi --query-ppu=... --format=csv,nounits` (agents/parsers/ppu_smi.py).

ppu-smi's CSV query is the one machine-readable form any domestic tool documents; the fields
asked for are in `ppu_smi.FIELDS`. Vendor Xids are not NVIDIA's, so none are looked up here.
"""

from __future__ import annotations

from agents.collectors.smi import SmiCollector
from agents.parsers import ppu_smi


class PpuCollector(SmiCollector):
    name = "ppu"
    vendor = "thead"
    tool_env = "FLEETOPS_PPU_SMI"
    tool_default = "ppu-smi"
    tool_args = ppu_smi.ARGS
    parse = staticmethod(ppu_smi.parse)
