"""Workload engines behind one interface: embedded (SQLite) and Slurm."""
