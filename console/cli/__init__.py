"""`fleetops` on the command line: the read commands, the operations commands and the
entry point. No Textual here (the TUI is started lazily)."""

from console.cli.main import main

__all__ = ["main"]
