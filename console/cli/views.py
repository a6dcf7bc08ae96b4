"""Fleet state -> the stable JSON shapes and Rich tables of the read commands (pure)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from agents.wire import to_builtins
from console.model.fleet import FleetState, NodeState
from console.model.states import DASH, HEALTH_STYLE, LINK_STYLE
from console.model.text import clean

SKEW_NOTE_S = 300.0


def node_json(node: NodeState) -> dict:
    hello = node.hello
    return {
        "name": node.name, "dc": node.dc, "pool": node.pool, "state": node.link,
        "admin": node.admin, "health": node.health if node.reports else None,
        "last_seen": node.last_seen, "error": node.error,
        "skew_s": None if node.skew_s is None else round(node.skew_s, 3),
        "agent": None if hello is None else {
            "version": hello.agent_version, "hostname": hello.hostname,
            "collectors": hello.collectors, "driver_version": hello.driver_version,
            "runtime_version": hello.runtime_version, "node": hello.node,
        },
        "rejects": dict(node.rejects),
        "devices": [to_builtins(d) for d in node.samples],
    }


def nodes_json(fleet: FleetState, names: list[str]) -> list[dict]:
    return [node_json(fleet.nodes[n]) for n in names]


def devices_json(fleet: FleetState, names: list[str]) -> list[dict]:
    out = []
    for n in names:
        node = fleet.nodes[n]
        for d in node.samples:
            out.append({"node": node.name, "dc": node.dc, **to_builtins(d)})
    return out


def events_json(fleet: FleetState, names: list[str]) -> list[dict]:
    wanted = set(names)
    return [{**to_builtins(e), "node": name, "reported_node": e.node}
            for name, e in fleet.events if name in wanted]


def _num(v: float | None, fmt: str = "{:.0f}") -> str:
    return DASH if v is None else fmt.format(v)


def _mark(table: dict, key: str) -> Text:
    symbol, style = table.get(key, ("?", "red"))
    return Text(f"{symbol} {key}", style=style)


def _models(node: NodeState) -> str:
    counts: dict[str, int] = {}
    for d in node.devices_info or node.samples:
        counts[d.model] = counts.get(d.model, 0) + 1
    return ", ".join(f"{clean(m, 20)}×{n}" for m, n in counts.items()) or DASH


def skew_note(node: NodeState) -> str | None:
    """A clock far off ours is worth a word: timestamps from that node mislead."""
    skew = node.skew_s
    if skew is None or abs(skew) < SKEW_NOTE_S:
        return None
    ahead = "behind" if skew > 0 else "ahead"  # skew = our receive time - its timestamp
    amount = abs(skew)
    text = f"{amount / 86400:.0f}d" if amount >= 86400 else f"{amount:.0f}s"
    return f"clock {text} {ahead}"


def nodes_table(fleet: FleetState, names: list[str], now: float) -> Table:
    t = Table(title="nodes", title_justify="left", expand=False)
    widest = max((len(n) for n in names), default=4)
    for col in ("node", "dc", "pool", "devices", "state", "health", "util %", "mem %",
                "hot C", "power W", "seen", "error"):
        t.add_column(col, no_wrap=col != "error", min_width=widest if col == "node" else None,
                     justify="right" if col in ("util %", "mem %", "hot C", "power W", "seen")
                     else "left")
    for n in names:
        node = fleet.nodes[n]
        s = node.summary
        mem = 100 * s.mem_used_mib / s.mem_total_mib if s.mem_total_mib else None
        util = s.util_sum / s.util_n if s.util_n else None
        seen = DASH if node.last_seen is None else f"{max(0.0, now - node.last_seen):.0f}s"
        t.add_row(
            node.name, node.dc, node.pool, Text(_models(node)), _mark(LINK_STYLE, node.link),
            _mark(HEALTH_STYLE, node.health) if node.reports else Text(DASH),
            _num(util), _num(mem), _num(s.hottest_c), _num(s.power_w if s.devices else None),
            seen, Text(clean(node.error or skew_note(node) or "", 120), style="red"),
        )
    return t


def devices_table(fleet: FleetState, names: list[str]) -> Table:
    t = Table(title="devices", title_justify="left")
    for col in ("node", "#", "model", "pool", "util %", "memory MiB", "temp C", "power W",
                "health", "reasons"):
        t.add_column(col, justify="right" if col in ("#", "util %", "temp C") else "left")
    for n in names:
        node = fleet.nodes[n]
        for d in node.samples:
            t.add_row(node.name, str(d.index), Text(clean(d.model, 40)), d.pool, _num(d.util_pct),
                      f"{_num(d.mem_used_mib)} / {_num(d.mem_total_mib)}", _num(d.temp_c),
                      f"{_num(d.power_w)} / {_num(d.power_limit_w)}",
                      _mark(HEALTH_STYLE, d.health), Text(clean("; ".join(d.reasons), 200)))
    return t


def events_table(fleet: FleetState, names: list[str]) -> Table:
    import datetime as dt

    wanted = set(names)
    t = Table(title="events (newest first)", title_justify="left")
    for col in ("time", "node", "device", "event", "severity", "message", "action"):
        t.add_column(col)
    sev_style = {"info": "cyan", "warn": "yellow", "crit": "bold red"}
    for name, e in reversed(fleet.events):
        if name not in wanted:
            continue
        when = dt.datetime.fromtimestamp(e.ts).strftime("%H:%M:%S")
        t.add_row(when, name, _num(e.device_index, "{}"), e.event,
                  Text(e.severity, style=sev_style.get(e.severity, "")),
                  Text(clean(e.message, 200)), Text(clean(e.action or "", 200)))
    return t
