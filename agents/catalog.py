"""The device catalog (agents/data/devices.toml): facts per accelerator model.

Data, not code: the simulator, the health rules and the console's planner all read it, so a
new model is one TOML table.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources

import msgspec


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    vendor: str
    pool: str
    name: str
    mem_mib: int
    power_limit_w: float
    slowdown_temp_c: float
    shutdown_temp_c: float
    interconnect: str
    runtimes: tuple[str, ...]


@cache
def models() -> dict[str, ModelSpec]:
    raw = tomllib.loads(resources.files("agents").joinpath("data/devices.toml").read_text())
    return {
        key: msgspec.convert({"model": key, **spec}, ModelSpec)
        for key, spec in raw["models"].items()
    }


def spec(model: str) -> ModelSpec:
    """The catalog entry of `model` (case-insensitive), or KeyError naming the known ones."""
    table = models()
    for key, value in table.items():
        if key.lower() == model.lower():
            return value
    raise KeyError(f"unknown device model {model!r} (known: {', '.join(table)})")


def find(model: str) -> ModelSpec | None:
    """Best-effort match of a vendor-reported model string ("910B3", "MLU590-M9") to the catalog."""
    text = model.upper()
    best = None
    for key, value in models().items():
        # A key ending in a digit must not run into more digits: "H20" is not "H200". A key
        # ending in a letter may: "910B" is the family of "910B3".
        tail = "(?![0-9])" if key[-1].isdigit() else ""
        if re.search(rf"(?<![A-Z0-9]){re.escape(key.upper())}{tail}", text) and (
                best is None or len(key) > len(best.model)):
            best = value
    return best
