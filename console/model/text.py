"""Neutralise node-supplied text before it reaches a terminal.

Anything a node sends (process names, model names, messages, error text) is untrusted: it may
carry escape sequences that recolour or clear the screen, set the window title (OSC 0/2),
plant hyperlinks (OSC 8), or Rich markup that would restyle our own output. `clean` removes
every control sequence and control character; callers then render the result as plain
`rich.text.Text` (never as markup), or pass it through `markup` when it must sit inside a
markup string.
"""

from __future__ import annotations

import re

from rich.markup import escape

# ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), and the other
# two-byte escapes; plus the C1 forms of CSI/OSC (0x9b, 0x9d). Then any other control char.
_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"          # CSI
    r"|\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, terminated or not
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, SOS, PM, APC
    r"|\x1b.?"                            # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]?"            # C1 CSI
    r"|\x9d[^\x07\x9c]*(?:\x07|\x9c)?"    # C1 OSC
)

MAX_LEN = 256


def clean(text: object, max_len: int = MAX_LEN) -> str:
    """Printable text only: control sequences removed, other control characters shown as '?'.

    Also drops bidirectional overrides (which can make text read differently from what it
    is) and truncates to `max_len` characters with an ellipsis.
    """
    s = text if isinstance(text, str) else str(text)
    if not s.isprintable():  # the fast path: almost all text is already printable
        s = _SEQUENCES.sub("", s)
        # Whatever is still not printable (controls, bidi overrides, unassigned code points)
        # is shown as '?', so the reader sees that something was there.
        s = "".join(ch if ch.isprintable() else "?" for ch in s)
    if len(s) > max_len:
        s = s[: max_len - 1] + "…"
    return s


def markup(text: object, max_len: int = MAX_LEN) -> str:
    """`clean`, then escaped for use inside a Rich markup string."""
    return escape(clean(text, max_len))
