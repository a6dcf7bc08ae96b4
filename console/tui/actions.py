"""Actions on nodes, and which of them change the fleet ("dangerous", as k9s calls it).

A dangerous action is never bound in read-only mode: no key, no footer entry, no help line,
and the app refuses it anyway should something call it. The actions themselves run in the
operations engine (a later slice); until one is attached, asking for one says so.
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


NODE_ACTIONS: tuple[NodeAction, ...] = (
    NodeAction("c", "cordon", "Cordon"),
    NodeAction("u", "uncordon", "Uncordon"),
    NodeAction("r", "drain", "Drain"),
)


def allowed(read_only: bool) -> list[NodeAction]:
    return [a for a in NODE_ACTIONS if not (read_only and a.dangerous)]


def binding(a: NodeAction) -> Binding:
    return Binding(a.key, f"node_action('{a.name}')", a.description)


def bind_node_actions(node: DOMNode, read_only: bool) -> None:
    """Bind the node actions this mode allows on `node` (a screen)."""
    for a in allowed(read_only):
        node._bindings.bind(a.key, f"node_action('{a.name}')", a.description)
    node.refresh_bindings()
