"""`:` commands (parsed here, pure) and the same commands in Textual's command palette."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from console.tui.app import FleetApp


@dataclass(frozen=True)
class CommandSpec:
    name: str
    arg: str | None  # what the argument is called; None = no argument
    help: str
    aliases: tuple[str, ...] = ()


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("fleet", None, "the Fleet view: one panel per data center", ("f",)),
    CommandSpec("nodes", None, "every node in one table", ("n", "no")),
    CommandSpec("jobs", None, "jobs and their placement (with the operations engine)",
                ("j", "job")),
    CommandSpec("events", None, "XID, ECC and health events, newest first", ("e", "ev")),
    CommandSpec("dc", "NAME", "the nodes of one data center"),
    CommandSpec("node", "NAME", "one node: devices, processes, events"),
    CommandSpec("theme", "NAME", "switch the colour theme"),
    CommandSpec("help", None, "every key and command", ("h", "?")),
    CommandSpec("q", None, "quit", ("quit", "q!", "exit")),
)
_BY_NAME = {c.name: c for c in COMMANDS}
_ALIASES = {a: c.name for c in COMMANDS for a in c.aliases}


class CommandError(ValueError):
    """A command that cannot run; the message is shown to the user."""


@dataclass(frozen=True)
class Command:
    name: str
    arg: str = ""


def parse_command(text: str) -> Command:
    """`nodes`, `dc xining`, `:theme fleetops-light` -> Command; CommandError otherwise."""
    words = text.strip().removeprefix(":").split()
    if not words:
        raise CommandError("empty command (try :help)")
    word, args = words[0].lower(), words[1:]
    if word == "node" and not args:
        word = "nodes"  # `:node` alone means the table, as k9s' `:node` does
    name = _ALIASES.get(word, word)
    spec = _BY_NAME.get(name)
    if spec is None:
        close = difflib.get_close_matches(word, [*_BY_NAME, *_ALIASES], n=1)
        hint = f"; did you mean :{close[0]}?" if close else " (try :help)"
        raise CommandError(f"unknown command :{word}{hint}")
    if spec.arg is None and args:
        raise CommandError(f":{name} takes no argument")
    if spec.arg is not None and len(args) != 1:
        raise CommandError(f"usage: :{name} {spec.arg}")
    return Command(name, args[0] if args else "")


def completions(value: str, names: Callable[[str], list[str]]) -> list[str]:
    """Whole-line completions of what was typed: command names, then arguments."""
    words = value.split(" ")
    if len(words) == 1:
        return [c.name for c in COMMANDS]
    head = words[0]
    return [f"{head} {n}" for n in names(_ALIASES.get(head, head))]


def suggest(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


class FleetCommands(Provider):
    """Views, data centers, themes and nodes in the palette, running the `:` commands."""

    @property
    def fleet_app(self) -> FleetApp:
        return cast("FleetApp", self.app)

    def _entries(self, with_nodes: bool) -> Iterator[tuple[str, str, str]]:
        app = self.fleet_app
        for spec in COMMANDS:
            if spec.arg is None:
                yield f":{spec.name}", spec.help.capitalize(), spec.name
        for dc in app.fleet.dc_meta:
            yield f":dc {dc}", f"Nodes of data center {dc}", f"dc {dc}"
        for theme in sorted(app.fleet_themes):
            yield f":theme {theme}", "Switch to this theme", f"theme {theme}"
        if with_nodes:  # 10,000 nodes are for searching, not for the first list
            for name in app.fleet.nodes:
                yield f":node {name}", "Open this node", f"node {name}"

    async def discover(self) -> Hits:
        for title, help_text, command in self._entries(with_nodes=False):
            yield DiscoveryHit(title, partial(self.fleet_app.run_command, command),
                               help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, command in self._entries(with_nodes=True):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title),
                          partial(self.fleet_app.run_command, command), help=help_text)
