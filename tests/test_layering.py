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
