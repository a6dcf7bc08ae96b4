"""Telemetry sources: how frames from the fleet reach a FleetState (the agent over SSH,
...), the intake of untrusted bytes, the stale ticker, one-shot snapshots."""
