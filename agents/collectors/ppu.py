"""T-Head PPUs through `ppu-smi --query-ppu=... --format=csv,nounits` (agents/parsers/ppu_smi.py).

ppu-smi's CSV query is the one machine-readable form any domestic tool documents. Like
nvidia-smi, it refuses the whole query when one field name is unknown to the installed release,
so a field a driver lacks would blank the node. Instead, a refused field is dropped (or swapped
for its other spelling) and the query retried once; the narrower field list is kept for the
life of the collector, with one warning. Vendor Xids are not NVIDIA's, so none are looked up.
"""

from __future__ import annotations

import logging

from agents.collectors.base import CollectorOptions
from agents.collectors.smi import SmiCollector, ToolExitError, run_tool
from agents.parsers import ppu_smi

log = logging.getLogger("fleetops.agent.ppu")


class PpuCollector(SmiCollector):
    name = "ppu"
    vendor = "thead"
    tool_env = "FLEETOPS_PPU_SMI"
    tool_default = "ppu-smi"
    tool_args = ppu_smi.ARGS
    parse = staticmethod(ppu_smi.parse)

    def __init__(self, options: CollectorOptions | None = None) -> None:
        super().__init__(options)
        self.fields = list(ppu_smi.FIELDS)
        self._narrowed = False  # the documented-only fallback was taken

    def run(self, path: str) -> str:
        tried = set(self.fields)
        while True:
            try:
                return run_tool(self.tool, path, ppu_smi.args(self.fields),
                                self.options.smi_timeout_s)
            except ToolExitError as exc:
                if not self._degrade(exc, tried):
                    raise

    def _degrade(self, exc: ToolExitError, tried: set[str]) -> bool:
        """Narrow the field list after a refused query; False when there is nothing to drop."""
        field = ppu_smi.rejected_field(exc.output, self.fields)
        if field is not None and field not in ppu_smi.ESSENTIAL:
            other = ppu_smi.ALTERNATIVES.get(field) or next(
                (k for k, v in ppu_smi.ALTERNATIVES.items() if v == field), None)
            position = self.fields.index(field)
            if other and other not in tried:
                self.fields[position] = other
                tried.add(other)
                log.warning("ppu-smi: this release refuses field %r; asking for %r instead",
                            field, other)
            else:
                del self.fields[position]
                log.warning("ppu-smi: this release refuses field %r; it is reported as null",
                            field)
            return True
        if field is None and not self._narrowed and ppu_smi.is_field_refusal(exc.output):
            # The refusal names no field we asked for: fall back, once, to the fields the
            # manual documents, rather than guess which of the others it was.
            kept = [f for f in self.fields if f in ppu_smi.DOCUMENTED]
            if kept != self.fields:
                self._narrowed = True
                log.warning("ppu-smi: query refused (%s); retrying with the documented fields "
                            "only: %s", exc, ", ".join(kept))
                self.fields = kept
                return True
        return False
