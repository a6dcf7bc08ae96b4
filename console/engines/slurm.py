"""The Slurm engine: a real Slurm driven through scontrol, squeue --json and sinfo --json.

Commands run through a Runner: LocalRunner (subprocess, no shell) on the controller itself, or
SshRunner (the `ssh` client) on the controller. Every value that reaches a command line is
validated first (node names, job ids, partitions, reasons), and over SSH every argument is
also shlex-quoted, because the remote side runs it through the login shell.

Mapping (Slurm 22.05; scontrol(1), sinfo(1), squeue(1) of slurm.schedmd.com):
* pools are partitions (`partitions`: pool -> partition); jobs of other partitions are ignored.
* drain: `State=DRAIN Reason=...`; the node is draining while jobs hold it, drained after.
* cordon: Slurm has no cordon apart from drain, so a cordon is a drain whose reason starts
  with "cordon:" and is reported as cordoned whatever runs on the node.
* resume and uncordon: `State=RESUME`.
* move: requeuehold, wait for PENDING, update Partition (+ NodeList, NumNodes, untyped Gres
  count), StartTime=now (a requeue delays the start ~2 min), release. A typed GRES whose type
  changes (gpu:h100 -> gpu:910b) cannot be updated in 22.05 (Slurm bug 17184: the new type is
  added, the job stays BadConstraints), so such a job is resubmitted instead: `scontrol write
  batch_script`, `sbatch` with the new partition and GRES, `scancel` of the old one. The new
  job gets a new id: `moved` maps old -> new ids, and the new job's comment carries
  `fleetops-moved-from=OLD`, so job()/move()/requeue() of the old id still find it after a
  restart of the console.
* Slurm picks device indices itself: a move honours the target's nodes, pool and device count,
  not its indices. Placements report the indices Slurm allocated (gres_detail IDX), or
  0..n-1 where it does not say.
* Job.runtime and Job.mem_per_device_mib come from `runtime=X mem_per_device_mib=N` tokens in
  the job's comment (sbatch --comment), else the pool's default runtime and 0.

A move marks the job with `fleetops:moving` in its AdminComment from before the requeue until
after the release, so a move interrupted at any point (console killed, controller down) is
recognised and finished by the next call, and a job a user held stays held.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from console.engines.base import Engine, EngineError, EngineRefused, UnknownJob
from console.engines.slurm_parse import (
    Gres,
    SlurmJob,
    SlurmNode,
    SlurmParseError,
    parse_scontrol,
    parse_sinfo_json,
    parse_squeue_json,
)
from console.model.jobs import AdminState, Job, JobState, Placement
from console.model.text import clean

__all__ = [
    "CORDON_PREFIX",
    "LocalRunner",
    "Runner",
    "SlurmEngine",
    "SshRunner",
    "check_job_id",
    "check_name",
    "check_reason",
]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
JOB_ID_RE = re.compile(r"[0-9]{1,12}")
MAX_REASON = 200
CORDON_PREFIX = "cordon: "
MOVING = "fleetops:moving"  # AdminComment token while a move is under way
MOVED_FROM = "fleetops-moved-from="  # comment token of a job resubmitted by a move
DEFAULT_RUNTIMES = {"nvidia": "cuda", "domestic": "cann"}
_RUNNING = frozenset(
    {"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING",
     "STAGE_OUT"}
)  # fmt: skip
_FINAL_STATES: dict[str, JobState] = {"COMPLETED": "completed", "CANCELLED": "cancelled"}


# --- validation -----------------------------------------------------------------------------


def check_name(value: object, what: str = "node", verb: str = "") -> str:
    """A node or partition name: 1-63 of [A-Za-z0-9._-], starting with a letter or digit (so
    never an option, never a hostlist expression, nothing a shell would read)."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise EngineError(f"{_slurm(verb)}: invalid {what} name {_show(value)}")
    return value


