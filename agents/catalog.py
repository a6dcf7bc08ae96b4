"""The device catalog (agents/data/devices.toml): facts per accelerator model.

Data, not code: the simulator, the health rules and the console's planner all read it, so a
new model is one TOML table.

A collector finds an entry from the name a vendor tool prints (`find_printed`): by the entry's
`names` (patterns a tool is known to print for that part, matched whole, case-insensitively)
where it lists them, else by the entry's key inside the printed name ("H100" in "NVIDIA H100
80GB HBM3"). Entries that list names are never matched by key: npu-smi prints "910B" for a
binned first-generation Ascend 910 (32 GiB), which is not the 64 GiB 910B family, and an Ascend
name no entry lists (a new part) had better stay unknown than borrow another part's memory.
The console and the inventory hold catalog keys, so `find` takes a key as such first.
What a device reports about itself (memory above all) always wins over the catalog; the
catalog is the default for what the tools do not print.
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
    # None where no datasheet value is known: better no limit than an invented one.
    power_limit_w: float | None = None
    slowdown_temp_c: float | None = None
    shutdown_temp_c: float | None = None
    interconnect: str
    runtimes: tuple[str, ...]
    names: tuple[str, ...] = ()


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


# A vNPU carved from a chip prints the chip's name plus its template ("910B4vir05_1c_8g", as
# Project-HAMi/website tutorials/labs/hami-ascend-vnpu-slicing.md shows): the chip decides.
_VNPU_TEMPLATE = re.compile(r"vir\d+\S*$", re.IGNORECASE)


def _named(model: str) -> ModelSpec | None:
    text = _VNPU_TEMPLATE.sub("", model.strip())
    named = [spec for spec in models().values()
             if any(re.fullmatch(pattern, text, re.IGNORECASE) for pattern in spec.names)]
    return max(named, key=lambda spec: len(spec.model)) if named else None


def _keyed(model: str) -> ModelSpec | None:
    text = model.upper()
    best = None
    for key, value in models().items():
        if value.names:
            continue
        # A key ending in a digit must not run into more digits: "H20" is not "H200". A key
        # ending in a letter may: "A100" is in "NVIDIA A100-SXM4-80GB".
        tail = "(?![0-9])" if key[-1].isdigit() else ""
        if re.search(rf"(?<![A-Z0-9]){re.escape(key.upper())}{tail}", text) and (
                best is None or len(key) > len(best.model)):
            best = value
    return best


def find_printed(name: str) -> ModelSpec | None:
    """The entry for a model name as a vendor tool prints it ("910B3", "MLU590-M9", "910B").

    This is what a collector asks: a printed "910B" is a first-generation 910 bin, not the
    910B family whose catalog key happens to be spelt the same.
    """
    return _named(name) or _keyed(name)


def find(model: str) -> ModelSpec | None:
    """The entry for a model as the wire or an inventory names it: a catalog key ("910B") as
    such, else a printed name an older agent sent ("310P3" -> "310P")."""
    for key, value in models().items():
        if key.lower() == model.strip().lower():
            return value
    return find_printed(model)
