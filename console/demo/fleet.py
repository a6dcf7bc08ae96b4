"""The demo fleet's plan: which data centers, nodes, models and scheduled faults it has.

Pure and deterministic for a seed, so a demo (or a benchmark) run twice shows the same fleet.
The server in console/demo/server.py turns each DemoNode into a simulated agent.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random

from agents import catalog


@dataclasses.dataclass(frozen=True)
class DemoDc:
    name: str
    prefix: str  # node name prefix: "hz" -> hz-h100-01
    region: str
    country: str
    # Share of nodes per model; the planner rounds these to whole nodes (largest remainder).
    mix: tuple[tuple[str, float], ...]
    domestic_target: float | None = None


# Weights sum to 1. Xining's domestic models sum to 0.72, its domestic_target.
DCS: tuple[DemoDc, ...] = (
    DemoDc("hangzhou", "hz", "cn-east", "CN",
           (("H100", 0.35), ("H20", 0.30), ("A100", 0.20), ("PPU", 0.15))),
    DemoDc("xining", "xn", "cn-northwest", "CN",
           (("910B", 0.30), ("PPU", 0.14), ("MLU590", 0.14), ("DCU", 0.14), ("A100", 0.28)),
           domestic_target=0.72),
    DemoDc("singapore", "sg", "ap-southeast", "SG", (("H100", 0.6), ("A100", 0.4))),
    DemoDc("frankfurt", "fra", "eu-central", "DE", (("H100", 0.5), ("A100", 0.5))),
    DemoDc("beijing", "bj", "cn-north", "CN", (("H20", 0.4), ("910B", 0.35), ("PPU", 0.25))),
    DemoDc("shanghai", "sh", "cn-east", "CN", (("H100", 0.4), ("H20", 0.3), ("PPU", 0.3))),
    DemoDc("ulanqab", "uq", "cn-north", "CN", (("910B", 0.5), ("MLU590", 0.25), ("DCU", 0.25))),
    DemoDc("wuhu", "wh", "cn-east", "CN", (("H20", 0.4), ("910B", 0.3), ("PPU", 0.3))),
)

# Xids only exist on Nvidia parts; domestic devices fail in the vendor-neutral ways.
NVIDIA_FAULTS = ("xid79", "xid48", "xid13", "ecc-dbe", "thermal", "lost")
DOMESTIC_FAULTS = ("ecc-dbe", "thermal", "lost")
FAULT_AFTER_S = (15, 120)
FIRST_FAULT_BY_S = 30  # so a short demo shows at least one health event
FAULT_EVERY = 12  # about one faulty node in this many


@dataclasses.dataclass
class DemoSpec:
    dcs: int = 4
    nodes: int = 60  # in total, spread over the data centers
    devices: int = 8  # per node
    seed: int = 0
    interval_s: float = 1.0
    faults: bool = True
    port: int = 0  # 0 = any free port
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        # The demo hands out keys that log in as every node: never listen beyond loopback.
        try:
            loopback = ipaddress.ip_address(self.host) in ipaddress.ip_network("127.0.0.0/8")
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"demo host must be an address in 127.0.0.0/8, got {self.host!r}")
        if self.dcs < 1 or self.nodes < 1:
            raise ValueError(f"demo needs at least 1 dc and 1 node, got {self.dcs}, {self.nodes}")
        if not 1 <= self.devices <= 64:
            raise ValueError(f"devices per node must be 1..64, got {self.devices}")
        if not 0 < self.interval_s <= 3600:
            raise ValueError(f"interval must be in (0, 3600] seconds, got {self.interval_s}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")


@dataclasses.dataclass(frozen=True)
class DemoNode:
    name: str
    dc: str
    region: str
    country: str
    pool: str
    model: str
    devices: int
    seed: int
    faults: list[str] = dataclasses.field(default_factory=list)


def fleet_dcs(spec: DemoSpec) -> list[DemoDc]:
    """The first `spec.dcs` data centers of the table, then generic dc-N ones."""
    out = list(DCS[: spec.dcs])
    for n in range(len(DCS) + 1, spec.dcs + 1):
        out.append(DemoDc(f"dc-{n}", f"dc{n}", f"sim-{n}", "XX",
                          (("H100", 0.4), ("A100", 0.3), ("910B", 0.3))))
    return out


def plan_fleet(spec: DemoSpec) -> list[DemoNode]:
    """Every node of the demo fleet, data center by data center, grouped by model."""
    dcs = fleet_dcs(spec)
    per_dc = [spec.nodes // len(dcs) + (i < spec.nodes % len(dcs)) for i in range(len(dcs))]
    nodes: list[DemoNode] = []
    for dc, count in zip(dcs, per_dc, strict=True):
        width = max(2, len(str(count)))
        for model, n in _apportion(dc.mix, count):
            pool = catalog.spec(model).pool
            for k in range(1, n + 1):
                name = f"{dc.prefix}-{model.lower()}-{k:0{width}d}"
                nodes.append(DemoNode(name, dc.name, dc.region, dc.country, pool, model,
                                      spec.devices, spec.seed * 1_000_000 + len(nodes)))
    return _schedule_faults(spec, nodes) if spec.faults else nodes


def _apportion(mix: tuple[tuple[str, float], ...], count: int) -> list[tuple[str, int]]:
    # Largest remainder: exact shares for any count, so Xining really is ~72% domestic
    # instead of whatever a random draw gives for 15 nodes.
    total = sum(w for _, w in mix)
    quotas = [count * w / total for _, w in mix]
    whole = [int(q) for q in quotas]
    by_remainder = sorted(range(len(mix)), key=lambda i: quotas[i] - whole[i], reverse=True)
    for i in by_remainder[: count - sum(whole)]:
        whole[i] += 1
    return [(model, n) for (model, _), n in zip(mix, whole, strict=True) if n]


def _schedule_faults(spec: DemoSpec, nodes: list[DemoNode]) -> list[DemoNode]:
    rng = random.Random(spec.seed)
    n = len(nodes)
    count = max(3, round(n / FAULT_EVERY)) if n >= FAULT_EVERY else min(1, n)
    # Evenly spaced from a random offset: faults land in every data center and model mix
    # rather than clustering where a random draw happens to put them.
    step = n / count
    offset = rng.uniform(0, step)
    chosen = [int(offset + k * step) for k in range(count)]
    first = rng.choice(chosen)
    kinds = list(NVIDIA_FAULTS)
    rng.shuffle(kinds)
    out = list(nodes)
    for i in chosen:
        node = nodes[i]
        allowed = NVIDIA_FAULTS if node.pool == "nvidia" else DOMESTIC_FAULTS
        kind = next(k for k in kinds if k in allowed)
        kinds.remove(kind)  # least recently used first: a demo shows several kinds
        kinds.append(kind)
        after = rng.randint(FAULT_AFTER_S[0], FIRST_FAULT_BY_S if i == first else FAULT_AFTER_S[1])
        out[i] = dataclasses.replace(node, faults=[f"{kind}:{rng.randrange(node.devices)}:{after}"])
    return out
