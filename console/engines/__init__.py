"""Workload engines: where jobs live and how nodes are taken in and out of service
(embedded SQLite, Slurm), each registered by its `[engine] kind`."""
