"""Collectors: one per accelerator family, behind one interface (see base.py)."""
