"""Fleet state -> table rows, pure: the cells of a node or event row and every sort key.

A cell is `(text, style)` where style is a semantic name ("ok", "warn", "crit", "info",
"muted", "accent" or "") that the widget maps to its theme's colours, so this module knows
nothing of Textual and colours never come from here. Node-supplied text is cleaned here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from agents.wire import Event
from console.model.fleet import NodeState
from console.model.states import DASH, FAILED_LINKS, HEALTH_STYLE, LINK_STYLE
from console.model.text import clean
from console.tui.filtering import node_health, node_models

Cell = tuple[str, str]

LINK_TONE = {"live": "ok", "connecting": "info", "stale": "warn"}  # every other link: crit
HEALTH_TONE = {"ok": "ok", "warn": "warn", "crit": "crit"}
SEVERITY_STYLE = {"info": ("●", "info"), "warn": ("▲", "warn"), "crit": ("✖", "crit")}
ADMIN_SYMBOL = {"cordoned": "⊘", "draining": "⇣", "drained": "○"}


class Column(NamedTuple):
    key: str
    title: str
    width: int
    right: bool = False  # right-aligned (numbers)


def link_cell(link: str) -> Cell:
    symbol = LINK_STYLE.get(link, ("?", ""))[0]
    return f"{symbol} {link}", LINK_TONE.get(link, "crit")


def health_cell(health: str | None) -> Cell:
    if health is None:
        return DASH, "muted"
    symbol = HEALTH_STYLE.get(health, ("?", ""))[0]
    return f"{symbol} {health}", HEALTH_TONE.get(health, "crit")


def age(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    s = max(0.0, seconds)
    if s < 100:
        return f"{s:.0f}s"
    if s < 6000:
        return f"{s / 60:.0f}m"
    if s < 360_000:
        return f"{s / 3600:.0f}h"
    return f"{s / 86400:.0f}d"


def num(v: float | None, fmt: str = "{:.0f}") -> str:
    return DASH if v is None else fmt.format(v)


# -- nodes ----------------------------------------------------------------------------------


def node_columns(name_width: int = 16, dc_width: int = 10) -> list[Column]:
    return [
        Column("name", "NODE", name_width), Column("dc", "DC", dc_width),
        Column("pool", "POOL", 8), Column("devices", "DEVICES", 14),
        Column("state", "STATE", 13), Column("health", "HEALTH", 7),
        Column("util", "UTIL%", 5, True), Column("mem", "MEM%", 5, True),
        Column("temp", "TEMP°C", 6, True), Column("power", "POWER W", 7, True),
        Column("jobs", "JOBS", 4, True), Column("seen", "SEEN", 5, True),
        Column("info", "INFO", 60),
    ]


def devices_text(node: NodeState) -> str:
    counts: dict[str, int] = {}
    for d in node.devices_info or node.samples:
        counts[d.model] = counts.get(d.model, 0) + 1
    return " ".join(f"{clean(m, 20)}×{n}" for m, n in counts.items()) or DASH


def mem_pct(node: NodeState) -> float | None:
    s = node.summary
    return 100 * s.mem_used_mib / s.mem_total_mib if s.mem_total_mib else None


def util_pct(node: NodeState) -> float | None:
    s = node.summary
    return s.util_sum / s.util_n if s.util_n else None


def info_cell(node: NodeState) -> Cell:
    """Why a node needs attention, in place: its link error, else its worst device reason."""
    if node.error and node.link != "live":
        return clean(node.error, 200), "warn" if node.link == "stale" else "crit"
    worst = None
    for d in node.samples:
        if d.health != "ok" and d.reasons and (worst is None or d.health == "crit"):
            worst = d
    if worst is not None:
        text = f"#{worst.index} {clean('; '.join(worst.reasons), 200)}"
        return text, HEALTH_TONE.get(worst.health, "crit")
    rejected = sum(node.rejects.values())
    if rejected:
        return f"{rejected} bad line(s) rejected", "warn"
    return "", ""


def node_row(node: NodeState, now: float, jobs: int | None = None) -> list[Cell]:
    """The cells of one node, in node_columns() order."""
    s = node.summary
    fresh = node.link == "live"
    tone = "" if fresh else "muted"  # numbers from a node that stopped talking are old news
    state = link_cell(node.link)
    if node.admin != "active":
        # The admin state is what the operator acted on; a failed link still shows as crit.
        state = (f"{ADMIN_SYMBOL.get(node.admin, '?')} {node.admin}",
                 "crit" if state[1] == "crit" else "warn")
    has_data = bool(node.reports)
    return [
        (node.name, "accent"), (node.dc, ""), (node.pool, ""), (devices_text(node), ""),
        state, health_cell(node_health(node) if has_data else None),
        (num(util_pct(node)), tone), (num(mem_pct(node)), tone),
        (num(s.hottest_c), tone), (num(s.power_w if s.devices else None), tone),
        (num(jobs, "{}"), "muted" if jobs is None else ""),
        (age(None if node.last_seen is None else now - node.last_seen), tone),
        info_cell(node),
    ]


_LINK_ORDER = {"live": 0, "connecting": 1, "stale": 2}
_HEALTH_ORDER = {"ok": 0, "warn": 1, "crit": 2}  # "none" (never reported): last

# column -> key of a node (None sorts last whichever way the sort goes)
NODE_SORT_KEYS: dict[str, Callable[[NodeState], object]] = {
    "name": lambda n: n.name,
    "dc": lambda n: (n.dc, n.name),
    "pool": lambda n: (n.pool, n.name),
    "devices": lambda n: (node_models(n), n.summary.devices),
    "state": lambda n: (n.admin != "active", _LINK_ORDER.get(n.link, 3 + (n.link in FAILED_LINKS)),
                        n.link),
    "health": lambda n: _HEALTH_ORDER.get(node_health(n)),
    "util": util_pct,
    "mem": mem_pct,
    "temp": lambda n: n.summary.hottest_c,
    "power": lambda n: n.summary.power_w if n.summary.devices else None,
    "jobs": lambda n: None,  # from the jobs index: see sort_names
    "seen": lambda n: n.last_seen,
    "info": lambda n: info_cell(n)[0] or None,
}


def sort_names(nodes: dict[str, NodeState], names: list[str], column: str,
               reverse: bool = False,
               jobs: Callable[[str], int | None] | None = None) -> list[str]:
    """`names` ordered by `column`; ties by name; nodes without a value always last.
    `jobs(name)` counts the jobs on a node (None: no engine), for the JOBS column."""
    key = NODE_SORT_KEYS[column]
    if column == "jobs" and jobs is not None:
        def key(n: NodeState) -> object:
            return jobs(n.name)
    have: list[tuple[object, str]] = []
    missing: list[str] = []
    for name in names:
        k = key(nodes[name])
        if k is None:
            missing.append(name)
        else:
            have.append((k, name))
    have.sort(key=lambda kn: kn[1])
    have.sort(key=lambda kn: kn[0], reverse=reverse)  # stable: equal keys stay by name
    missing.sort()
    return [n for _, n in have] + missing


# -- events ---------------------------------------------------------------------------------


def event_columns(node_width: int = 16) -> list[Column]:
    return [
        Column("time", "TIME", 8), Column("node", "NODE", node_width),
        Column("device", "DEV", 3, True), Column("event", "EVENT", 17),
        Column("severity", "SEVERITY", 8), Column("message", "MESSAGE", 44),
        Column("action", "RECOMMENDED ACTION", 70),
    ]


def recommended_action(e: Event) -> str:
    """The agent's advice when it gave one, else ours for the kind of event."""
    if e.action:
        return clean(e.action, 200)
    if e.event == "health":
        return {"crit": "drain the node's jobs and investigate the device",
                "warn": "watch the device; check its health reasons",
                "ok": "none: the device recovered"}.get(e.health_to or "", "check the device")
    if e.event == "collector-error":
        return "check the agent's vendor tool on the node"
    if e.event == "xid":
        return "look up the Xid; no catalog action for this device"
    return "check the node"


def event_row(node: str, e: Event) -> list[Cell]:
    """The cells of one event, in event_columns() order; the time is local."""
    symbol, tone = SEVERITY_STYLE.get(e.severity, ("?", "crit"))
    kind = e.event if e.code is None else f"{e.event} {e.code}"
    return [
        (time.strftime("%H:%M:%S", time.localtime(e.ts)), "muted"), (node, "accent"),
        (num(e.device_index, "{}"), ""),
        (clean(kind, 40), tone), (f"{symbol} {e.severity}", tone),
        (clean(e.message, 200), ""), (recommended_action(e), ""),
    ]
