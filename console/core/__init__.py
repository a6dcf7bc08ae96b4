"""Console core: configuration and fleet model shared by the TUI and the CLI."""
