"""From the live fleet and the inventory to what the planner reads (NodeView, Policy). Pure.

The planner never sees FleetState: these two functions are the only bridge, so planning stays
a function of plain data and tests build NodeViews directly.
"""

from __future__ import annotations

from collections import Counter

from agents import catalog
from agents.health import worst
from console.model.fleet import FleetState, NodeState
from console.model.inventory import Inventory
from console.model.jobs import ADMIN_STATES, DcPolicy, NodeView, Policy


def _catalog_key(model: str) -> str:
    """The catalog's key for a vendor-reported model ("910B3" -> "910B"), else the text as is."""
    spec = catalog.find(model)
    return spec.model if spec is not None else model


def _model_and_memory(node: NodeState | None) -> tuple[str | None, int, int]:
    """(catalog model, device count, MiB per device) from the hello, else the latest samples.

    Memory is what the devices report: the catalog is told apart by the printed name, and one
    name can still cover parts of several sizes (a 310P chip has 24 or 48 GiB), so the catalog's
    `mem_mib` is only the fallback for devices that report none. The smallest device decides
    what a job can count on.
    """
    if node is None:
        return None, 0, 0
    devices = list(node.devices_info) or list(node.samples)
    if not devices:
        return None, 0, 0
    # A node is one model in practice; the most common one wins if an agent reports a mix.
    raw = Counter(d.model for d in devices).most_common(1)[0][0]
    model = _catalog_key(raw)
    sizes = [d.mem_total_mib for d in devices if d.mem_total_mib]
    if sizes:
        mem = int(min(sizes))
    else:
        spec = catalog.find(raw)
        mem = spec.mem_mib if spec is not None else 0
    return model, len(devices), mem


def node_views(fleet: FleetState, inventory: Inventory, admin: dict[str, str]) -> list[NodeView]:
    """One NodeView per inventory node, in inventory order; `admin` comes from the engine."""
    region = {dc.name: dc.region for dc in inventory.dcs}
    views = []
    for inv in inventory.nodes:
        state = fleet.nodes.get(inv.name)
        model, devices, mem = _model_and_memory(state)
        samples = state.samples if state is not None else []
        adm = admin.get(inv.name, "active")
        if adm not in ADMIN_STATES:
            raise ValueError(f"node {inv.name}: unknown admin state {adm!r} "
                             f"(expected one of {', '.join(ADMIN_STATES)})")
        views.append(NodeView(
            name=inv.name,
            dc=inv.dc,
            region=region[inv.dc],
            pool=inv.pool,
            model=model,
            devices=devices,
            mem_per_device_mib=mem,
            link=state.link if state is not None else "connecting",
            admin=adm,  # type: ignore[arg-type]
            unhealthy_devices=frozenset(s.index for s in samples if s.health == "crit"),
            health=worst(s.health for s in samples),
        ))
    return views


def policy_from(inventory: Inventory) -> Policy:
    """Per data center: region, allowed device models (catalog keys), domestic target."""
    return Policy({
        dc.name: DcPolicy(
            name=dc.name,
            region=dc.region,
            allowed_models=(None if dc.allowed_models is None
                            else frozenset(_catalog_key(m) for m in dc.allowed_models)),
            domestic_target=dc.domestic_target,
        )
        for dc in inventory.dcs
    })
