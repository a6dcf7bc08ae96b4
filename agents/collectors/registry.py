"""Collector table: name -> class, imported lazily so `sim` never loads NVML and vice versa.

Adding a vendor takes one collector module, one parser and one line here.
"""

from __future__ import annotations

from importlib import import_module

from agents.collectors.base import Collector, CollectorError, CollectorOptions

COLLECTORS: dict[str, str] = {
    "nvml": "agents.collectors.nvml:NvmlCollector",
    "ascend": "agents.collectors.ascend:AscendCollector",
    "ppu": "agents.collectors.ppu:PpuCollector",
    "mlu": "agents.collectors.mlu:MluCollector",
    "dcu": "agents.collectors.dcu:DcuCollector",
    "sim": "agents.collectors.sim:SimCollector",
}
# `auto` probes real hardware in this order; the simulator is never chosen by itself.
AUTO_ORDER = ("nvml", "ascend", "ppu", "mlu", "dcu")
CHOICES = ("auto", *COLLECTORS)


def collector_class(name: str) -> type[Collector]:
    try:
        target = COLLECTORS[name]
    except KeyError:
        raise CollectorError(
            f"unknown collector {name!r} (choose from {', '.join(CHOICES)})"
        ) from None
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


def resolve(name: str, options: CollectorOptions) -> Collector:
    """The collector called `name`, or for `auto` the first whose probe finds devices."""
    if name != "auto":
        return collector_class(name)(options)
    for candidate in AUTO_ORDER:
        cls = collector_class(candidate)
        if cls.probe(options):
            return cls(options)
    raise CollectorError(
        "no accelerators found (probed " + ", ".join(AUTO_ORDER)
        + "); use --collector sim for simulated devices"
    )
