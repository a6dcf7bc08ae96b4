"""The states a node can be in, defined once, and how each is shown (a symbol and a colour, the
same in the CLI's tables and the TUI, so a state never depends on colour alone).

A node has two independent states: its **link** (how its telemetry reaches us: connecting,
live, stale, or failed in a way that says why) and its **admin** state (what operators and the
engine say: active, cordoned, draining, drained).
"""

from __future__ import annotations

from typing import Literal

LinkState = Literal[
    "connecting", "live", "stale", "down", "auth-failed", "host-key-mismatch",
    "agent-missing", "protocol-error",
]
LINK_STATES: tuple[str, ...] = LinkState.__args__  # type: ignore[attr-defined]
# Failed for good until something changes (a fix on the node, the operator): not "stale".
FAILED_LINKS = frozenset({"down", "auth-failed", "host-key-mismatch", "agent-missing",
                          "protocol-error"})

AdminState = Literal["active", "cordoned", "draining", "drained"]
ADMIN_STATES: tuple[str, ...] = AdminState.__args__  # type: ignore[attr-defined]
CLOSED_STATES: tuple[str, ...] = ADMIN_STATES[1:]  # out of service: no new placements

DASH = "—"  # a value the node does not report
LINK_STYLE = {
    "live": ("●", "green"), "connecting": ("◌", "cyan"), "stale": ("◐", "yellow"),
    "down": ("✖", "red"), "auth-failed": ("⊘", "red"), "host-key-mismatch": ("⚠", "red"),
    "agent-missing": ("?", "red"), "protocol-error": ("≠", "red"),
}
HEALTH_STYLE = {"ok": ("✔", "green"), "warn": ("▲", "yellow"), "crit": ("✖", "bold red")}
