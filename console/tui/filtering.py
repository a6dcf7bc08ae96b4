"""The `/` filter language, pure: free words and `key=value` / `key!=value` terms.

`dc=xining health!=ok pool=domestic gpu` keeps nodes in Xining whose health is not ok, in the
domestic pool, with "gpu" somewhere in their name, data center, models or error. Every part
must hold (AND); `key=a,b` is either value (OR); values may use `*` and `?` globs; matching is
case-insensitive. A mistake (an unknown key, a value no node can have) is a FilterError whose
message is meant for the input line, never a crash.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from console.model.fleet import NodeState
from console.model.states import ADMIN_STATES, FAILED_LINKS, LINK_STATES
from console.model.text import clean

# Links that mean "not answering": `state=down` finds them all, as the status bar counts them.
HEALTH_VALUES = ("ok", "warn", "crit", "none")  # none: the node has not reported yet

NODE_KEYS: dict[str, tuple[str, ...] | None] = {
    # key -> the values it can take (checked so a typo says so), None = free-form
    "dc": None, "pool": ("nvidia", "domestic"),
    "state": (*LINK_STATES, *ADMIN_STATES[1:]), "health": HEALTH_VALUES,
    "model": None, "admin": ADMIN_STATES, "name": None,
}
EVENT_KEYS: dict[str, tuple[str, ...] | None] = {
    "node": None, "dc": None, "severity": ("info", "warn", "crit"),
    "event": ("xid", "ecc-dbe", "row-remap-failure", "device-lost", "health",
              "collector-error"),
}


class FilterError(ValueError):
    """A filter that cannot be applied; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Term:
    key: str
    values: tuple[str, ...]  # lower-cased; a glob when it holds * or ?
    negate: bool = False

    def holds(self, candidates: tuple[str, ...]) -> bool:
        """Whether any candidate matches any value (negated: none does)."""
        hit = any(_match(c.lower(), v) for c in candidates for v in self.values)
        return hit != self.negate


@dataclass(frozen=True, slots=True)
class Filter:
    terms: tuple[Term, ...] = ()
    words: tuple[str, ...] = ()  # lower-cased free words

    def __bool__(self) -> bool:
        return bool(self.terms or self.words)


EMPTY = Filter()


def _match(candidate: str, value: str) -> bool:
    if "*" in value or "?" in value:
        return fnmatch.fnmatchcase(candidate, value)
    return candidate == value


def parse_filter(text: str, keys: dict[str, tuple[str, ...] | None] = NODE_KEYS) -> Filter:
    """Parse filter text against `keys`; FilterError on the first mistake."""
    terms: list[Term] = []
    words: list[str] = []
    for part in text.split():
        key, op, value = _split(part)
        if not op:
            words.append(part.lower())
            continue
        key = key.lower()
        if key not in keys:
            raise FilterError(f"unknown key '{clean(key, 20)}' (keys: {', '.join(keys)})")
        values = tuple(v for v in value.lower().split(",") if v)
        if not values:
            raise FilterError(f"'{key}{op}' needs a value, e.g. {key}{op}{_example(keys[key])}")
        allowed = keys[key]
        if allowed is not None:
            for v in values:
                if not any(_match(a, v) for a in allowed):
                    raise FilterError(f"{key} cannot be '{clean(v, 20)}' "
                                      f"(one of: {', '.join(allowed)})")
        terms.append(Term(key, values, op == "!="))
    return Filter(tuple(terms), tuple(words))


def _split(part: str) -> tuple[str, str, str]:
    for op in ("!=", "="):
        key, sep, value = part.partition(op)
        if sep and key:
            return key, op, value
    return part, "", ""


def _example(allowed: tuple[str, ...] | None) -> str:
    return allowed[0] if allowed else "NAME"


# -- nodes ----------------------------------------------------------------------------------


def node_models(node: NodeState) -> tuple[str, ...]:
    return tuple({d.model: None for d in (node.devices_info or node.samples)})


def node_health(node: NodeState) -> str:
    return node.health if node.reports else "none"


def node_states(node: NodeState) -> tuple[str, ...]:
    """Every state word a node answers to: its link, `down` if failed, its admin state."""
    out = [node.link]
    if node.link in FAILED_LINKS and node.link != "down":
        out.append("down")
    if node.admin != "active":
        out.append(node.admin)
    return tuple(out)


def _node_field(node: NodeState, key: str) -> tuple[str, ...]:
    if key == "dc":
        return (node.dc,)
    if key == "pool":
        return (node.pool,)
    if key == "state":
        return node_states(node)
    if key == "health":
        return (node_health(node),)
    if key == "model":
        return tuple(clean(m, 64) for m in node_models(node))
    if key == "admin":
        return (node.admin,)
    return (node.name,)


def node_matches(f: Filter, node: NodeState) -> bool:
    for term in f.terms:
        if not term.holds(_node_field(node, term.key)):
            return False
    if f.words:
        hay = " ".join((node.name, node.dc, *node_models(node), node.error or "")).lower()
        return all(w in hay for w in f.words)
    return True


# -- events ---------------------------------------------------------------------------------


def event_matches(f: Filter, node: str, dc: str, event) -> bool:
    """`event` is a wire Event from `node` in data center `dc`."""
    fields = {"node": (node,), "dc": (dc,), "severity": (event.severity,),
              "event": (event.event,)}
    for term in f.terms:
        if not term.holds(fields[term.key]):
            return False
    if f.words:
        hay = " ".join((node, dc, event.event, event.message, event.action or "")).lower()
        return all(w in hay for w in f.words)
    return True


# -- jobs -----------------------------------------------------------------------------------

JOB_STATES = ("pending", "running", "requeued", "completed", "failed", "cancelled")
JOB_KEYS: dict[str, tuple[str, ...] | None] = {
    "id": None, "name": None, "owner": None, "pool": ("nvidia", "domestic"),
    "state": JOB_STATES, "runtime": None, "node": None, "flag": ("yes", "no"),
}


def job_matches(f: Filter, job, flagged: bool) -> bool:
    """`job` is an ops Job; `flagged`: whether it carries a flag (no process on a device)."""
    nodes = job.placed_nodes
    fields = {"id": (job.id,), "name": (clean(job.name, 80),), "owner": (clean(job.owner, 40),),
              "pool": (job.pool,), "state": (job.state,), "runtime": (job.runtime,),
              "node": nodes, "flag": ("yes" if flagged else "no",)}
    for term in f.terms:
        if not term.holds(fields[term.key]):
            return False
    if f.words:
        hay = " ".join((job.id, job.name, job.owner, job.runtime, *nodes)).lower()
        return all(w in hay for w in f.words)
    return True


# -- audit ----------------------------------------------------------------------------------

AUDIT_KEYS: dict[str, tuple[str, ...] | None] = {
    "user": None, "action": None, "target": None,
}


def audit_matches(f: Filter, entry: dict) -> bool:
    """`entry` is one dict of Audit.entries()."""
    targets = tuple(str(t) for t in entry.get("targets") or ())
    fields = {"user": (str(entry.get("user", "")),), "action": (str(entry.get("action", "")),),
              "target": targets}
    for term in f.terms:
        if not term.holds(fields[term.key]):
            return False
    if f.words:
        hay = " ".join((str(entry.get("user", "")), str(entry.get("action", "")), *targets,
                        str(entry.get("reason") or ""), str(entry.get("outcome") or ""))).lower()
        return all(w in hay for w in f.words)
    return True
