"""Nothing a node sends reaches the terminal unescaped: the CLI's tables (in a pty, so Rich
styles them), its JSON, and the TUI in a real terminal (tmux), checked on the rendered screen,
on the raw bytes the terminal received and on the terminal's own state (its window title).

The escapes node (tests/hostile_agents.py) puts screen clears, colours, an OSC 0 window title,
an OSC 8 hyperlink and Rich markup (`[bold red]x[/]`, `[link=http://evil]y[/link]`) into its
hostname, versions, model names, process names, health reasons and event messages.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import hostile_agents
import pytest
import sshd
from conftest import require
from sshd import SshdFleet

FLEETOPS = str(Path(sys.executable).parent / "fleetops")
NAMES = ("escapes", "honest-1", "flood", "binary")
LITERAL_MARKUP = b"[bold red]x[/]"
# Bytes that must never come from a node: any OSC (title, hyperlink, clipboard...), BEL, a
# screen clear, the title text itself, and C1 controls (UTF-8 encoded).
OSC = re.compile(rb"\x1b\][^\x07\x1b]*")
SGR = re.compile(rb"\x1b\[[0-9;]*m")
C1 = re.compile(rb"\xc2[\x80-\x9f]")
TEXTUAL_POINTER = re.compile(rb"\x1b\]22;[a-z-]*(?:\x07|\x1b\\)")


@pytest.fixture(scope="module")
def escapes_fleet(tmp_path_factory):
    """(SshdFleet, inventory): the escapes node, an honest one, a flood and a binary node."""
    sshd.require_sshd()
    root = tmp_path_factory.mktemp("escapes")
    fleet = SshdFleet(root / "sshd", len(NAMES)).start()
    try:
        yield fleet, hostile_agents.write_inventory(fleet, root / "inventory.toml", NAMES)
    finally:
        fleet.stop()


def run_in_pty(argv: list[str], *, cols: int = 250, rows: int = 60,
               timeout: float = 60) -> tuple[int, bytes]:
    """Run `argv` on a fresh pseudo-terminal of cols x rows; (exit status, bytes it wrote)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(timeout=max(1.0, deadline - time.monotonic())), bytes(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def assert_no_node_escapes(raw: bytes) -> None:
    assert b"PWNED" not in raw
    assert b"\x07" not in raw
    assert b"\x1b[2J" not in raw
    assert not C1.search(raw)
    assert not OSC.findall(raw), OSC.findall(raw)[:3]
    # What is left once the styles are gone is plain text: no escape sequence at all.
    assert b"\x1b" not in SGR.sub(b"", raw), SGR.sub(b"", raw)[:200]



@pytest.mark.sshd
@pytest.mark.parametrize("command", [
    c for c in ("nodes", "devices", "events")])
def test_tables_in_a_terminal_show_node_text_neutralised(escapes_fleet, command):
    _, inv = escapes_fleet
    status, raw = run_in_pty([FLEETOPS, "--inventory", str(inv), command, "--timeout", "10"])
    assert status == 3, raw[-500:]  # the binary node never answers
    assert b"escapes" in raw
    assert command == "events" or b"honest-1" in raw  # the honest node has no events
    assert SGR.search(raw), "no styles at all: the check below would prove nothing"
    assert_no_node_escapes(raw)
    assert LITERAL_MARKUP in raw  # markup shown as the text it is


@pytest.mark.sshd
@pytest.mark.parametrize("command", ["nodes", "devices", "events"])
def test_json_escapes_every_control_character(escapes_fleet, command):
    _, inv = escapes_fleet
    r = subprocess.run([FLEETOPS, "--inventory", str(inv), command, "--json", "--timeout", "10"],
                       capture_output=True, timeout=60)
    assert r.returncode == 3, r.stderr
    assert b"\x1b" not in r.stdout and b"\x07" not in r.stdout and not C1.search(r.stdout)
    assert b"\x1b" not in r.stderr
    data = json.loads(r.stdout)
    assert data
    text = json.dumps(data, ensure_ascii=False)
    assert "[bold red]x[/]" in text  # still there, as data


# -- the TUI in a real terminal -------------------------------------------------------------------


class Tmux:
    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                           text=True, timeout=30)
        if check and r.returncode:
            raise AssertionError(f"tmux {' '.join(args)}: {r.stderr}")
        return r.stdout

    def has_session(self, name: str) -> bool:
        return subprocess.run(["tmux", "-S", str(self.socket), "has-session", "-t", name],
                              capture_output=True, timeout=30).returncode == 0

    def screen(self, target: str = "console") -> str:
        return self("capture-pane", "-p", "-t", target)

    def until(self, predicate, what: str, timeout: float = 20.0, target: str = "console") -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen(target)
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never showed {what}:\n{text}")
            time.sleep(0.1)

    def command(self, text: str) -> None:
        """A `:` command typed the way a person types it."""
        self("send-keys", "-t", "console", ":")
        time.sleep(0.3)
        self("send-keys", "-t", "console", "-l", text)
        self("send-keys", "-t", "console", "Enter")


