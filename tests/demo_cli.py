"""The demo fleet as scripts and operators meet it: `fleetops demo --serve` in its own process,
`fleetops` commands against its inventory, and a pseudo-terminal for the `[y/N]` prompt.

`serve(...)` is a context manager yielding a Demo; its methods are the read commands a test
needs (jobs, admin states, plans) and `fo(...)` for anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FLEETOPS = str(Path(sys.executable).parent / "fleetops")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


@dataclass
class Demo:
    inventory: str

    def fo(self, *args: str, inventory: str | None = None, timeout: float = 120,
           **kw) -> subprocess.CompletedProcess:
        return subprocess.run([FLEETOPS, "--inventory", inventory or self.inventory, *args],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kw)

    def start(self, *args: str, inventory: str | None = None) -> subprocess.Popen:
        """A command started now, not waited for (two operators at the same moment)."""
        return subprocess.Popen([FLEETOPS, "--inventory", inventory or self.inventory, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)

    def json(self, *args: str, inventory: str | None = None):
        r = self.fo(*args, "--json", inventory=inventory)
        assert r.returncode in (0, 1), r.stdout + r.stderr
        return json.loads(r.stdout)

    def jobs(self) -> dict[str, dict]:
        return {j["id"]: j for j in self.json("jobs")}

    def nodes(self) -> dict[str, dict]:
        return {n["name"]: n for n in self.json("nodes")}

    def admin(self, node: str) -> str:
        return self.nodes()[node]["admin"]

    def variant(self, tmp: Path, *, console: str = "", policy: str = "",
                fresh_logs: bool = False) -> str:
        """A copy of the demo's inventory with more [console] / [policy] keys (and, with
        `fresh_logs`, a journal and audit log of its own); returns its path."""
        text = Path(self.inventory).read_text()
        if fresh_logs:
            text = re.sub(r'journal_path = "[^"]*"', f'journal_path = "{tmp / "journal.db"}"',
                          text)
            text = re.sub(r'audit_path = "[^"]*"', f'audit_path = "{tmp / "audit.db"}"', text)
        if console:
            text = text.replace("[console]\n", f"[console]\n{console}\n", 1)
        if policy:
            text += f"\n[policy]\n{policy}\n"
        path = tmp / "inventory.toml"
        path.write_text(text)
        return str(path)


@contextlib.contextmanager
def serve(*, nodes: int = 24, devices: int = 8, seed: int = 3, interval: float = 0.5
          ) -> Iterator[Demo]:
    p = subprocess.Popen([FLEETOPS, "demo", "--serve", "--nodes", str(nodes), "--devices",
                          str(devices), "--interval", str(interval), "--seed", str(seed)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert p.stdout is not None
        path = p.stdout.readline().strip()
        assert path, "the demo server printed no inventory"
        yield Demo(path)
    finally:
        p.terminate()
        p.wait(timeout=10)


class Terminal:
    """A command on a pseudo-terminal: what an operator at the prompt sees and types."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     close_fds=True, env=env)
        os.close(slave)
        self.seen = ""

    def read_until(self, text: str, timeout: float = 90) -> str:
        """Everything printed until `text` appears (colours stripped); fails past `timeout`."""
        start = len(self.seen)
        deadline = time.monotonic() + timeout
        while text not in self.seen[start:]:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.master], [], [], max(0.0, left))
            if not ready:
                raise AssertionError(f"no {text!r} within {timeout}s; saw:\n{self.seen[start:]}")
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the command exited
                chunk = b""
            if not chunk:
                raise AssertionError(f"exited before {text!r}; saw:\n{self.seen[start:]}")
            self.seen += ANSI.sub("", chunk.decode("utf-8", "replace"))
        return self.seen[start:]

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """Read to the end; (exit status, what it printed since the last read)."""
        start = len(self.seen)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                self.seen += ANSI.sub("", chunk.decode("utf-8", "replace"))
            elif self.proc.poll() is not None:
                break
        os.close(self.master)
        return self.proc.wait(timeout=max(1.0, deadline - time.monotonic())), self.seen[start:]
