"""The operations commands of `fleetops`: cordon, uncordon, drain, resume, move, plan, jobs,
audit. Every change goes plan -> preview -> confirm -> journaled execution -> audit.

Exit codes: 0 done, 1 plan impossible (reasons printed) or the audit log fails verification,
2 usage error or refusal (read-only, no terminal to confirm on, a guardrail, a plan another
operator holds), 3 partly done (what was and was not done printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from console.model.placement import fmt_placement
from console.model.text import clean
from console.planning.outcome import Outcome
from console.planning.plan import Plan, Step

# The exit codes of every `fleetops` command (README: "exit codes").
EXIT_OK, EXIT_IMPOSSIBLE, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERNAL = 0, 1, 2, 3, 4
DANGEROUS = frozenset({"cordon", "uncordon", "drain", "resume", "move"})


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0 (a usage error otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"must be in (0, 86400] seconds, got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


class Refused(Exception):
    """The command will not run (read-only, no confirmation possible); exit 2."""


# -- parser ---------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, *, change: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    if change:
        p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p.add_argument("--force", action="store_true",
                       help="run even over a guardrail ([policy]); needs --reason, audited")
    p.add_argument("--timeout", type=positive_seconds, default=10.0, metavar="S",
                   help="how long nodes get to answer while planning (default 10)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    for name, text in (("cordon", "stop new placements on nodes"),
                       ("uncordon", "allow placements on cordoned nodes again"),
                       ("drain", "move every job off nodes, then keep them out of service"),
                       ("resume", "return drained or cordoned nodes to service")):
        p = sub.add_parser(name, help=text)
        p.add_argument("nodes", nargs="+", metavar="NODE")
        p.add_argument("--reason", default="", help="why (required for drain)")
        _common(p)
    m = sub.add_parser("move", help="move jobs to the other pool")
    m.add_argument("jobs", nargs="+", metavar="JOB")
    m.add_argument("--to-pool", required=True, choices=["nvidia", "domestic"])
    m.add_argument("--reason", default="", help="why (required)")
    _common(m)

    plan = sub.add_parser("plan", help="preview a drain, move or evacuation; resume or roll "
                                       "back a journaled plan")
    psub = plan.add_subparsers(dest="plan_command", required=True)
    d = psub.add_parser("drain", help="where each job of these nodes would go")
    d.add_argument("nodes", nargs="+", metavar="NODE")
    pm = psub.add_parser("move", help="where these jobs would go in the other pool")
    pm.add_argument("jobs", nargs="+", metavar="JOB")
    pm.add_argument("--to-pool", required=True, choices=["nvidia", "domestic"])
    ev = psub.add_parser("evacuate", help="move every job out of a data center (or its pool)")
    ev.add_argument("--dc", required=True)
    ev.add_argument("--pool", choices=["nvidia", "domestic"])
    for p in (d, pm, ev):
        p.add_argument("--reason", default="")
        _common(p, change=False)
    ls = psub.add_parser("list", help="journaled plans, unfinished first")
    ls.add_argument("--json", action="store_true")
    for verb in ("resume", "rollback"):
        r = psub.add_parser(verb, help=f"{verb} a journaled plan")
        r.add_argument("plan_id", type=int, metavar="ID")
        r.add_argument("--yes", action="store_true")
        r.add_argument("--json", action="store_true")
        r.add_argument("--timeout", type=positive_seconds, default=10.0, metavar="S",
                       help="how long nodes get to answer when re-planning (default 10)")

    j = sub.add_parser("jobs", help="jobs and where they run")
    j.add_argument("--pool", choices=["nvidia", "domestic"])
    j.add_argument("--node", help="only jobs placed on this node")
    j.add_argument("--json", action="store_true")
    a = sub.add_parser("audit", help="the audit log of every action; `audit verify` checks "
                                     "its hash chain")
    a.add_argument("verb", nargs="?", choices=["verify"],
                   help="verify: check every entry's hash and the chain (exit 1 if broken)")
    a.add_argument("--since", type=float, metavar="UNIX_TS")
    a.add_argument("--limit", type=positive_int, metavar="N", help="only the latest N")
    fmt = a.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="a JSON list")
    fmt.add_argument("--jsonl", action="store_true", help="JSON lines (export)")


# -- shapes ---------------------------------------------------------------------------------


def placement_json(placement) -> list[dict[str, Any]]:
    from console.model.placement import to_json

    return to_json(placement)


def job_json(job) -> dict[str, Any]:
    return {"id": job.id, "name": job.name, "owner": job.owner, "pool": job.pool,
            "state": job.state, "runtime": job.runtime, "priority": job.priority,
            "nodes": job.nodes, "devices_per_node": job.devices_per_node,
            "mem_per_device_mib": job.mem_per_device_mib,
            "allowed_regions": list(job.allowed_regions) if job.allowed_regions else None,
            "placement": placement_json(job.placement)}


def step_json(step: Step) -> dict[str, Any]:
    return {"action": step.action, "job": step.job, "node": step.node,
            "source": placement_json(step.source), "target": placement_json(step.target),
            "target_pool": step.target_pool, "reason": step.reason}


def plan_json(plan: Plan) -> dict[str, Any]:
    return {"kind": plan.kind, "targets": list(plan.targets), "reason": plan.reason,
            "possible": plan.possible, "steps": [step_json(s) for s in plan.steps],
            "notes": list(plan.notes), "guardrails": list(plan.guardrails),
            "made_at": plan.made_at or None}


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    def rows(results):
        return [{"step": r.n + 1, "action": r.step.action, "job": r.step.job,
                 "node": r.step.node, "detail": r.detail} for r in results]
    return {"status": outcome.status, "plan_id": outcome.plan_id, "done": rows(outcome.done),
            "failed": rows(outcome.failed), "pending": rows(outcome.pending),
            "refused": rows(outcome.refused), "replanned": rows(outcome.replanned),
            "conflicts": rows(outcome.conflicts), "skipped": rows(outcome.skipped),
            "notes": list(outcome.notes), "summary": outcome.summary()}


# -- printing -------------------------------------------------------------------------------


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 200)


def print_plan(plan: Plan) -> None:
    from rich.table import Table
    from rich.text import Text

    style = {"move": "green", "requeue": "yellow", "refuse": "bold red"}
    # Every string here may come from a node, a scheduler or an operator: Text, never markup.
    t = Table(title=Text(f"plan: {plan.kind} {' '.join(plan.targets)}"
                         + (f" — {clean(plan.reason, 80)}" if plan.reason else "")),
              title_justify="left")
    for col in ("#", "action", "job / node", "from", "to", "why"):
        t.add_column(col, overflow="fold" if col == "why" else "ellipsis")
    for n, s in enumerate(plan.steps, 1):
        to = fmt_placement(s.target) if s.target else "—"
        if s.target_pool:
            to += f" ({s.target_pool})"
        t.add_row(str(n), Text(s.action, style=style.get(s.action, "cyan")),
                  Text(clean(s.job or s.node or "", 64)),
                  Text(fmt_placement(s.source) if s.source else "—"), Text(to),
                  Text(clean(s.reason, 300)))
    console = _console()
    console.print(t)
    for note in plan.notes:
        console.print(Text(f"note: {clean(note, 300)}", style="yellow"))
    for guard in plan.guardrails:
        console.print(Text(clean(guard, 400), style="bold red"))
    if not plan.possible:
        console.print(Text(f"impossible: {len(plan.refusals)} job(s) have nowhere to go; "
                           "nothing will be done", style="bold red"))


def print_outcome(outcome: Outcome) -> None:
    from rich.text import Text

    console = _console()
    colour = {"done": "green", "rolled-back": "green", "partial": "bold red",
              "impossible": "bold red", "refused": "bold red", "dry-run": "yellow"
              }[outcome.status]
    for i, line in enumerate(outcome.account()):
        console.print(Text(line, style=colour if i == 0 else ""))


# -- running --------------------------------------------------------------------------------


def _confirm(question: str, assume_yes: bool) -> None:
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise Refused("no terminal to confirm on; pass --yes to act without asking")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise Refused("not confirmed; nothing was done")


def _ago(ts: float) -> str:
    age = max(0.0, time.time() - ts)
    return f"{age:.0f}s" if age < 120 else f"{age / 60:.0f} min"


def _confirmed_plan(ops, plan: Plan, args: argparse.Namespace, kind: str) -> Plan:
    """Ask; on yes, look again: if the fleet changed while the question waited (another
    operator drained a target, a job moved), say what changed, show the plan made now and ask
    again. Returns the plan the operator confirmed, as the fleet is now."""
    from console.planning.plan_diff import plan_changes

    while True:
        _confirm(f"Execute this {plan.kind} plan ({len(plan.steps)} steps)?", args.yes)
        if args.yes:
            return plan
        drift = ops.executor.drift(plan)
        fresh = make_plan(ops, args, kind, fleet=getattr(args, "_fleet", None))
        changes = list(dict.fromkeys([*drift, *plan_changes(plan, fresh)]))
        if not changes:
            return plan
        from rich.text import Text

        console = _console()
        console.print(Text(f"The fleet changed since this plan was made ({_ago(plan.made_at)} "
                           "ago); nothing has been done. What changed:", style="bold yellow"))
        for line in changes:
            console.print(Text(f"  - {clean(line, 300)}", style="yellow"))
        console.print(Text("The plan as the fleet is now:", style="bold"))
        print_plan(fresh)
        plan = fresh
        if not plan.possible or (plan.guardrails and not args.force):
            return plan  # _run_plan says why it cannot run, and audits the attempt


def _execute(ops, plan: Plan, args: argparse.Namespace, kind: str) -> int:
    if not args.json and plan.steps:
        print_plan(plan)
    if args.dry_run:
        if args.json:
            print(json.dumps({"plan": plan_json(plan), "outcome": None}, indent=2))
        return EXIT_OK if plan.possible else EXIT_IMPOSSIBLE
    if plan.guardrails and args.force and not args.reason.strip():
        raise Refused("--force needs --reason: why the guardrail may be overridden (audited)")
    if plan.possible and not ops.executor.dry_run and not (plan.guardrails and not args.force):
        plan = _confirmed_plan(ops, plan, args, kind)
    return _run_plan(ops, plan, args)


def _run_plan(ops, plan: Plan, args: argparse.Namespace) -> int:
    """Run (or, impossible, guarded or in dry-run mode, only audit) the plan; print what
    happened; the exit code."""
    from rich.progress import BarColumn, Progress, TextColumn

    force = args.reason if args.force else ""
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), console=_console(stderr=True),
                  disable=args.json or not sys.stderr.isatty() or not plan.possible) as bar:
        task = bar.add_task(plan.kind, total=len(plan.steps))

        def progress(n: int, total: int, step: Step, state: str) -> None:
            bar.update(task, completed=n + (1 if state != "started" else 0), total=total,
                       description=f"{plan.kind}: {step.job or step.node} {state}")

        outcome = ops.executor.run(plan, plan.reason, progress, force=force)
    _print_outcome(outcome, args, plan)
    return outcome.exit_code


def _print_outcome(outcome: Outcome, args: argparse.Namespace, plan: Plan | None = None) -> None:
    if args.json:
        shape = outcome_json(outcome)
        print(json.dumps({"plan": plan_json(plan), "outcome": shape} if plan else shape,
                         indent=2))
    elif outcome.status == "impossible":
        pass  # print_plan said why, in red
    else:
        print_outcome(outcome)


def _snapshot(ops, args: argparse.Namespace):
    from console.telemetry.snapshot import snapshot

    inv = ops.inventory
    # Admin states are not applied here: the planner reads them from the engine itself, at
    # plan time (one `sinfo` with Slurm, and the freshest answer).
    return asyncio.run(snapshot(inv, list(inv.nodes), timeout_s=args.timeout,
                                accept_new_hosts=getattr(args, "accept_new_hosts", False)))


def _check_nodes(inventory, nodes: list[str]) -> None:
    for n in nodes:
        inventory.node(n)  # UnknownNode: one line, exit 2


def _need_reason(kind: str, reason: str) -> None:
    if kind in ("drain", "move", "evacuate") and not reason.strip():
        raise Refused(f"{kind} needs --reason (it goes to the audit log)")


def make_plan(ops, args: argparse.Namespace, kind: str, fleet=None) -> Plan:
    """The plan for the request in `args`; `fleet`: the telemetry snapshot to plan on (taken
    once per command: asking a thousand nodes again for a re-plan costs seconds)."""
    from console.ops.session import NODE_ACTIONS

    inv = ops.inventory
    if kind in (*NODE_ACTIONS, "drain"):
        _check_nodes(inv, args.nodes)
    elif kind == "evacuate":
        inv.filter(dc=args.dc)  # unknown dc: one line, exit 2
    guarded = inv.policy.max_out_of_service_share is not None or \
        inv.policy.max_nodes_per_window is not None
    if kind not in NODE_ACTIONS or (kind == "cordon" and guarded):
        # Placing needs the fleet's telemetry; so do the guardrails (devices per node).
        if fleet is None:
            fleet = args._fleet = _snapshot(ops, args)
        ops.attach(lambda: fleet)  # execution re-checks against the same telemetry
    if kind in NODE_ACTIONS:
        return ops.node_plan(kind, args.nodes, args.reason)
    planner = ops.planner()
    if kind == "drain":
        return ops.finish(planner.drain(args.nodes, args.reason))
    if kind == "move":
        return ops.finish(planner.move(args.jobs, args.to_pool, args.reason))
    if kind == "evacuate":
        return ops.finish(planner.evacuate(args.dc, args.pool, args.reason))
    raise ValueError(kind)


READ_COMMANDS = ("jobs", "audit")


def run(args: argparse.Namespace, inventory) -> int:
    """Dispatch one operations command; `inventory` is already loaded and valid."""
    from console.model.secrets import redact
    from console.ops.session import Ops

    command = args.command
    if getattr(args, "reason", None):
        # A reason is free text that reaches the screen, the journal, the engine and the
        # audit log: secrets pasted into it are masked once, here, before any of them.
        args.reason = redact(args.reason)
    read_only = args.read_only or inventory.console.read_only
    if read_only and (command in DANGEROUS or
                      (command == "plan" and args.plan_command in ("resume", "rollback"))):
        what = command if command != "plan" else f"plan {args.plan_command}"
        raise Refused(f"read-only mode: {what} changes the fleet and is refused")
    # Reading opens the databases read-only: a read-only file, or a plan holding the write
    # lock in another console, does not stop `jobs`, `audit` or `plan list`.
    reading = command in READ_COMMANDS or (command == "plan" and args.plan_command == "list")
    with Ops.open(inventory, readonly=reading) as ops:
        if command == "jobs":
            return _jobs(ops, args)
        if command == "audit":
            return _audit(ops, args)
        if command == "plan":
            return _plan(ops, args)
        if command in DANGEROUS:
            kind = "move" if command == "move" else command
            _need_reason(kind, args.reason)
            return _execute(ops, make_plan(ops, args, kind), args, kind)
    raise ValueError(command)


def _plan(ops, args: argparse.Namespace) -> int:
    sub = args.plan_command
    if sub in ("drain", "move", "evacuate"):
        plan = make_plan(ops, args, sub)
        if args.json:
            print(json.dumps(plan_json(plan), indent=2))
        else:
            print_plan(plan)
        return EXIT_OK if plan.possible else EXIT_IMPOSSIBLE
    if sub == "list":
        return _plan_list(ops, args)
    plan_id = args.plan_id
    jp = ops.journal.load(plan_id)
    if not args.json:
        print_plan(jp.plan)
    held = ops.journal.lease(plan_id)
    if held is not None and held.alive(time.time()):
        from console.state.lease import LeaseHeld

        raise LeaseHeld(held)  # say so before asking, not after the operator said yes
    _confirm(f"{sub.capitalize()} plan {plan_id}?", args.yes)
    if sub == "resume":
        # The telemetry to re-plan on when the fleet changed under the plan.
        fleet = _snapshot(ops, args)
        ops.attach(lambda: fleet)
        outcome = ops.executor.resume(plan_id)
    else:
        outcome = ops.executor.rollback(plan_id)
    _print_outcome(outcome, args)
    return outcome.exit_code


def _plan_list(ops, args: argparse.Namespace) -> int:
    rows = ops.journal.recent(50)
    unfinished = set(ops.journal.unfinished())
    now = time.time()
    leases = {pid: ops.journal.lease(pid) for pid in unfinished}
    running = {pid: lease for pid, lease in leases.items()
               if lease is not None and lease.alive(now)}
    if args.json:
        print(json.dumps([{"id": pid, "ts": ts, "user": user, "kind": kind,
                           "status": status, "unfinished": pid in unfinished,
                           "held_by": None if pid not in running else {
                               "user": running[pid].user, "host": running[pid].host,
                               "pid": running[pid].pid, "since": running[pid].since}}
                          for pid, ts, user, kind, status in rows], indent=2))
        return EXIT_OK
    for pid, _ts, user, kind, status in rows:
        flag = ""
        if pid in running:
            lease = running[pid]
            flag = f"  <- running: {lease.user} on {lease.host}, since {_ago(lease.since)} ago"
        elif pid in unfinished:
            flag = "  <- unfinished: resume or rollback"
        print(f"{pid:>5}  {kind:<9} {status:<12} by {clean(user, 40)}{flag}")
    return EXIT_OK


def _jobs(ops, args: argparse.Namespace) -> int:
    jobs = [j for j in ops.engine.jobs()
            if (args.pool is None or j.pool == args.pool)
            and (args.node is None or args.node in j.placed_nodes)]
    jobs.sort(key=lambda j: j.id)
    if args.json:
        print(json.dumps([job_json(j) for j in jobs], indent=2))
        return EXIT_OK
    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"jobs ({len(jobs)})", title_justify="left")
    for col in ("id", "name", "owner", "pool", "state", "runtime", "devices", "mem/dev",
                "placement"):
        t.add_column(col)
    for j in jobs:
        t.add_row(Text(clean(j.id, 32)), Text(clean(j.name, 40)), Text(clean(j.owner, 20)),
                  j.pool, j.state, Text(clean(j.runtime, 24)), f"{j.nodes}×{j.devices_per_node}",
                  f"{round(j.mem_per_device_mib / 1024)} GiB", Text(fmt_placement(j.placement)))
    _console().print(t)
    return EXIT_OK


def _audit(ops, args: argparse.Namespace) -> int:
    if args.verb == "verify":
        verdict = ops.audit.verify()
        if args.json:
            print(json.dumps({"ok": verdict.ok, "entries": verdict.entries,
                              "first_bad": verdict.first_bad, "problem": verdict.problem}))
        elif verdict.ok:
            print(f"audit log {ops.audit.path}: {verdict.entries} entries, the chain holds")
        if not verdict.ok:
            print(f"fleetops: audit log {ops.audit.path}: {verdict.problem}", file=sys.stderr)
            return EXIT_IMPOSSIBLE
        return EXIT_OK
    broken = ops.audit.check_head()  # a truncated or emptied log must not look empty
    if args.jsonl:
        ops.audit.export_jsonl(sys.stdout, since=args.since, limit=args.limit)
    elif args.json:
        print(json.dumps(ops.audit.entries(since=args.since, limit=args.limit), indent=2,
                         default=str))
    else:
        _audit_table(ops.audit.entries(since=args.since, limit=args.limit))
    if broken:
        print(f"fleetops: audit log {ops.audit.path}: {broken}; run `fleetops audit verify`",
              file=sys.stderr)
        return EXIT_IMPOSSIBLE
    return EXIT_OK


def _audit_table(entries: list[dict]) -> None:
    import datetime as dt

    from rich.table import Table
    from rich.text import Text

    t = Table(title="audit log", title_justify="left")
    for col in ("when", "user", "action", "targets", "reason", "outcome"):
        t.add_column(col, overflow="fold")
    for e in entries:
        when = dt.datetime.fromtimestamp(e["ts"]).strftime("%Y-%m-%d %H:%M:%S")
        who = e["user"] + (f" (sudo from {e['invoked_by']})" if e.get("invoked_by") else "")
        t.add_row(when, Text(clean(who, 48)), e["action"],
                  Text(clean(" ".join(e["targets"]), 200)),
                  Text(clean(e["reason"] or "", 200)), Text(clean(e["outcome"] or "", 200)))
    _console().print(t)
