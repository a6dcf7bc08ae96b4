"""The demo: a simulated multi-region fleet behind a real SSH server on loopback, with
its own embedded engine and job mix."""
