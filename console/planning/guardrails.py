"""Guardrails: a circuit breaker on taking capacity out of service. Pure.

After NVSentinel's circuit breaker (github.com/NVIDIA/NVSentinel: quarantine stops once too
many nodes were cordoned within a window): a plan that closes nodes (cordon, drain, evacuate)
is refused when, counting what is already out of service and what other open plans are about
to close,
- more than `max_out_of_service_share` of a pool's devices (all data centers) or of a data
  center's devices (both pools) would be out of service, counting at least two nodes (one node
  out is never a share to stop at: a site of one or two nodes must still be drainable), or
- more than `max_nodes_per_window` nodes would have been taken out within `window_s`.
An operator may still run it, with `--force` and a reason that the audit log keeps. A mistaken
"drain every H100" or a flapping health rule then stops at the limit instead of emptying a pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from console.model.jobs import NodeView
from console.planning.plan import CLOSING, Plan


@dataclass(frozen=True)
class Limits:
    max_out_of_service_share: float | None = 0.5  # None: no share limit
    max_nodes_per_window: int | None = 10  # None: no rate limit
    window_s: float = 600.0


def closing_nodes(plan: Plan) -> set[str]:
    return {s.node for s in plan.steps if s.action in CLOSING and s.node}


def _span(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds % 60 == 0 else f"{seconds:g} s"


def refusals(plan: Plan, views: Iterable[NodeView], in_flight: Mapping[str, int],
             closed_recently: Mapping[str, float], limits: Limits) -> list[str]:
    """A sentence per guardrail the plan would trip; [] when it may run."""
    nodes = {v.name: v for v in views}
    out_now = {n for n, v in nodes.items() if v.admin != "active"}
    new = {n for n in closing_nodes(plan) if n in nodes and n not in out_now}
    if not new:
        return []  # closes nothing that is open now: resume, move, a repeated drain
    pending = {n for n in in_flight if n in nodes} - out_now - new
    out = out_now | pending | new
    what = f"{plan.kind} {', '.join(plan.targets)}"
    sentences = []
    share = limits.max_out_of_service_share
    if share is not None:
        for scope, key in (("pool", "pool"), ("data center", "dc")):
            groups: dict[str, list[NodeView]] = {}
            for v in nodes.values():
                groups.setdefault(getattr(v, key), []).append(v)
            for name in sorted(groups):
                members = groups[name]
                if not any(m.name in new for m in members):
                    continue
                total = sum(m.devices for m in members)
                gone = sum(m.devices for m in members if m.name in out)
                if total and gone / total > share and sum(m.name in out for m in members) > 1:
                    parts = [f"{sum(1 for m in members if m.name in s)} {label}"
                             for s, label in ((out_now, "already out"),
                                              (pending, "in other open plans"),
                                              (new, "in this plan"))
                             if any(m.name in s for m in members)]
                    sentences.append(
                        f"guardrail: {what} would take {gone / total:.0%} of {scope} {name}'s "
                        f"devices out of service ({gone} of {total}; nodes: {', '.join(parts)}); "
                        f"the limit is {share:.0%} ([policy] max_out_of_service_share)")
    most = limits.max_nodes_per_window
    if most is not None:
        recent = set(closed_recently) | new
        if len(recent) > most:
            sentences.append(
                f"guardrail: {what} would make {len(recent)} nodes taken out of service "
                f"within {_span(limits.window_s)} ({len(set(closed_recently) - new)} already, "
                f"{len(new)} in this plan); the limit is {most} "
                "([policy] max_nodes_per_window)")
    return sentences
