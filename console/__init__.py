"""fleetops console: inventory, SSH fan-in, fleet state, TUI and operations."""

__version__ = "0.1.0"