def check_job_id(value: object, verb: str = "") -> str:
    """A job id: digits only (array and het job ids are not supported)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not JOB_ID_RE.fullmatch(value):
        raise EngineError(f"{_slurm(verb)}: invalid job id {_show(value)}")
    return value


def check_reason(value: object, verb: str = "") -> str:
    """Printable, one line, 1-200 characters. Passed as ONE argument `Reason=<text>`: never
    through a local shell, shlex-quoted over SSH, so it is stored literally."""
    if not isinstance(value, str) or not value.strip():
        raise EngineError(f"{_slurm(verb)}: a reason is required (Slurm refuses DRAIN without one)")
    if len(value) > MAX_REASON:
        raise EngineError(f"{_slurm(verb)}: reason longer than {MAX_REASON} characters")
    if not value.isprintable():  # newlines, tabs, escapes, bidi overrides
        raise EngineError(
            f"{_slurm(verb)}: reason must be printable text on one line: {_show(value)}"
        )
    return value


def _slurm(verb: str) -> str:
    return f"slurm {verb}" if verb else "slurm"


def _show(value: object) -> str:
    return clean(repr(value), 80)


def _one_line(text: str, limit: int = 300) -> str:
    return clean(" ".join(text.split()), limit)


# --- runners --------------------------------------------------------------------------------


class Runner(Protocol):
    """Runs one command (an argv list, no shell) where Slurm's client commands work."""

    def run(
        self, argv: Sequence[str], timeout: float, input: str | None = None
    ) -> tuple[int, str, str]:
        """(exit status, stdout, stderr); 124 on timeout, 127 if the program is missing."""
        ...

    def describe(self) -> str: ...


class LocalRunner:
    """On this machine: subprocess without a shell; `env` is added to os.environ (SLURM_CONF)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env or {})

    def describe(self) -> str:
        return "local"

    def run(
        self, argv: Sequence[str], timeout: float, input: str | None = None
    ) -> tuple[int, str, str]:
        env = {**os.environ, **self.env}
        try:
            out = subprocess.run(
                list(argv),
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return 124, "", f"timed out after {timeout:g} s"
        except FileNotFoundError:
            return 127, "", f"{argv[0]}: command not found"
        except OSError as exc:
            return 126, "", f"{argv[0]}: {exc.strerror or exc}"
        return out.returncode, out.stdout, out.stderr


class SshRunner:
    """On the controller over SSH with the `ssh` client: no password prompts (BatchMode), host
    key checked against `known_hosts` (StrictHostKeyChecking=yes), `--` before the host, and
    the remote command built with shlex.quote on every argument (the remote login shell parses
    it). `env` is set with `env K=V ...` in front of the command (SLURM_CONF)."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        user: str | None = None,
        identity_file: str | os.PathLike[str] | None = None,
        known_hosts: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        connect_timeout: float = 10.0,
        ssh: str = "ssh",
        config_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = _ssh_word(host, "host")
        self.user = _ssh_word(user, "user") if user is not None else None
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise EngineError(f"slurm: invalid ssh port {_show(port)}")
        self.port = port
        for key in env or {}:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise EngineError(f"slurm: invalid environment variable name {_show(key)}")
        self.env = dict(env or {})
        self.options = [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={max(1, round(connect_timeout))}",
            "-T",
        ]  # fmt: skip
        if known_hosts is not None:
            self.options += ["-o", f"UserKnownHostsFile={_ssh_path(known_hosts)}"]
        if identity_file is not None:
            self.options += ["-o", "IdentitiesOnly=yes", "-i", os.fspath(identity_file)]
        if config_file is not None:
            self.options[:0] = ["-F", os.fspath(config_file)]
        if port is not None:
            self.options += ["-p", str(port)]
        if self.user is not None:
            self.options += ["-l", self.user]
        self.ssh = ssh

    def describe(self) -> str:
        return f"ssh {self.user + '@' if self.user else ''}{self.host}"

    def command(self, argv: Sequence[str]) -> list[str]:
        """The local argv that runs `argv` on the controller."""
        env = [f"{k}={v}" for k, v in self.env.items()]
        remote = shlex.join(["env", *env, *argv] if env else list(argv))
        return [self.ssh, *self.options, "--", self.host, remote]

    def run(
        self, argv: Sequence[str], timeout: float, input: str | None = None
    ) -> tuple[int, str, str]:
        rc, out, err = LocalRunner().run(self.command(argv), timeout, input)
        if rc == 255:  # ssh's own failure: say so, the remote command never ran
            # Its warnings come framed in lines of '@': keep the words, first and last.
            lines = [ln.strip("@ \t") for ln in err.splitlines()]
            lines = [ln for ln in lines if ln]
            said = "; ".join(dict.fromkeys(lines[:1] + lines[-1:])) or "no reason given"
            return rc, out, f"ssh to {self.host} failed: {said}"
        return rc, out, err


