"""Pure rules of operations: plans, the planner and its checks, guardrails, the re-checks
execution makes, outcomes. No I/O."""
