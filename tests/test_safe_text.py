"""Node-supplied text never reaches a terminal with its control sequences."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from console.model.text import clean, markup

CASES = [
    pytest.param("python train.py", "python train.py", id="plain"),
    pytest.param("\x1b[31mred\x1b[0m", "red", id="sgr-colour"),
    pytest.param("a\x1b[2Jb\x1b[H", "ab", id="clear-screen"),
    pytest.param("\x1b]0;pwned\x07name", "name", id="osc-title-bel"),
    pytest.param("\x1b]2;pwned\x1b\\name", "name", id="osc-title-st"),
    pytest.param("\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\", "click", id="osc8-link"),
    pytest.param("\x9b31mc1", "c1", id="c1-csi"),
    pytest.param("a\rb\nc\td\x00e\x7f", "a?b?c?d?e?", id="control-chars"),
    pytest.param("abc\u202edcba", "abc?dcba", id="bidi-override"),
    pytest.param("\x1b[", "", id="truncated-csi"),
    pytest.param("\x1bP1;2q payload", "", id="dcs-unterminated"),
]


@pytest.mark.parametrize("raw, expected", CASES)
def test_clean(raw, expected):
    assert clean(raw) == expected


def test_long_text_is_truncated():
    assert clean("x" * 1000, 10) == "x" * 9 + "…"


def test_markup_is_escaped():
    out = markup("[bold red]boom[/] [link=http://x]y[/link]")
    console = Console(width=200, record=True, color_system="truecolor")
    console.print(out)
    assert "[bold red]boom[/]" in console.export_text()


@given(st.text())
def test_clean_output_is_always_printable_and_escape_free(s):
    out = clean(s, 10_000)
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
    assert all(ch.isprintable() for ch in out)


def test_rendered_terminal_output_has_no_escape_from_node_text():
    console = Console(width=80, force_terminal=True, color_system=None)
    with console.capture() as cap:
        console.print(Text(clean("\x1b]0;title\x07\x1b[2Jproc")))
    assert "\x1b" not in cap.get()