def _ssh_word(value: object, what: str) -> str:
    """A host or user for ssh: no leading '-', no whitespace or shell metacharacters."""
    if (
        not isinstance(value, str)
        or not value
        or value.startswith("-")
        or not re.fullmatch(r"[A-Za-z0-9._@:\[\]%+-]+", value)
    ):
        raise EngineError(f"slurm: invalid ssh {what} {_show(value)}")
    return value


def _ssh_path(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    if '"' in text or not text.isprintable():
        raise EngineError(f"slurm: unusable path for ssh {_show(text)}")
    # ssh splits option values on whitespace (several known_hosts files); quotes keep one.
    return f'"{text}"' if any(c.isspace() for c in text) else text


# --- the engine -----------------------------------------------------------------------------


class SlurmEngine(Engine):
    name = "slurm"
    places_devices = False  # Slurm chooses device indices on the target nodes

    def __init__(
        self,
        partitions: Mapping[str, str],
        runner: Runner | None = None,
        *,
        timeout: float = 30.0,
        move_timeout: float = 30.0,
        runtimes: Mapping[str, str] | None = None,
    ) -> None:
        """`partitions`: pool -> partition. `timeout`: per command. `move_timeout`: how long a
        move waits for a requeued job to be PENDING. `runtimes`: pool -> runtime for jobs
        whose comment names none."""
        if not partitions:
            raise EngineError("slurm: no partitions configured (pool -> partition)")
        self.partitions = {str(pool): check_name(p, "partition") for pool, p in partitions.items()}
        self.pools = {p: pool for pool, p in self.partitions.items()}
        if len(self.pools) != len(self.partitions):
            raise EngineError("slurm: two pools map to the same partition")
        self.runner: Runner = runner or LocalRunner()
        self.timeout = timeout
        self.move_timeout = move_timeout
        self.runtimes = {**DEFAULT_RUNTIMES, **(runtimes or {})}
        # Old job id -> the id of the job that replaced it (typed-GRES move): see move().
        self.moved: dict[str, str] = {}

    # --- commands -------------------------------------------------------------------------

    def _run(self, argv: list[str], what: str, input: str | None = None) -> str:
        """Run a Slurm command; stdout, or EngineError naming the command and what it was for."""
        rc, out, err = self.runner.run(argv, self.timeout, input)
        if rc != 0:
            raise self._error(argv, what, self._detail(rc, err, out))
        return out

    def _error(self, argv: list[str], what: str, detail: str) -> EngineError:
        detail = detail.removeprefix(f"{_cmd(argv)}: ")
        if "Unable to contact" not in detail and not detail.startswith("ssh to "):
            # Some failures do not say why (sinfo/squeue --json print "Unspecified error",
            # requeue says "Unexpected message received"): ask the controller itself.
            rc, out, _ = self.runner.run(["scontrol", "ping"], min(self.timeout, 10.0))
            if rc not in (0, 127, 255) and "DOWN" in out:
                detail += " (Unable to contact slurm controller: scontrol ping says DOWN)"
        where = "" if (desc := self.runner.describe()) == "local" else f" via {desc}"
        return EngineError(_one_line(f"slurm {what}: {_cmd(argv)} failed{where}: {detail}"))

    @staticmethod
    def _detail(rc: int, err: str, out: str) -> str:
        lines = [ln.strip() for ln in (err or out).splitlines() if ln.strip()]
        said = "; ".join(dict.fromkeys(lines[:3])) or "no message"
        return said if rc in (1, 124, 255) else f"exit {rc}: {said}"

    def _update_node(self, node: str, what: str, *fields: str) -> None:
        self._run(["scontrol", "update", f"NodeName={node}", *fields], what)

    def _update_job(self, job_id: str, what: str, *fields: str) -> None:
        self._run(["scontrol", "update", f"JobId={job_id}", *fields], what)

    # --- reading --------------------------------------------------------------------------

    def _nodes(self, what: str) -> dict[str, SlurmNode]:
        argv = ["sinfo", "--json"]
        out = self._run(argv, what)
        try:
            return {n.name: n for n in parse_sinfo_json(out)}
        except SlurmParseError as exc:
            raise self._error(argv, what, str(exc)) from None

    def _slurm_jobs(self, what: str) -> list[SlurmJob]:
        argv = ["squeue", "--json"]
        out = self._run(argv, what)
        try:
            return parse_squeue_json(out)
        except SlurmParseError as exc:
            raise self._error(argv, what, str(exc)) from None

    def _node(self, node: str, what: str) -> SlurmNode:
        found = self._nodes(what).get(node)
        if found is None:
            raise EngineError(f"slurm {what}: no node {node!r} in Slurm")
        return found

    def _find(self, job_id: str, what: str, jobs: list[SlurmJob] | None = None) -> SlurmJob:
        """The job with this id, or the live job that replaced it (see move())."""
        jobs = self._slurm_jobs(what) if jobs is None else jobs
        by_id = {j.job_id: j for j in jobs}
        old = by_id.get(job_id)
        # Comments survive a restart of the console; any user can write one, so only a job of
        # the same owner submitted after the old one counts as its successor.
        successor = _successor(job_id, jobs, owner=old.user if old else None)
        if successor is not None:
            self.moved[job_id] = successor.job_id
            return successor
        for candidate in (self.moved.get(job_id), job_id):
            if candidate in by_id:
                return by_id[candidate]
        raise UnknownJob(f"slurm {what}: no job {job_id} in Slurm (unknown or long finished)")

    def _pool(self, job: SlurmJob) -> str | None:
        return self.pools.get(job.partition)

    def _to_job(self, sj: SlurmJob) -> Job:
        pool = self._pool(sj)
        tokens = _tokens(sj.comment)
        count = sj.gres.count if sj.gres else 0
        placement: tuple[Placement, ...] = ()
        state = _job_state(sj)
        if state == "running" and sj.nodes:
            detail = sj.gres_per_node if len(sj.gres_per_node) == len(sj.nodes) else ()
            placement = tuple(
                Placement(
                    node,
                    detail[i].indices
                    if detail and detail[i].indices is not None
                    else tuple(range(count)),  # Slurm did not say which: 0..n-1
                )
                for i, node in enumerate(sj.nodes)
            )
        mem = tokens.get("mem_per_device_mib", "")
        return Job(
            id=sj.job_id,
            name=sj.name,
            owner=sj.user,
            pool=pool,  # type: ignore[arg-type]  # a pool of the inventory
            nodes=max(1, sj.node_count or len(sj.nodes)),
            devices_per_node=count,
            mem_per_device_mib=int(mem) if mem.isascii() and mem.isdigit() else 0,
            runtime=tokens.get("runtime") or self.runtimes.get(pool or "", "portable"),
            priority=sj.priority or 0,
            state=state,
            placement=placement,
        )

    def jobs(self) -> list[Job]:
        """Unfinished jobs of the configured partitions (pending, running, requeued)."""
        return [
            self._to_job(j)
            for j in self._slurm_jobs("jobs")
            if not j.finished and self._pool(j) is not None
        ]

    def job(self, job_id: str) -> Job:
        """One job; a job replaced by a typed-GRES move is found under its old id too, and
        returned with its new id."""
        job_id = check_job_id(job_id, "job")
        sj = self._find(job_id, f"job {job_id}")
        if self._pool(sj) is None:
            raise EngineError(
                f"slurm job {job_id}: partition {sj.partition!r} is not one of the pools' "
                f"({', '.join(self.pools)})"
            )
        return self._to_job(sj)

    def admin_states(self) -> dict[str, AdminState]:
        return {name: _admin(n) for name, n in self._nodes("admin states").items()}

    # --- nodes ----------------------------------------------------------------------------

    def cordon(self, node: str, reason: str) -> None:
        """Active -> cordoned (DRAIN with a "cordon: " reason). Already cordoned, draining or
        drained: no-op (a drain is stronger than a cordon; its reason stays)."""
        node, reason = check_name(node, verb="cordon"), check_reason(reason, "cordon")
        what = f"cordon {node}"
        if _admin(self._node(node, what)) == "active":
            text = (CORDON_PREFIX + reason)[:MAX_REASON]
            self._update_node(node, what, "State=DRAIN", f"Reason={text}")

    def uncordon(self, node: str) -> None:
        """Cordoned -> active. Only undoes a cordon: a draining node needs resume()."""
        node = check_name(node, verb="uncordon")
        what = f"uncordon {node}"
        if _admin(self._node(node, what)) == "cordoned":
            self._update_node(node, what, "State=RESUME")

    def drain(self, node: str, reason: str) -> None:
        """Draining now (drained once no job runs there). Already draining or drained: no-op,
        the first reason stays. A cordoned node becomes draining."""
        node, reason = check_name(node, verb="drain"), check_reason(reason, "drain")
        what = f"drain {node}"
        if _admin(self._node(node, what)) in ("active", "cordoned"):
            self._update_node(node, what, "State=DRAIN", f"Reason={reason}")

    def resume(self, node: str) -> None:
        """Any state -> active (State=RESUME); a node that is not drained or down: no-op."""
        node = check_name(node, verb="resume")
        what = f"resume {node}"
        n = self._node(node, what)
        if not n.drain and n.state not in ("down", "fail", "failing", "error"):
            return
        try:
            self._update_node(node, what, "State=RESUME")
        except EngineError as exc:
            # Resumed by someone else between the look and the update.
            if "Invalid node state specified" not in str(exc):
                raise

    # --- jobs -----------------------------------------------------------------------------

    def requeue(self, job_id: str) -> None:
        """Back to pending in its partition, off every node (Slurm delays its restart ~2 min);
        a no-op if already pending."""
        job_id = check_job_id(job_id, "requeue")
        what = f"requeue {job_id}"
        sj = self._settled(self._find(job_id, what), what)
        if sj.state == "PENDING":
            return
        _live(sj, what)
        self._run(["scontrol", "requeue", sj.job_id], what)
        self._wait_pending(sj.job_id, what)  # COMPLETING on its nodes until then

    def move(self, job_id: str, target: tuple[Placement, ...], pool: str) -> None:
        """Run the job in `pool`'s partition, on `target`'s nodes (NodeList) with as many
        devices per node as the target names; a no-op if it is already there. Device indices
        are Slurm's choice. See the module docstring for the typed-GRES resubmission."""
        job_id = check_job_id(job_id, "move")
        what = f"move {job_id}"
        if pool not in self.partitions:
            raise EngineError(f"slurm {what}: unknown pool {pool!r} (no partition for it)")
        partition = self.partitions[pool]
        nodes = tuple(check_name(p.node, verb=what) for p in target)
        if len(set(nodes)) != len(nodes):
            raise EngineError(f"slurm {what}: target names a node twice")
        jobs = self._slurm_jobs(what)
        sj = self._find(job_id, what, jobs)
        if sj.job_id != job_id:
            # Already resubmitted (typed GRES); a move cut short may not have cancelled the
            # old job yet.
            old = next((j for j in jobs if j.job_id == job_id), None)
            if old is not None and not old.finished:
                self._run(["scancel", job_id], what)
        sj = self._settled(sj, what)
        _live(sj, what)
        moving = MOVING in sj.admin_comment.split()
        count = len(target[0].devices) if target and target[0].devices else None
        gres = sj.gres
        there = (
            sj.partition == partition
            and _placed_as(sj, nodes)
            and (count is None or gres is None or gres.count == count)
        )
        if there and not (moving and sj.held):
            if moving:  # cut short after the release: only the marker is left to clear
                self._update_job(sj.job_id, what, f"AdminComment={_without(sj, MOVING)}")
            return
        new_type = self._target_type(gres, partition, nodes, what)
        if gres and gres.type and new_type and new_type != gres.type:
            self._resubmit(sj, partition, nodes, Gres(gres.name, new_type, count or gres.count))
            return
        self._requeue_to(sj, partition, nodes, gres, count, moving, what)

    def _target_type(
        self, gres: Gres | None, partition: str, nodes: tuple[str, ...], what: str
    ) -> str | None:
        """The GRES type (e.g. 910b) the target nodes, or the partition's nodes, offer; checks
        that the target nodes exist, are in the partition and take new jobs (a move requeues
        the whole job, so even a node it runs on now must; Slurm itself would accept the
        update and leave the job pending on a drained node: ReqNodeNotAvail)."""
        known = self._nodes(what)
        for name in nodes:
            if name not in known:
                raise EngineError(f"slurm {what}: no node {name!r} in Slurm")
            if partition not in known[name].partitions:
                raise EngineError(f"slurm {what}: node {name} is not in partition {partition}")
        self._refuse_closed(known, nodes, what)
        if gres is None:
            return None
        pool_nodes = [n for n in known.values() if partition in n.partitions]
        for n in [known[x] for x in nodes] or pool_nodes:
            for g in n.gres:
                if g.name == gres.name:
                    return g.type
        return None

    @staticmethod
    def _refuse_closed(known: Mapping[str, SlurmNode], nodes: Sequence[str], what: str) -> None:
        for name in nodes:
            if name in known and (state := _admin(known[name])) != "active":
                reason = f" ({clean(known[name].reason, 80)})" if known[name].reason else ""
                raise EngineRefused(f"slurm {what}: {name} is {state}{reason}: it takes no new "
                                    "jobs")

    def _requeue_to(
        self,
        sj: SlurmJob,
        partition: str,
        nodes: tuple[str, ...],
        gres: Gres | None,
        count: int | None,
        moving: bool,
        what: str,
    ) -> None:
        """requeuehold (or hold), wait for PENDING, update, StartTime=now, release."""
        jid = sj.job_id
        user_held = sj.held and not moving  # someone else's hold: keep it
        if not moving:
            # Marked first: a move cut short after this point is recognised and finished.
            self._update_job(jid, what, f"AdminComment={_with_token(sj.admin_comment, MOVING)}")
        if sj.state in _RUNNING:
            self._run(["scontrol", "requeuehold", jid], what)
        elif sj.state == "PENDING" and not sj.held:
            self._run(["scontrol", "hold", jid], what)  # or it may start where it is
        sj = self._wait_pending(jid, what)
        fields = [f"Partition={partition}"]
        if nodes:
            fields.append(f"NodeList={','.join(nodes)}")
            if len(nodes) != sj.node_count:
                fields.append(f"NumNodes={len(nodes)}")
        elif sj.required_nodes:
            fields.append("NodeList=")  # pinned by an earlier move to nodes of another pool
        if gres and count and count != gres.count:
            fields.append(f"Gres={Gres(gres.name, None, count).spec()}")
        self._update_job(jid, what, *fields)
        # A target drained while the job was being requeued: the job stays held with its
        # `moving` mark, and the next move() (to a re-planned target) picks it up from here.
        self._refuse_closed(self._nodes(what), nodes, what)
        self._update_job(jid, what, "StartTime=now")
        if not user_held:
            self._run(["scontrol", "release", jid], what)
        self._update_job(jid, what, f"AdminComment={_without(sj, MOVING)}")

    def _resubmit(self, sj: SlurmJob, partition: str, nodes: tuple[str, ...], gres: Gres) -> None:
        """The typed-GRES workaround: the same batch script submitted anew with the new
        partition and GRES, then the old job cancelled. The new job first, so nothing is lost
        if this stops halfway; a re-run finds the new job by its comment and only cancels."""
        old = sj.job_id
        what = f"move {old}"
        jobs = self._slurm_jobs(what)
        successor = _successor(old, jobs, owner=sj.user)
        if successor is None:
            script = self._run(["scontrol", "write", "batch_script", old, "-"], what)
            if not script.strip():  # it says why on stderr, with exit status 0
                raise EngineError(f"slurm {what}: no batch script for job {old} (not a batch job?)")
            info = self._show_job(old, what)
            argv = ["sbatch", "--parsable", f"--partition={partition}"]
            argv += [f"--gres={gres.spec()}", f"--nodes={len(nodes) or sj.node_count or 1}"]
            if nodes:
                argv.append(f"--nodelist={','.join(nodes)}")
            argv += [f"--job-name={_arg(sj.name, 'job name')}"]
            for flag, key in (
                ("--chdir", "WorkDir"),
                ("--output", "StdOut"),
                ("--error", "StdErr"),
            ):
                value = info.get(key, "")
                if value and value != "(null)":
                    argv.append(f"{flag}={_arg(value, key)}")
            if sj.time_limit_min:
                argv.append(f"--time={sj.time_limit_min}")
            if sj.held and MOVING not in sj.admin_comment.split():
                argv.append("--hold")  # someone held it: the new job stays held too
            if sj.user and sj.user != "root":  # the job stays its owner's (needs root)
                argv.append(f"--uid={check_name(sj.user, 'user')}")
                if sj.group:
                    argv.append(f"--gid={check_name(sj.group, 'group')}")
            comment = " ".join(
                [t for t in sj.comment.split() if t.isprintable()] + [f"{MOVED_FROM}{old}"]
            )
            # The console's own environment is no business of the user's job.
            argv += ["--export=NONE", f"--comment={comment}"]
            out = self._run(argv, what, input=script)
            new = out.strip().split(";")[0]
            if not JOB_ID_RE.fullmatch(new):
                raise EngineError(f"slurm {what}: sbatch printed no job id: {_show(out[:80])}")
        else:
            new = successor.job_id
        self.moved[old] = new
        current = {j.job_id: j for j in jobs}.get(old)
        if current is None or not current.finished:
            self._run(["scancel", old], what)

    def _show_job(self, job_id: str, what: str) -> dict[str, str]:
        argv = ["scontrol", "-o", "show", "job", job_id]
        out = self._run(argv, what)
        try:
            found = parse_scontrol(out, "job")
        except SlurmParseError as exc:
            raise self._error(argv, what, str(exc)) from None
        if not found:
            raise EngineError(f"slurm {what}: scontrol show job {job_id} printed nothing")
        return found[0]

    def _wait_pending(self, job_id: str, what: str) -> SlurmJob:
        deadline = time.monotonic() + self.move_timeout
        while True:
            sj = self._find(job_id, what)
            if sj.job_id != job_id or sj.finished:
                raise EngineError(f"slurm {what}: the job ended while being requeued ({sj.state})")
            if sj.state == "PENDING":
                return sj
            if time.monotonic() > deadline:
                raise EngineError(
                    f"slurm {what}: still {sj.state} {self.move_timeout:g} s after the requeue"
                    " (run the move again to finish it)"
                )
            time.sleep(0.2)

    def _settled(self, sj: SlurmJob, what: str) -> SlurmJob:
        """Wait out COMPLETING (a requeue or cancel in progress) so the state means something."""
        deadline = time.monotonic() + self.move_timeout
        while sj.state == "COMPLETING" and time.monotonic() < deadline:
            time.sleep(0.2)
            sj = self._find(sj.job_id, what)
        return sj


# --- helpers --------------------------------------------------------------------------------


def _cmd(argv: list[str]) -> str:
    """The command for a message: program, verb and ids, no values (reasons can be long)."""
    words = [a for a in argv if not a.startswith("-") and "=" not in a][:4]
    return " ".join(words + (["--json"] if "--json" in argv else []))


def _arg(value: str, what: str) -> str:
    if not value.isprintable() or "\n" in value:
        raise EngineError(f"slurm: unusable {what} {_show(value)}")
    return value


def _admin(n: SlurmNode) -> AdminState:
    if not n.drain:
        return "active"
    if n.reason.startswith(CORDON_PREFIX.strip()):
        return "cordoned"
    return "draining" if n.busy else "drained"


def _job_state(sj: SlurmJob) -> JobState:
    if sj.state in _RUNNING:
        return "running" if sj.nodes else "pending"
    if sj.state == "PENDING":
        return "requeued" if sj.restarts > 0 else "pending"
    if sj.state.startswith("REQUEUE"):
        return "requeued"
    return _FINAL_STATES.get(sj.state, "failed")


def _live(sj: SlurmJob, what: str) -> None:
    if sj.finished:
        raise EngineError(f"slurm {what}: the job is {sj.state.lower()}")


def _placed_as(sj: SlurmJob, nodes: tuple[str, ...]) -> bool:
    """Where the job runs, or is pinned to while pending, is `nodes` (any nodes if none)."""
    if not nodes:
        return True
    if sj.state in _RUNNING and sj.nodes:
        return set(sj.nodes) == set(nodes)
    return set(sj.required_nodes) == set(nodes)


def _successor(job_id: str, jobs: list[SlurmJob], owner: str | None = None) -> SlurmJob | None:
    """The newest live job whose comment says it replaced `job_id`: submitted after it and,
    when the old job is still known, by the same owner (a comment is anyone's to write, so a
    user cannot redirect an operator's move, or its cancel, to someone else's job)."""
    token = f"{MOVED_FROM}{job_id}"
    old_id = int(job_id) if job_id.isascii() and job_id.isdigit() else None
    found = [j for j in jobs if token in j.comment.split() and not j.finished
             and (old_id is None or int(j.job_id) > old_id)
             and (owner is None or j.user == owner)]
    return max(found, key=lambda j: int(j.job_id), default=None)


def _tokens(comment: str) -> dict[str, str]:
    out = {}
    for word in comment.split():
        key, sep, value = word.partition("=")
        if sep:
            out[key] = value
    return out


def _with_token(text: str, token: str) -> str:
    return " ".join([*text.split(), token]) if token not in text.split() else text


def _without(sj: SlurmJob, token: str) -> str:
    return " ".join(w for w in sj.admin_comment.split() if w != token)
