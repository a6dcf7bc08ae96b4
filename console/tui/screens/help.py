"""`?`: every key and command, collected from the bindings themselves so it cannot drift."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from console.tui.actions import JOB_ACTIONS, allowed, binding
from console.tui.commands import COMMANDS
from console.tui.filtering import AUDIT_KEYS, EVENT_KEYS, JOB_KEYS, NODE_KEYS

if TYPE_CHECKING:
    from console.tui.app import FleetApp


def _bindings(cls: type) -> list[Binding]:
    return [b for b in Binding.make_bindings(cls.__dict__.get("BINDINGS", []))
            if not b.system and b.description]


def help_sections(app: FleetApp) -> list[tuple[str, list[tuple[str, str]]]]:
    from console.tui.app import FleetApp as AppClass
    from console.tui.screens.audit import AuditScreen
    from console.tui.screens.events import EventsScreen
    from console.tui.screens.fleet import FleetScreen
    from console.tui.screens.jobs import JobsScreen
    from console.tui.screens.node import NodeScreen
    from console.tui.screens.nodes import NodesScreen
    from console.tui.widgets.dc_panel import DcPanel
    from console.tui.widgets.line_table import LineTable

    def keys(bindings: list[Binding]) -> list[tuple[str, str]]:
        # make_bindings splits "right,l" into two bindings: show them on one line again
        grouped: dict[tuple[str, str], list[str]] = {}
        for b in bindings:
            shown = grouped.setdefault((b.action, b.description), [])
            shown.append(app.get_key_display(b))
        return [(" ".join(dict.fromkeys(k)), d) for (_a, d), k in grouped.items()]

    node_actions = [binding(a) for a in allowed(app.read_only)]
    job_actions = [binding(a) for a in allowed(app.read_only, JOB_ACTIONS)]
    palette = Binding(app.COMMAND_PALETTE_BINDING, "command_palette", "Command palette")
    everywhere = [b for b in _bindings(AppClass) if not app.read_only or b.action != "proposals"]
    return [
        ("Everywhere", keys([*everywhere, palette])),
        ("Fleet", keys([*_bindings(FleetScreen), *_bindings(DcPanel)])),
        ("Tables (Nodes, Events, Jobs, Audit)", keys(_bindings(LineTable))),
        ("Nodes", keys([*_bindings(NodesScreen), *node_actions])),
        ("Node", keys([*_bindings(NodeScreen), *node_actions])),
        ("Events", keys(_bindings(EventsScreen))),
        ("Jobs", keys([*_bindings(JobsScreen), *job_actions])),
        ("Audit", keys(_bindings(AuditScreen))),
        ("Commands", [(f":{c.name}" + (f" {c.arg}" if c.arg else ""), c.help)
                      for c in COMMANDS if not (app.read_only and c.dangerous)]),
        ("Filter (/)", [
            ("word", "name, data center, model or error contains it"),
            ("key=value", "nodes: " + ", ".join(NODE_KEYS)),
            ("key!=value", "events: " + ", ".join(EVENT_KEYS)),
            ("", "jobs: " + ", ".join(JOB_KEYS)),
            ("", "audit: " + ", ".join(AUDIT_KEYS)),
            ("a,b  h100*", "either value; * and ? globs"),
        ]),
    ]


def help_content(app: FleetApp) -> Content:
    lines: list[Content] = []
    if app.read_only:
        lines.append(Content.styled("read-only: actions that change the fleet are off",
                                    "bold $text-warning"))
    width = 20
    for title, rows in help_sections(app):
        lines += [Content(""), Content.styled(title, "bold $text-primary")]
        for key, description in rows:
            if len(key) >= width:  # a long command: its description on the next line
                lines.append(Content.styled(f"  {key}", "bold $accent"))
                key = ""
            lines.append(Content.assemble((f"  {key:<{width}}", "bold $accent"), description))
    return Content("\n").join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q,minus", "dismiss", "Close"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 86; max-width: 100%; height: 90%;
        border: round $primary; border-title-color: $text-primary;
        background: $surface; padding: 0 1;
    }
    HelpScreen VerticalScroll { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        app = cast("FleetApp", self.app)
        with Vertical() as box:
            box.border_title = "fleetops keys · Esc to close"
            with VerticalScroll():
                yield Static(help_content(app))
