"""Benchmarks: `python -m bench NAME [--quick]`. Each prints a summary, then JSON lines."""
