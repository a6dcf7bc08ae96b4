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

MANY = 1000  # "any number of arguments"


@dataclass(frozen=True)
class CommandSpec:
    name: str
    arg: str | None  # what the arguments are called, for help; None = no argument
    help: str
    aliases: tuple[str, ...] = ()
    nargs: tuple[int, int] | None = None  # (min, max); default: none, or exactly one
    dangerous: bool = False  # changes the fleet: refused in read-only mode

    @property
    def arg_range(self) -> tuple[int, int]:
        if self.nargs is not None:
            return self.nargs
        return (0, 0) if self.arg is None else (1, 1)


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("fleet", None, "the Fleet view: one panel per data center", ("f",)),
    CommandSpec("nodes", None, "every node in one table", ("n", "no")),
    CommandSpec("jobs", None, "jobs, their placement and what looks wrong", ("j", "job")),
    CommandSpec("events", None, "XID, ECC and health events, newest first", ("e", "ev")),
    CommandSpec("audit", None, "the audit log of every action, newest first", ("au",)),
    CommandSpec("dc", "NAME", "the nodes of one data center"),
    CommandSpec("node", "NAME", "one node: devices, processes, events, jobs"),
    CommandSpec("cordon", "NODE…", "stop new placements on nodes", nargs=(1, MANY),
                dangerous=True),
    CommandSpec("uncordon", "NODE…", "allow placements on cordoned nodes again",
                nargs=(1, MANY), dangerous=True),
    CommandSpec("drain", "NODE…", "move every job off nodes, keep them out of service",
                nargs=(1, MANY), dangerous=True),
    CommandSpec("resume", "NODE…", "return drained or cordoned nodes to service",
                nargs=(1, MANY), dangerous=True),
    CommandSpec("move", "JOB… POOL", "move jobs to a pool (nvidia, domestic)",
                nargs=(2, MANY), dangerous=True),
    CommandSpec("evacuate", "DC [POOL]", "cordon a data center (or its pool), move its jobs out",
                nargs=(1, 2), dangerous=True),
    CommandSpec("plan", "resume|rollback ID", "finish or undo a journaled plan", nargs=(2, 2),
                dangerous=True),
    CommandSpec("proposals", None, "review the newest proposed drain (also D)", ("prop",)),
    CommandSpec("theme", "NAME", "switch the colour theme"),
    CommandSpec("help", None, "every key and command", ("h", "?")),
    CommandSpec("q", None, "quit", ("quit", "q!", "exit")),
)
_BY_NAME = {c.name: c for c in COMMANDS}
_ALIASES = {a: c.name for c in COMMANDS for a in c.aliases}
NODE_COMMANDS = ("cordon", "uncordon", "drain", "resume")


class CommandError(ValueError):
    """A command that cannot run; the message is shown to the user."""


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...] = ()

    @property
    def arg(self) -> str:
        return self.args[0] if self.args else ""

    @property
    def spec(self) -> CommandSpec:
        return _BY_NAME[self.name]


def parse_command(text: str) -> Command:
    """`nodes`, `dc xining`, `:move j-1 domestic` -> Command; CommandError otherwise."""
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
    low, high = spec.arg_range
    if high == 0 and args:
        raise CommandError(f":{name} takes no argument")
    if not low <= len(args) <= high:
        raise CommandError(f"usage: :{name} {spec.arg}")
    if name == "plan":
        verb = args[0].lower()
        if verb not in ("resume", "rollback") or not args[1].isdigit():
            raise CommandError("usage: :plan resume ID or :plan rollback ID")
        args = [verb, args[1]]
    if name == "move" and args[-1] not in ("nvidia", "domestic"):
        raise CommandError("usage: :move JOB… POOL (the pool: nvidia or domestic)")
    if name == "evacuate" and len(args) == 2 and args[1] not in ("nvidia", "domestic"):
        raise CommandError("usage: :evacuate DC [POOL] (the pool: nvidia or domestic)")
    return Command(name, tuple(args))


def completions(value: str, names: Callable[[str, int], list[str]]) -> list[str]:
    """Whole-line completions of what was typed: command names, then arguments
    (`names(command, position)` lists what the argument at that position can be)."""
    words = value.split(" ")
    if len(words) == 1:
        return [c.name for c in COMMANDS]
    head = " ".join(words[:-1])
    command = _ALIASES.get(words[0], words[0])
    return [f"{head} {n}" for n in names(command, len(words) - 2)]


def suggest(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


class FleetCommands(Provider):
    """Views, data centers, themes, nodes and actions in the palette, running `:` commands."""

    @property
    def fleet_app(self) -> FleetApp:
        return cast("FleetApp", self.app)

    def _entries(self, query: str = "", with_nodes: bool = False) -> Iterator[
            tuple[str, str, str]]:
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
        if app.read_only or not app.operations.attached:
            return
        # Actions per node only once the query names the action: 4 x 10,000 entries
        # scored on every key would make the palette crawl.
        first = query.strip().lstrip(":").split(" ")[0].lower()
        for action in NODE_COMMANDS:
            help_text = _BY_NAME[action].help.capitalize()
            if len(first) >= 2 and action.startswith(first):
                for name in app.fleet.nodes:
                    yield f":{action} {name}", help_text, f"{action} {name}"
        if len(first) >= 2 and "evacuate".startswith(first):
            for dc in app.fleet.dc_meta:
                yield f":evacuate {dc}", _BY_NAME["evacuate"].help.capitalize(), f"evacuate {dc}"

    async def discover(self) -> Hits:
        for title, help_text, command in self._entries():
            yield DiscoveryHit(title, partial(self.fleet_app.run_command, command),
                               help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, command in self._entries(query, with_nodes=True):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title),
                          partial(self.fleet_app.run_command, command), help=help_text)