def title_of(tmux: Tmux, target: str) -> tuple[str, str]:
    out = tmux("display-message", "-p", "-t", target, "#{pane_title}\t#{window_name}")
    title, name = out.rstrip("\n").split("\t")
    return title, name


@pytest.mark.sshd
def test_tui_in_a_real_terminal_shows_node_text_neutralised(escapes_fleet, tmp_path):
    require("tmux", shutil.which("tmux") is not None, "apt-get install tmux")
    _, inv = escapes_fleet
    tmux = Tmux(tmp_path / "tmux.sock")
    raw = tmp_path / "raw.bin"
    app = f"sleep 0.5; exec env TERM=xterm-256color {FLEETOPS} --inventory {inv}"
    try:
        # -f /dev/null: tmux defaults, not the runner's config. The app starts after a beat so
        # pipe-pane records every byte it writes.
        tmux("-f", "/dev/null", "new-session", "-d", "-s", "console", "-x", "120", "-y", "40",
             "sh", "-c", app)
        tmux("pipe-pane", "-o", "-t", "console", f"cat >> {raw}")
        # A control: the same title escape, printed raw, does set a pane's title here.
        tmux("new-session", "-d", "-s", "control", "sh", "-c",
             "printf 'x\\033]0;PWNED-TITLE\\007y\\n'; sleep 60")
        deadline = time.monotonic() + 10
        while title_of(tmux, "control")[0] != "PWNED-TITLE":
            assert time.monotonic() < deadline, "tmux ignores OSC 0: the title check is void"
            time.sleep(0.1)

        tmux.until(lambda s: "3 live" in s, "three live nodes")
        tmux.command("node escapes")
        # Escapes gone, markup shown as the text it is (notifications may cover the right).
        tmux.until(lambda s: "PROCESSES" in s and "procevillink[bold red" in s
                   and "[bold red]x[/]" in s, "the escapes node's processes, neutralised")
        started = time.monotonic()
        tmux.command("events")
        screen = tmux.until(lambda s: "xid 13" in s and "[bold red]x[/]" in s, "the events")
        assert time.monotonic() - started < 5, "the console is slow to answer keys"
        tmux.command("nodes")
        screen = tmux.until(lambda s: "protocol-e" in s and "flood" in s, "the nodes table")
        assert "honest-1" in screen

        title, name = title_of(tmux, "console")
        assert "PWNED" not in title and "PWNED" not in name, (title, name)
        # The screen with its attributes: no trace of the title. (tmux 3.3 keeps no
        # hyperlinks in capture-pane -e, so links are checked on the raw bytes below.)
        assert "PWNED" not in tmux("capture-pane", "-p", "-e", "-t", "console")
        # The terminal itself received no title, link, bell or screen clear from the node.
        data = raw.read_bytes()
        assert data, "pipe-pane recorded nothing"
        assert b"PWNED" not in data
        ours = TEXTUAL_POINTER.sub(b"", data)  # Textual's own OSC 22 (mouse pointer shape)
        assert b"\x07" not in ours
        assert not OSC.findall(ours), OSC.findall(ours)[:3]
        # Textual repaints the alternate screen cell by cell and never sends ED 2 (clear
        # screen) itself, so one here would be the node's.
        assert b"\x1b[2J" not in data
        assert not C1.search(data)

        tmux("send-keys", "-t", "console", "q")
        deadline = time.monotonic() + 10
        while tmux.has_session("console"):
            assert time.monotonic() < deadline, "q did not quit the console"
            time.sleep(0.1)
    finally:
        tmux("kill-server", check=False)


# -- operator text that reaches the terminal -----------------------------------------------------


def test_a_reason_with_markup_is_printed_as_text(tmp_path):
    inv = tmp_path / "inventory.toml"
    inv.write_text(f"""
[[dc]]
name = "dc1"
region = "r"
country = "XX"
[[dc.node]]
name = "n1"
host = "127.0.0.1"
pool = "nvidia"
[engine]
kind = "embedded"
db_path = "{tmp_path / 'jobs.db'}"
[console]
audit_path = "{tmp_path / 'audit.db'}"
journal_path = "{tmp_path / 'journal.db'}"
""")
    status, raw = run_in_pty([FLEETOPS, "--inventory", str(inv), "cordon", "n1", "--reason",
                              "[link=http://evil]y[/link] [bold red]x[/]", "--dry-run"])
    assert status == 0, raw
    assert_no_node_escapes(raw)
    assert LITERAL_MARKUP in raw
