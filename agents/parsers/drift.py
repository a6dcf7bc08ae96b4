"""Version drift: what a parser reads past in newer tool output, said once per process.

A vendor release that adds a column or a JSON key must not stop the collector, and must not go
unnoticed either: the first time a parser meets a name it does not know it logs one warning on
stderr (the agent's log goes there), then stays quiet about that name for the life of the
process. Sampling every few seconds would otherwise repeat the same line forever.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from agents.parsers.errors import neutralise

log = logging.getLogger("fleetops.agent.parsers")

_seen: set[tuple[str, str, str]] = set()
_MAX_LISTED = 12


def note_unknown(tool: str, kind: str, names: Iterable[str]) -> None:
    """Warn once per process about each `kind` (column, field, ...) of `tool` not seen before."""
    fresh = sorted({name for name in names if (tool, kind, name) not in _seen})
    if not fresh:
        return
    _seen.update((tool, kind, name) for name in fresh)
    shown = ", ".join(repr(neutralise(name, 40)) for name in fresh[:_MAX_LISTED])
    more = f" and {len(fresh) - _MAX_LISTED} more" if len(fresh) > _MAX_LISTED else ""
    log.warning("%s: ignoring %s the parser does not know: %s%s", tool, kind, shown, more)


def warn_once(tool: str, key: str, message: str) -> None:
    """Log `tool: message` the first time `key` comes up in this process."""
    if (tool, "note", key) in _seen:
        return
    _seen.add((tool, "note", key))
    log.warning("%s: %s", tool, message)


def reset() -> None:
    """Forget what was said (tests)."""
    _seen.clear()
