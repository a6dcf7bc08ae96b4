"""Workload operations: the job model, the planner, engines, journaled execution, audit."""
