"""Huawei Ascend NPUs through `npu-smi info` (parser: agents/parsers/npu_smi.py).

DCMI (`libdcmi.so`) would avoid a subprocess per tick, but npu-smi is on every Ascend node
and in every driver container, and its table is stable across 910/910B/310P.
"""

from __future__ import annotations

from agents.collectors.smi import SmiCollector
from agents.parsers import npu_smi


class AscendCollector(SmiCollector):
    name = "ascend"
    vendor = "huawei"
    tool_env = "FLEETOPS_NPU_SMI"
    tool_default = "npu-smi"
    tool_args = ("info",)
    parse = staticmethod(npu_smi.parse)
