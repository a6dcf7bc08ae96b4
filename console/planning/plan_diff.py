"""What differs between a plan and the same request planned again: what the CLI prompt and the
TUI preview say before they ask again ("the fleet changed since this plan was made"). Pure."""

from __future__ import annotations

from console.planning.outcome import describe
from console.planning.plan import NODE_ACTIONS, Plan, Step


def _key(step: Step) -> tuple[str, str]:
    return ("node", step.node or "") if step.action in NODE_ACTIONS else ("job", step.job or "")


def plan_changes(old: Plan, new: Plan) -> list[str]:
    """A sentence per step that is new, gone or different, and per guardrail change."""
    before = {_key(s): s for s in old.steps}
    after = {_key(s): s for s in new.steps}
    out = []
    for key, s in after.items():
        o = before.get(key)
        if o is None:
            out.append(f"new step: {describe(s)}")
        elif (o.action, o.target, o.target_pool) != (s.action, s.target, s.target_pool):
            out.append(f"now {describe(s)} (was {describe(o)})")
        elif o.seen != s.seen and o.seen is not None:
            out.append(f"{s.node} is {s.seen} now (was {o.seen} when planned)")
    out += [f"no longer needed: {describe(o)}" for key, o in before.items() if key not in after]
    out += [f"now trips {g}" for g in new.guardrails if g not in old.guardrails]
    out += [f"no longer trips {g}" for g in old.guardrails if g not in new.guardrails]
    return out
