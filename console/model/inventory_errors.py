"""Inventory errors: one-line messages naming the file, the entry and the field.

The inventory is hand-written, so every error must point at the exact spot to fix; and it is
shown in a TUI status line and in logs, so it is always a single line.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Collection, Sequence
from typing import Any

from pydantic_core import ErrorDetails

# Tables at the top level of the file, shown as "[engine]" etc. in messages.
SECTIONS = ("defaults", "engine", "console")


class InventoryError(Exception):
    """A problem with the inventory file; str() is one line: `file: entry: field: message`."""

    def __init__(
        self,
        file: str,
        entry: str | None,
        field: str | None,
        message: str,
        more: int = 0,
    ) -> None:
        # All parts go to args so the exception pickles (the console may log from workers).
        super().__init__(file, entry, field, message, more)
        self.file, self.entry, self.field, self.message, self.more = (
            file,
            entry,
            field,
            message,
            more,
        )

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.entry, self.field) if p]
        text = ": ".join([*parts, self.message])
        if self.more:
            text += f" (+{self.more} more)"
        # Values are shown with repr(), but be defensive: a newline must never get through.
        return " ".join(text.splitlines())


class UnknownNode(InventoryError, KeyError):
    """`Inventory.node(name)` for a name not in the inventory; lists close matches."""

    def __init__(self, file: str, name: str, known: Sequence[str]) -> None:
        self.name, self.known = name, tuple(known)
        self.suggestions = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        super().__init__(file, None, None, f"no node named {show(name)}{hint(name, known)}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.name, self.known))


def show(value: object, limit: int = 60) -> str:
    """repr() of a user value, shortened: it is quoted, escaped (one line) and bounded."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def hint(word: str, known: Collection[str]) -> str:
    """'; did you mean ...?' for close matches, else a short list of what is known."""
    close = difflib.get_close_matches(word, list(known), n=3, cutoff=0.6)
    if close:
        shown = [show(c) for c in close]
        listed = ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else shown[0]
        return f"; did you mean {listed}?"
    if not known:
        return " (none defined)"
    names = sorted(known)
    listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f" (known: {listed})"


def toml_type(value: object) -> str:
    """The TOML name of a decoded value's type, for 'must be X, got Y' messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dt.date | dt.time):
        return "date/time"
    return {str: "string", int: "integer", float: "float"}.get(type(value), type(value).__name__)


def locate(loc: Sequence[str | int], data: Any) -> tuple[str, str | None]:
    """Split a pydantic loc into (entry, field): ("dc", 1, "node", 3, "pool") becomes
    ("dc[1] 'xining' node[3] 'xn-04'", "pool"); names come from the raw TOML data."""
    if len(loc) <= 1:
        return "top level", _field(loc)
    if loc[0] in SECTIONS:
        return f"[{loc[0]}]", _field(loc[1:])
    entry: list[str] = []
    rest = list(loc)
    table: Any = data
    for key in ("dc", "node"):
        if len(rest) >= 2 and rest[0] == key and isinstance(rest[1], int):
            index = rest[1]
            items = table.get(key) if isinstance(table, dict) else None
            table = items[index] if isinstance(items, list) and index < len(items) else None
            entry.append(entry_name(key, index, table))
            rest = rest[2:]
        else:
            break
    if not entry:
        return "top level", _field(loc)
    return " ".join(entry), _field(rest)


def entry_name(key: str, index: int, table: Any) -> str:
    """'dc[1] 'xining'': the index (0-based, as in the file) plus the name when it has one."""
    name = table.get("name") if isinstance(table, dict) else None
    return f"{key}[{index}] {show(name)}" if isinstance(name, str) else f"{key}[{index}]"


def _field(parts: Sequence[str | int]) -> str | None:
    text = ""
    for part in parts:
        if part == "[key]":
            continue  # pydantic's marker for an error in a dict key, not a path part
        if isinstance(part, str) and not part.replace("-", "_").isidentifier():
            part = show(part)  # a key from the file: quoted and escaped, never raw bytes
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "finite_number": "a finite number",
}

_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def explain(error: ErrorDetails, known_keys: Collection[str]) -> str:
    """The message part for one pydantic error; `known_keys` are the valid keys of the table
    the error is in, to suggest the intended key for a typo."""
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    got = f"got {toml_type(value)} {show(value)}"
    if kind in ("missing", "union_tag_not_found"):
        return "required key missing"
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        return "unknown key" + hint(key, known_keys)
    if kind == "literal_error":
        prefix = "key " if error["loc"][-1:] == ("[key]",) else ""
        return f"{prefix}must be {ctx['expected']}, got {show(value)}"
    if kind == "union_tag_invalid":
        key = str(ctx["discriminator"]).strip("'")
        tag = value.get(key, ctx["tag"]) if isinstance(value, dict) else ctx["tag"]
        return f"must be {ctx['expected_tags'].replace(', ', ' or ')}, got {show(tag)}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in _EXPECTED:
        if isinstance(value, dict | list):
            got = f"got {toml_type(value)}"
        return f"must be {_EXPECTED[kind]}, {got}"
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        return f"must be {op} {ctx[key]}, got {show(value)}"
    return f"{error['msg'][:1].lower()}{error['msg'][1:]}, {got}"
