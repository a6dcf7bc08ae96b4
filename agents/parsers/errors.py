"""ParseError: vendor tool output that does not parse, said in one line an operator can act on."""

from __future__ import annotations

SNIPPET_CHARS = 80


def neutralise(text: str, limit: int = SNIPPET_CHARS) -> str:
    """One printable line from untrusted text: controls become visible escapes, then truncate.

    The offending line goes into a message that ends up on a terminal, so an escape sequence
    in it must be shown, never executed.
    """
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text[: limit * 2])
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown


class ParseError(ValueError):
    """Output of `tool` that cannot be read. `line_no` is 1-based; None means the whole output."""

    def __init__(self, tool: str, line_no: int | None, line: str, reason: str) -> None:
        self.tool = tool
        self.line_no = line_no
        self.line = neutralise(line)
        self.reason = reason
        if line_no is None:
            message = f"{tool}: cannot parse output: {reason}"
        else:
            message = f"{tool}: line {line_no}: cannot parse '{self.line}': {reason}"
        super().__init__(message)
