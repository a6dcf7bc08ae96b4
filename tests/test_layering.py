"""`agents/` stands alone: it never imports the console, Textual or Rich (it runs on GPU nodes,
installed without the console's packages: tests/test_packaging.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

AGENTS = Path(__file__).parents[1] / "agents"
FORBIDDEN = ("console", "textual", "asyncssh", "pydantic", "rich")


def test_no_agent_module_imports_the_console_or_textual():
    offenders = []
    for path in AGENTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_streaming_loads_neither_rich_nor_the_console():
    code = (
        "import sys, agents.cli, agents.stream, agents.sampler, agents.collectors.sim;"
        "bad=[m for m in sys.modules if m.split('.')[0] in"
        " ('console','textual','rich','pydantic','asyncssh')];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- the console imports only downward -------------------------------------------------------

CONSOLE = Path(__file__).parents[1] / "console"
# Pure model and rules first, then I/O, then what runs operations, then front ends. A module
# may import its own layer and the layers below, never above.
LAYERS: dict[str, int] = {
    "model": 0,  # the fleet, inventory, jobs, what looks wrong: pure
    "planning": 1,  # plans, planner, guardrails, re-checks: pure
    "state": 2, "engines": 2, "telemetry": 2,  # I/O: our files, schedulers, the fleet
    "ops": 3,  # execution: executor, rollback, sessions
    "demo": 4,  # the simulated fleet (uses the embedded engine and the agent's simulator)
    "cli": 5, "tui": 5, "entry": 5,  # front ends
}
PURE = ("model", "planning")  # no Textual, no SSH, no sockets
# Front ends calling each other: `fleetops` without a command starts the TUI; the entry
# point (which checks the console's packages) hands over to the CLI.
ALLOWED = {("cli", "console.tui.run"), ("entry", "console.cli")}


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "console" and len(parts) > 1 and parts[1] in LAYERS else None


def test_every_console_module_is_in_a_layer():
    unplaced = [str(p.relative_to(CONSOLE)) for p in CONSOLE.rglob("*.py")
                if p.relative_to(CONSOLE).parts[0].removesuffix(".py") not in LAYERS
                and p.name != "__init__.py"]
    assert unplaced == []


def test_the_console_imports_only_downward():
    offenders = []
    for path in CONSOLE.rglob("*.py"):
        rel = path.relative_to(CONSOLE).parts
        own = rel[0].removesuffix(".py")
        if own not in LAYERS:
            continue
        for name in _imports(path):
            other = _layer(name)
            if other is None or any(own == a and name.startswith(b) for a, b in ALLOWED):
                continue
            if LAYERS[other] > LAYERS[own] or (LAYERS[other] == LAYERS[own] == 5
                                                and other != own):
                offenders.append(f"{'/'.join(rel)} imports {name}")
    assert sorted(set(offenders)) == []


def test_the_pure_layers_do_no_io():
    io = ("textual", "asyncssh", "socket", "subprocess", "sqlite3", "asyncio")
    offenders = [f"{p.relative_to(CONSOLE)}: {n}" for layer in PURE
                 for p in (CONSOLE / layer).rglob("*.py") for n in _imports(p)
                 if n.split(".")[0] in io]
    assert offenders == []
