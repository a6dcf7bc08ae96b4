"""Parsers for what Slurm's client commands print. Pure: text in, data out, no processes.

Shapes (checked against Slurm 22.05.8, openapi v0.0.38, captures in tests/data/slurm/):
* `sinfo --json`: {"meta", "errors": [...], "nodes": [{name, state: "mixed", state_flags: ["DRAIN"],
  reason, partitions, gres, gres_used, ...}]}. While draining a node is "mixed"/"allocated" with
  DRAIN; once drained "idle" with DRAIN.
* `squeue --json`: {"meta", "errors", "jobs": [{job_id, name, user_name, job_state, partition,
  nodes: "npu[01-02]", node_count, tres_per_node: "gres:gpu:h100:2",
  gres_detail: ["gpu:h100:2(IDX:4-5)", ...one per node], comment, admin_comment, ...}]}.
  With `--json` every filter option is ignored: filter here. Finished jobs stay listed for
  MinJobAge seconds.
* A controller that cannot be reached still gives rc 0 and valid JSON, with
  "errors": [{"error": "Unspecified error", ...}] and no items: errors must be checked.
* 23.02+ (data_parser v0.0.39+) is tolerated, not tested against a live Slurm: states become
  lists (["IDLE", "DRAIN"]), numbers become {"set", "infinite", "number"} objects, 24.x
  `sinfo --json` lists {"nodes": {"nodes": [...]}, "node": {"state": [...]}, ...} entries
  under "sinfo" (one per node and partition) instead of "nodes".
* `scontrol -o show node|job`: one line per item of space-separated Key=Value, with values that
  may contain spaces (Reason, OS, Comment): see parse_scontrol.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_HOSTLIST",
    "Gres",
    "SlurmJob",
    "SlurmNode",
    "SlurmParseError",
    "expand_hostlist",
    "parse_gres",
    "parse_gres_list",
    "parse_scontrol",
    "parse_scontrol_line",
    "parse_sinfo_json",
    "parse_squeue_json",
]

MAX_HOSTLIST = 100_000  # a hostile or broken "n[0-999999999]" must not eat the console's memory
FINISHED = frozenset(
    {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
     "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"}
)  # fmt: skip
# Node base states (everything else in a 23.02+ state list is a flag).
BASE_STATES = frozenset(
    {"IDLE", "ALLOCATED", "MIXED", "DOWN", "ERROR", "FUTURE", "UNKNOWN", "ALLOC", "MIX"}
)


class SlurmParseError(ValueError):
    """Output that is not what the command prints on success; the message is one line."""


@dataclass(frozen=True, slots=True)
class Gres:
    """One generic resource: `gpu:h100:8`, `gpu:4`, `gpu:h100:6(IDX:0-5)`."""

    name: str
    type: str | None
    count: int
    indices: tuple[int, ...] | None = None  # from "(IDX:...)"; None when not given or N/A

    def spec(self) -> str:
        """As sbatch/scontrol want it: name[:type]:count."""
        return f"{self.name}:{self.type}:{self.count}" if self.type else f"{self.name}:{self.count}"


@dataclass(frozen=True, slots=True)
class SlurmNode:
    name: str
    state: str  # base state, lower case: idle, mixed, allocated, down, ...
    flags: frozenset[str]  # DRAIN, NOT_RESPONDING, COMPLETING, ... (upper case)
    reason: str
    partitions: tuple[str, ...]
    gres: tuple[Gres, ...] = ()
    gres_used: tuple[Gres, ...] = ()

    @property
    def drain(self) -> bool:
        return "DRAIN" in self.flags

    @property
    def busy(self) -> bool:
        """Jobs still hold (part of) the node, or are being cleaned up on it."""
        return self.state in ("mixed", "allocated", "alloc", "mix") or "COMPLETING" in self.flags


@dataclass(frozen=True, slots=True)
class SlurmJob:
    job_id: str
    name: str
    user: str
    state: str  # upper case: RUNNING, PENDING, COMPLETING, ...
    state_reason: str  # None, Resources, JobHeldUser, JobHeldAdmin, BeginTime, ...
    partition: str
    nodes: tuple[str, ...]  # expanded; empty while pending
    node_count: int
    gres: Gres | None  # what the job asked per node (tres_per_node), first GRES
    gres_per_node: tuple[Gres, ...] = ()  # allocated, with indices (gres_detail), node order
    required_nodes: tuple[str, ...] = ()
    comment: str = ""
    admin_comment: str = ""
    restarts: int = 0
    priority: int | None = None
    time_limit_min: int | None = None  # None: unlimited or unknown
    workdir: str = ""
    group: str = ""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def held(self) -> bool:
        return self.state == "PENDING" and (
            self.priority == 0 or self.state_reason in ("JobHeldUser", "JobHeldAdmin")
        )


# --- hostlists ------------------------------------------------------------------------------


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets and parentheses ("a[1,2],b" -> ["a[1,2]", "b"])."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, c in enumerate(text):
        if c in "[(":
            depth += 1
        elif c in "])":
            depth -= 1
            if depth < 0:
                raise SlurmParseError(f"unbalanced {c!r} in {text[:80]!r}")
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise SlurmParseError(f"unbalanced brackets in {text[:80]!r}")
    parts.append(text[start:])
    return parts


_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


def _expand_one(expr: str, budget: int) -> list[str]:
    """One hostname pattern, possibly with several bracket groups ("r[1-2]n[01-02]")."""
    m = expr.find("[")
    if m < 0:
        if "]" in expr:
            raise SlurmParseError(f"unbalanced ']' in {expr[:80]!r}")
        return [expr]
    end = expr.find("]", m)
    if end < 0:
        raise SlurmParseError(f"unbalanced '[' in {expr[:80]!r}")
    prefix, body, rest = expr[:m], expr[m + 1 : end], expr[end + 1 :]
    values: list[str] = []
    for part in body.split(","):
        r = _RANGE.fullmatch(part.strip())
        if not r:
            raise SlurmParseError(f"bad range {part!r} in {expr[:80]!r}")
        lo, hi = r.group(1), r.group(2) or r.group(1)
        if int(hi) < int(lo):
            raise SlurmParseError(f"descending range {part!r} in {expr[:80]!r}")
        if int(hi) - int(lo) + 1 + len(values) > budget:
            raise SlurmParseError(f"hostlist {expr[:80]!r} expands to more than {MAX_HOSTLIST}")
        width = len(lo)  # "01-10" keeps two digits; "1-10" does not pad
        values += [str(i).zfill(width) for i in range(int(lo), int(hi) + 1)]
    tails = _expand_one(rest, max(1, budget // max(1, len(values))))
    out = [f"{prefix}{v}{t}" for v in values for t in tails]
    if len(out) > budget:
        raise SlurmParseError(f"hostlist {expr[:80]!r} expands to more than {MAX_HOSTLIST}")
    return out


def expand_hostlist(text: str | None) -> list[str]:
    """`gpu[01-03,07]` -> gpu01 gpu02 gpu03 gpu07; `a-[1-2],b1` -> a-1 a-2 b1; "" -> []."""
    if text is None:
        return []
    text = text.strip()
    if text in ("", "(null)", "None", "N/A"):
        return []
    names: list[str] = []
    for part in _split_top(text):
        part = part.strip()
        if not part:
            continue
        names += _expand_one(part, MAX_HOSTLIST - len(names))
    return names


# --- GRES -----------------------------------------------------------------------------------


_INDEX_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


def _indices(text: str) -> tuple[int, ...] | None:
    out: list[int] = []
    for part in text.split(","):
        r = _INDEX_RANGE.fullmatch(part.strip())
        if not r:
            return None  # "N/A" and anything odd: unknown, not an error
        lo, hi = int(r.group(1)), int(r.group(2) or r.group(1))
        if hi < lo or hi - lo > 4096:
            return None
        out += range(lo, hi + 1)
    return tuple(out)


def parse_gres(text: str) -> Gres | None:
    """One GRES: `gpu:h100:8`, `gpu:4`, `gpu`, `gres:gpu:4` (22.05 tres_per_node),
    `gres/gpu:4` (23.02+), `gpu:h100:6(IDX:0-5)`, `gpu:h100:8(S:0-1)`; None if empty/N/A."""
    text = text.strip()
    if not text or text in ("N/A", "(null)"):
        return None
    detail = ""
    if "(" in text:
        text, _, detail = text.partition("(")
        detail = detail.rstrip(")")
    for prefix in ("gres:", "gres/"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    parts = text.split(":")
    count = 1  # Slurm's default for a bare name
    if len(parts) > 1 and parts[-1].isdigit():
        count = int(parts.pop())
    elif len(parts) > 1 and re.fullmatch(r"\d+[KMGT]", parts[-1]):
        count = _with_suffix(parts.pop())
    if not parts[0] or len(parts) > 2:
        raise SlurmParseError(f"bad GRES {text[:80]!r}")
    indices = None
    if detail.startswith("IDX:"):
        indices = _indices(detail[4:])
    return Gres(parts[0], parts[1] if len(parts) == 2 and parts[1] else None, count, indices)


def _with_suffix(text: str) -> int:
    return int(text[:-1]) * 1024 ** ("KMGT".index(text[-1]) + 1)


def parse_gres_list(text: str | None) -> tuple[Gres, ...]:
    """`gpu:h100:8,npu:2`; commas inside "(IDX:0-1,4)" belong to the entry."""
    if not text:
        return ()
    out = []
    for part in _split_top(text):
        g = parse_gres(part)
        if g is not None:
            out.append(g)
    return tuple(out)


# --- JSON helpers ---------------------------------------------------------------------------


def _number(value: Any) -> int | None:
    """An int from 22.05's plain numbers or 23.02+'s {"set", "infinite", "number"}."""
    if isinstance(value, Mapping):
        if value.get("infinite") or not value.get("set", True):
            return None
        value = value.get("number")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):  # 24.x: reason {"description", "time", "user"}
        value = value.get("description", "")
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _states(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str)]
    return []


def _load(text: str | bytes, key: str, what: str) -> list[Any]:
    """The `key` list of a Slurm JSON document; SlurmParseError on anything else."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text.strip():
        raise SlurmParseError(f"{what}: empty output")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SlurmParseError(f"{what}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise SlurmParseError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    errors = doc.get("errors") or []
    if errors:
        raise SlurmParseError(f"{what}: {_error_text(errors)}")
    items = doc.get(key)
    if not isinstance(items, list):
        raise SlurmParseError(f"{what}: no {key!r} list in the output")
    return items


def _error_text(errors: Any) -> str:
    if not isinstance(errors, list):
        return _one_line(str(errors))
    said = []
    for e in errors[:3]:
        if isinstance(e, Mapping):
            parts = [str(e[k]) for k in ("description", "error", "source") if e.get(k)]
            number = e.get("error_number", e.get("errno"))
            if number is not None:
                parts.append(f"errno {number}")
            said.append(": ".join(dict.fromkeys(parts)) or "error")
        else:
            said.append(str(e))
    return _one_line("; ".join(said))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- sinfo ----------------------------------------------------------------------------------


def _node_state(states: list[str], extra_flags: Iterable[str]) -> tuple[str, set[str]]:
    """Base state and flags from 22.05's string + state_flags or 23.02+'s list."""
    upper = [s.upper() for s in states]
    base = next((s for s in upper if s in BASE_STATES), upper[0] if upper else "UNKNOWN")
    flags = {s for s in upper if s != base} | {str(f).upper() for f in extra_flags}
    return base.lower(), flags


def parse_sinfo_json(text: str | bytes) -> list[SlurmNode]:
    """Nodes of `sinfo --json`, in output order, each once (partitions merged)."""
    try:
        items = _load(text, "nodes", "sinfo --json")
    except SlurmParseError as exc:
        if "no 'nodes' list" not in str(exc):
            raise
        items = _load(text, "sinfo", "sinfo --json")
        return _parse_sinfo_entries(items)
    nodes: dict[str, SlurmNode] = {}
    for raw in items:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
            raise SlurmParseError("sinfo --json: a node without a name")
        name = raw["name"]
        base, flags = _node_state(_states(raw.get("state")), raw.get("state_flags") or [])
        partitions = raw.get("partitions") or []
        if isinstance(partitions, str):
            partitions = [p for p in partitions.split(",") if p]
        nodes[name] = SlurmNode(
            name=name,
            state=base,
            flags=frozenset(flags),
            reason=_text(raw.get("reason")),
            partitions=tuple(str(p) for p in partitions),
            gres=parse_gres_list(_text(raw.get("gres"))),
            gres_used=parse_gres_list(_text(raw.get("gres_used"))),
        )
    return list(nodes.values())


def _parse_sinfo_entries(items: list[Any]) -> list[SlurmNode]:
    """24.x `sinfo --json`: entries grouped by partition and state, each naming its nodes."""
    nodes: dict[str, SlurmNode] = {}
    for raw in items:
        if not isinstance(raw, Mapping):
            raise SlurmParseError("sinfo --json: an entry that is not an object")
        names = (raw.get("nodes") or {}).get("nodes") or []
        state = (raw.get("node") or {}).get("state")
        partition = _text((raw.get("partition") or {}).get("name"))
        gres = raw.get("gres") or {}
        for name in names:
            base, flags = _node_state(_states(state), ())
            seen = nodes.get(str(name))
            parts = (*seen.partitions, partition) if seen else ((partition,) if partition else ())
            nodes[str(name)] = SlurmNode(
                name=str(name),
                state=base,
                flags=frozenset(flags),
                reason=_text(raw.get("reason")),
                partitions=tuple(dict.fromkeys(p for p in parts if p)),
                gres=parse_gres_list(_text(gres.get("total"))),
                gres_used=parse_gres_list(_text(gres.get("used"))),
            )
    return list(nodes.values())


# --- squeue ---------------------------------------------------------------------------------


def parse_squeue_json(text: str | bytes) -> list[SlurmJob]:
    """Jobs of `squeue --json` (finished ones included: filter with `.finished`)."""
    jobs = []
    for raw in _load(text, "jobs", "squeue --json"):
        if not isinstance(raw, Mapping):
            raise SlurmParseError("squeue --json: a job that is not an object")
        job_id = _number(raw.get("job_id"))
        if job_id is None:
            raise SlurmParseError("squeue --json: a job without a numeric job_id")
        states = _states(raw.get("job_state"))
        requested = parse_gres_list(_text(raw.get("tres_per_node")))
        detail = raw.get("gres_detail") or []
        nodes = tuple(expand_hostlist(_text(raw.get("nodes"))))
        jobs.append(
            SlurmJob(
                job_id=str(job_id),
                name=_text(raw.get("name")),
                user=_text(raw.get("user_name")),
                state=(states[0] if states else "UNKNOWN").upper(),
                state_reason=_text(raw.get("state_reason")),
                partition=_text(raw.get("partition")),
                nodes=nodes,
                node_count=_number(raw.get("node_count")) or len(nodes),
                gres=requested[0] if requested else None,
                gres_per_node=tuple(
                    g for d in detail if isinstance(d, str) for g in parse_gres_list(d)[:1]
                ),
                required_nodes=tuple(expand_hostlist(_text(raw.get("required_nodes")))),
                comment=_text(raw.get("comment")),
                admin_comment=_text(raw.get("admin_comment")),
                restarts=_number(raw.get("restart_cnt")) or 0,
                priority=_number(raw.get("priority")),
                time_limit_min=_number(raw.get("time_limit")),
                workdir=_text(raw.get("current_working_directory")),
                group=_text(raw.get("group_name")),
            )
        )
    return jobs


# --- scontrol -o ----------------------------------------------------------------------------

# A new field starts at a whitespace-separated token "Key=" with a capitalised key
# ("AllocNode:Sid=", "CPUs/Task=", "ReqB:S:C:T="); lower-case "x=y" inside a value stays in it.
_KEY = re.compile(r"(?:(?<=\s)|^)([A-Z][A-Za-z0-9_:/]*)=")
_SET_BY = re.compile(r"\s*\[[^\]@\s]+@[^\]\s]+\]\s*$")  # node Reason's "[root@2026-...]" suffix


def parse_scontrol_line(line: str, tail_keys: Iterable[str] = ()) -> dict[str, str]:
    """`Key=Value Key2=a value with spaces` -> dict. A value runs until the next " Key=".

    `tail_keys`: keys whose value runs to the end of the line whatever it holds; node lines
    end with Reason=, and a reason may contain "State=RESUME" and the like. A value that
    itself contains " Capitalised=" elsewhere (a job Comment) cannot be told apart from a
    field: read those from `--json`.
    """
    tails = set(tail_keys)
    # Field starts; a key seen before is text inside the previous value, not a new field.
    starts: list[tuple[str, int, int]] = []
    for m in _KEY.finditer(line):
        key = m.group(1)
        if any(key == k for k, _, _ in starts):
            continue
        starts.append((key, m.start(), m.end()))
        if key in tails:
            break
    out: dict[str, str] = {}
    for i, (key, _, value_at) in enumerate(starts):
        if key in tails:
            out[key] = _SET_BY.sub("", line[value_at:].rstrip())
            break
        end = starts[i + 1][1] if i + 1 < len(starts) else len(line)
        out[key] = line[value_at:end].strip()
    return out


def parse_scontrol(text: str, kind: str = "node") -> list[dict[str, str]]:
    """`scontrol -o show node` (kind "node") or `show job` (kind "job"): one dict per line."""
    tails = ("Reason",) if kind == "node" else ()
    first = "NodeName" if kind == "node" else "JobId"
    items = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = parse_scontrol_line(line, tails)
        if first not in fields:
            raise SlurmParseError(f"scontrol show {kind}: a line without {first}=: {line[:80]!r}")
        items.append(fields)
    return items
