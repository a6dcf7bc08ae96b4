"""Actions on nodes and jobs, and which of them change the fleet ("dangerous", as k9s says).

A dangerous action is never bound in read-only mode: no key, no footer entry, no help line,
and the app refuses it anyway should something call it (a command, the palette). Every one
goes reason -> plan preview -> confirmation -> journaled execution (console/tui/operations.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.dom import DOMNode


@dataclass(frozen=True)
class NodeAction:
    key: str
    name: str  # the operation's name, passed to the engine
    description: str
    dangerous: bool = True
    target: str = "node"  # what the action applies to: node or job


NODE_ACTIONS: tuple[NodeAction, ...] = (
    NodeAction("c", "cordon", "Cordon"),
    NodeAction("u", "uncordon", "Uncordon"),
    NodeAction("r", "drain", "Drain"),
    NodeAction("R", "resume", "Resume"),
)
JOB_ACTIONS: tuple[NodeAction, ...] = (
    NodeAction("m", "move", "Move to other pool", target="job"),
)
DANGEROUS = frozenset(a.name for a in (*NODE_ACTIONS, *JOB_ACTIONS)) | {"evacuate", "plan"}


def allowed(read_only: bool, actions: tuple[NodeAction, ...] = NODE_ACTIONS) -> list[NodeAction]:
    return [a for a in actions if not (read_only and a.dangerous)]


def binding(a: NodeAction) -> Binding:
    return Binding(a.key, f"{a.target}_action('{a.name}')", a.description)


def bind_node_actions(node: DOMNode, read_only: bool,
                      actions: tuple[NodeAction, ...] = NODE_ACTIONS) -> None:
    """Bind the actions this mode allows on `node` (a screen)."""
    for a in allowed(read_only, actions):
        node._bindings.bind(a.key, f"{a.target}_action('{a.name}')", a.description)
    node.refresh_bindings()
