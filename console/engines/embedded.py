"""The embedded engine: jobs and node admin states in SQLite, the default and the demo's engine.

The database enforces what must never happen: `placements` has PRIMARY KEY(node, device), so a
device can never hold two jobs whatever code path writes it. Every mutating call is one
`BEGIN IMMEDIATE` transaction and idempotent (see base.Engine), so a journaled plan re-run
after a crash is harmless.

Threads: one connection per engine object, opened with check_same_thread=False and guarded by
a lock. The TUI creates the engine on its main thread and calls it from a worker thread (engine
calls block on disk); two threads may share one engine, but never call it concurrently.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

from agents import catalog
from console.engines.base import Engine, EngineError, EngineRefused, UnknownJob
from console.model.jobs import AdminState, Job, Placement
from console.state.identity import current
from console.state.store import Store

SCHEMA_VERSION = 1
_OPEN_STATES = ("pending", "running", "requeued")

# `rank` keeps the order of a multi-node job's placements (rank 0 first) as submitted.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    pool TEXT NOT NULL CHECK (pool IN ('nvidia', 'domestic')),
    nodes INTEGER NOT NULL CHECK (nodes >= 1),
    devices_per_node INTEGER NOT NULL CHECK (devices_per_node >= 1),
    mem_per_device_mib INTEGER NOT NULL CHECK (mem_per_device_mib >= 0),
    runtime TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN
        ('pending', 'running', 'requeued', 'completed', 'failed', 'cancelled')),
    allowed_regions TEXT,
    submitted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS placements (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    node TEXT NOT NULL,
    device INTEGER NOT NULL CHECK (device >= 0),
    rank INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (node, device)
);
CREATE INDEX IF NOT EXISTS placements_job ON placements(job_id);
CREATE TABLE IF NOT EXISTS node_admin (
    node TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('active', 'cordoned', 'draining')),
    reason TEXT NOT NULL DEFAULT '',
    changed_at REAL NOT NULL,
    changed_by TEXT NOT NULL
);
"""


def canonical(placement: Iterable[Placement]) -> tuple[Placement, ...]:
    """Devices sorted within each node; node order (rank) kept."""
    return tuple(Placement(p.node, tuple(sorted(p.devices))) for p in placement)


class EmbeddedEngine(Engine):
    name = "embedded"

    def __init__(self, db_path: Path, *, user: str | None = None, timeout_s: float = 10.0,
                 readonly: bool = False):
        self.db_path = Path(db_path)
        self.user = user or current().label
        self._store = Store(self.db_path, EngineError, "embedded engine", _SCHEMA,
                            timeout_s=timeout_s, foreign_keys=True, readonly=readonly)
        self._tx = self._store.tx
        if not readonly:
            self._migrate()

    def _migrate(self) -> None:
        with self._tx() as db:
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise EngineError(
                    f"embedded engine: {self.db_path} has schema version {row[0]}, "
                    f"this console knows up to {SCHEMA_VERSION}"
                )

    def close(self) -> None:
        self._store.close()

    # -- reads ----------------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        with self._tx(write=False) as db:
            rows = db.execute(
                f"SELECT * FROM jobs WHERE state IN {_OPEN_STATES} ORDER BY id"
            ).fetchall()
            return [self._job(db, row) for row in rows]

    def job(self, job_id: str) -> Job:
        with self._tx(write=False) as db:
            return self._job(db, self._row(db, job_id))

    def jobs_on(self, node: str) -> list[tuple[Job, tuple[int, ...]]]:
        """Jobs placed on `node`, each with the devices it holds there."""
        with self._tx(write=False) as db:
            ids = [r[0] for r in db.execute(
                "SELECT DISTINCT job_id FROM placements WHERE node = ? ORDER BY job_id", (node,))]
            out = []
            for job_id in ids:
                job = self._job(db, self._row(db, job_id))
                devices = next(p.devices for p in job.placement if p.node == node)
                out.append((job, devices))
            return out

    def holders(self, node: str) -> dict[int, str]:
        with self._tx(write=False) as db:
            return dict(db.execute("SELECT device, job_id FROM placements WHERE node = ?",
                                   (node,)).fetchall())

    def admin_states(self) -> dict[str, AdminState]:
        with self._tx(write=False) as db:
            rows = db.execute(
                "SELECT node, state, EXISTS (SELECT 1 FROM placements p WHERE p.node = a.node)"
                " FROM node_admin a ORDER BY node"
            ).fetchall()
        # `drained` is derived, never stored: it cannot go stale when a job lands on the node.
        return {n: "drained" if s == "draining" and not busy else s for n, s, busy in rows}

    @staticmethod
    def _row(db: sqlite3.Connection, job_id: str) -> tuple:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise UnknownJob(f"embedded engine: no job {job_id!r}")
        return row

    @staticmethod
    def _job(db: sqlite3.Connection, row: tuple) -> Job:
        (jid, name, owner, pool, nodes, dpn, mem, runtime, prio, state, regions, _ts) = row
        by_node: dict[str, list[int]] = {}
        for node, device in db.execute(
            "SELECT node, device FROM placements WHERE job_id = ? ORDER BY rank, node, device",
            (jid,),
        ):
            by_node.setdefault(node, []).append(device)
        return Job(
            id=jid, name=name, owner=owner, pool=pool, nodes=nodes, devices_per_node=dpn,
            mem_per_device_mib=mem, runtime=runtime, priority=prio, state=state,
            allowed_regions=None if regions is None else tuple(json.loads(regions)),
            placement=tuple(Placement(n, tuple(d)) for n, d in by_node.items()),
        )

    # -- jobs -----------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """A new job, placed where `job.placement` says (running) or pending if empty."""
        self.submit_many([job])

    def submit_many(self, jobs: Iterable[Job]) -> None:
        """Several jobs in one transaction: all of them or none."""
        with self._tx() as db:
            for job in jobs:
                if db.execute("SELECT 1 FROM jobs WHERE id = ?", (job.id,)).fetchone():
                    raise EngineError(f"submit {job.id}: a job with this id exists")
                state = "running" if job.placement else (
                    "requeued" if job.state == "requeued" else "pending")
                regions = None if job.allowed_regions is None else json.dumps(
                    list(job.allowed_regions))
                try:
                    db.execute(
                        "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (job.id, job.name, job.owner, job.pool, job.nodes, job.devices_per_node,
                         job.mem_per_device_mib, job.runtime, job.priority, state, regions,
                         time.time()),
                    )
                except sqlite3.IntegrityError as exc:
                    raise EngineError(f"submit {job.id}: invalid job ({exc})") from None
                if job.placement:
                    self._put(db, job, job.placement, "submit")

    def place(self, job_id: str, placement: tuple[Placement, ...]) -> None:
        """Place a pending or requeued job; a no-op if it is already exactly there."""
        with self._tx() as db:
            job = self._job(db, self._row(db, job_id))
            if job.placement and canonical(job.placement) == canonical(placement):
                return
            if job.placement:
                raise EngineError(f"place {job_id}: already placed on "
                                  f"{', '.join(job.placed_nodes)} (use move)")
            self._open(job, "place")
            self._put(db, job, placement, "place")
            db.execute("UPDATE jobs SET state = 'running' WHERE id = ?", (job_id,))

    def move(self, job_id: str, target: tuple[Placement, ...], pool: str) -> None:
        # Delete then insert in one transaction: the job is never on both placements, and a
        # target that overlaps its own old devices (a move within a node) is not a conflict.
        with self._tx() as db:
            job = self._job(db, self._row(db, job_id))
            if canonical(job.placement) == canonical(target) and job.pool == pool:
                return
            self._open(job, "move")
            db.execute("DELETE FROM placements WHERE job_id = ?", (job_id,))
            try:
                db.execute("UPDATE jobs SET pool = ?, state = 'running' WHERE id = ?",
                           (pool, job_id))
            except sqlite3.IntegrityError:
                raise EngineError(f"move {job_id}: unknown pool {pool!r}") from None
            self._put(db, job, target, "move", job.placed_nodes)

    def requeue(self, job_id: str) -> None:
        with self._tx() as db:
            job = self._job(db, self._row(db, job_id))
            if job.state in ("pending", "requeued") and not job.placement:
                return
            self._open(job, "requeue")
            db.execute("DELETE FROM placements WHERE job_id = ?", (job_id,))
            db.execute("UPDATE jobs SET state = 'requeued' WHERE id = ?", (job_id,))

    def complete(self, job_id: str) -> None:
        """The job finished: off its devices, no longer listed by jobs()."""
        with self._tx() as db:
            self._row(db, job_id)
            db.execute("DELETE FROM placements WHERE job_id = ?", (job_id,))
            db.execute("UPDATE jobs SET state = 'completed' WHERE id = ?", (job_id,))

    @staticmethod
    def _open(job: Job, verb: str) -> None:
        if job.state not in _OPEN_STATES:
            raise EngineError(f"{verb} {job.id}: the job is {job.state}")

    @staticmethod
    def _put(db: sqlite3.Connection, job: Job, placement: Iterable[Placement], verb: str,
             own: Iterable[str] = ()) -> None:
        """Insert the job's placements. In the same transaction as the caller's read: a node
        that is not active takes no new job (one the job already runs on keeps it), and a
        device holds one job (the primary key), whatever front end asked."""
        placement = canonical(placement)
        nodes = [p.node for p in placement]
        own = set(own)  # nodes the job runs on now
        for node in nodes:
            row = db.execute("SELECT state, changed_by FROM node_admin WHERE node = ?",
                             (node,)).fetchone()
            if node not in own and row is not None and row[0] != "active":
                raise EngineRefused(f"{verb} {job.id}: {node} is {row[0]} (by {row[1]}): "
                                    "it takes no new jobs")
        if len(placement) != job.nodes or len(set(nodes)) != len(nodes):
            raise EngineError(f"{verb} {job.id}: needs {job.nodes} distinct node(s), "
                              f"got {', '.join(nodes) or 'none'}")
        for rank, p in enumerate(placement):
            if len(set(p.devices)) != job.devices_per_node or any(d < 0 for d in p.devices):
                raise EngineError(f"{verb} {job.id}: needs {job.devices_per_node} distinct "
                                  f"device(s) on {p.node}, got {list(p.devices)}")
            for device in p.devices:
                try:
                    db.execute("INSERT INTO placements VALUES (?, ?, ?, ?)",
                               (job.id, p.node, device, rank))
                except sqlite3.IntegrityError:
                    holder = db.execute(
                        "SELECT job_id FROM placements WHERE node = ? AND device = ?",
                        (p.node, device)).fetchone()
                    raise EngineRefused(
                        f"{verb} {job.id}: device {device} of {p.node} is held by "
                        f"{holder[0] if holder else 'another job'}"
                    ) from None

    # -- nodes ----------------------------------------------------------------------------

    def _admin(self, db: sqlite3.Connection, node: str) -> str:
        row = db.execute("SELECT state FROM node_admin WHERE node = ?", (node,)).fetchone()
        return row[0] if row else "active"

    def _set(self, db: sqlite3.Connection, node: str, state: str, reason: str) -> None:
        db.execute(
            "INSERT INTO node_admin VALUES (?, ?, ?, ?, ?) ON CONFLICT(node) DO UPDATE SET"
            " state = excluded.state, reason = excluded.reason,"
            " changed_at = excluded.changed_at, changed_by = excluded.changed_by",
            (node, state, reason, time.time(), self.user),
        )

    def cordon(self, node: str, reason: str) -> None:
        """Active -> cordoned. A cordoned or draining node is already closed: no-op."""
        with self._tx() as db:
            if self._admin(db, node) == "active":
                self._set(db, node, "cordoned", reason)

    def uncordon(self, node: str) -> None:
        """Cordoned -> active. Only undoes a cordon: a draining node needs resume()."""
        with self._tx() as db:
            if self._admin(db, node) == "cordoned":
                self._set(db, node, "active", "")

    def drain(self, node: str, reason: str) -> None:
        with self._tx() as db:
            if self._admin(db, node) != "draining":
                self._set(db, node, "draining", reason)

    def resume(self, node: str) -> None:
        """Any state -> active."""
        with self._tx() as db:
            if self._admin(db, node) != "active":
                self._set(db, node, "active", "")


def pid_for(job_id: str, node: str, device: int) -> int:
    """A stable, plausible pid for one rank of a job (the demo's process tables)."""
    return 100_000 + zlib.crc32(f"{job_id}@{node}".encode()) % 3_000_000 + device


# -- the demo's workload ------------------------------------------------------------------------

OWNERS = ("alice", "bob", "chen", "dmitri", "li-wei", "priya")
TRAINING = ("llama3-70b-sft", "qwen2-7b-pretrain", "moe-8x7b-ablation", "vit-h-distill",
            "code-13b-finetune", "reward-model-rlhf", "asr-conformer-xl")
INFERENCE = ("chat-serve", "embed-api", "rerank", "ocr-batch", "tts-stream", "vision-qa",
             "search-embed", "translate-api")
# Runtime images people build for each model, weighted; each runs there per runtimes.toml.
_RUNTIMES: dict[str, tuple[tuple[str, int], ...]] = {
    "nvidia": (("cuda", 6), ("cuda-compatible", 2), ("portable", 2)),
    "PPU": (("cuda-compatible", 3), ("portable", 1)),
    "910B": (("cann", 3), ("portable", 1)),
    "MLU590": (("neuware", 2), ("portable", 1)),
    "DCU": (("dtk", 2), ("portable", 1)),
}
DemoNodeSpec = tuple[str, str, str, str, int]  # name, dc, pool, model, devices


def seed_demo(engine: EmbeddedEngine, nodes: list[DemoNodeSpec], seed: int) -> list[Job]:
    """Fill an empty engine with a believable, deterministic job mix (~65% of devices busy).

    Training jobs take 8 devices of a node (some span two nodes of one model and dc);
    inference jobs take 1-2 devices, packed onto some nodes so that others stay wholly free
    and drains have somewhere to go. Some Nvidia jobs need more memory per device than a
    910B has (64 GiB), so some cross-pool plans are refused. Returns the jobs submitted
    (none if the engine already has jobs: a restarted demo keeps its state).
    """
    if engine.jobs():
        return []
    rng = random.Random(seed)
    info = {n[0]: n for n in nodes}
    free = {n[0]: list(range(n[4])) for n in nodes}
    share = rng.uniform(0.62, 0.70)
    jobs: list[Job] = []
    big_done = {"train": False, "infer": False}
    seen: set[str] = set()  # models and "multi-node" already shown: each shows up once at least

    def mem_of(model: str) -> int:
        try:
            return catalog.spec(model).mem_mib
        except KeyError:
            return 65536

    def make(kind: str, placed: list[tuple[str, list[int]]]) -> None:
        _, _, pool, model, _ = info[placed[0][0]]
        choices = _RUNTIMES.get("nvidia" if pool == "nvidia" else model, (("portable", 1),))
        runtime = rng.choices([r for r, _ in choices], [w for _, w in choices])[0]
        if model not in seen:  # the first job on a model uses its native stack
            seen.add(model)
            runtime = choices[0][0]
        cap = mem_of(model)
        big = pool == "nvidia" and (
            not big_done[kind] or rng.random() < (0.25 if kind == "train" else 0.06))
        if big:
            big_done[kind] = True
            frac = rng.uniform(0.86, 0.96)
        else:
            frac = rng.uniform(0.45, 0.85) if kind == "train" else rng.uniform(0.15, 0.55)
        mem = int(cap * frac) // 256 * 256
        if not big and pool == "nvidia":
            mem = min(mem, 60 * 1024)  # most Nvidia jobs would fit a 910B
        for node, devs in placed:
            free[node] = [d for d in free[node] if d not in devs]
        jobs.append(Job(
            id=f"j-{1001 + len(jobs)}",
            name=rng.choice(TRAINING if kind == "train" else INFERENCE),
            owner=rng.choice(OWNERS), pool=pool, nodes=len(placed),
            devices_per_node=len(placed[0][1]), mem_per_device_mib=mem, runtime=runtime,
            priority=rng.choice((20, 30, 40, 50) if kind == "train" else (60, 70, 80, 90)),
            state="running", placement=tuple(Placement(n, tuple(d)) for n, d in placed),
        ))

    # Each model is about as busy as the fleet, so every pool and model keeps room to move to.
    groups: dict[str, list[str]] = {}
    for n in rng.sample(nodes, len(nodes)):
        groups.setdefault(n[3], []).append(n[0])
    for group in groups.values():
        goal = round(sum(info[g][4] for g in group) * share)

        def used(group: list[str] = group) -> int:
            return sum(info[g][4] - len(free[g]) for g in group)

        for name in group:  # training first: whole nodes, some spanning two
            width = min(8, info[name][4])
            if len(free[name]) < width or used() + width > goal * 0.75 or rng.random() > 0.6:
                continue
            placed = [(name, free[name][:width])]
            peers = [m for m in group if m != name and info[m][1] == info[name][1]
                     and len(free[m]) == info[m][4] >= width]
            if peers and used() + 2 * width <= goal and (
                    "multi" not in seen or rng.random() < 0.3):
                seen.add("multi")
                placed.append((peers[0], free[peers[0]][:width]))
            make("train", placed)
        for name in group:  # then inference, packed node by node
            limit = info[name][4] - round(info[name][4] * rng.uniform(0.0, 0.4))
            while used() < goal and free[name] and info[name][4] - len(free[name]) < limit:
                make("infer", [(name, free[name][: rng.choice((1, 1, 2))])])
    engine.submit_many(jobs)
    return jobs


def workload_for(engine: EmbeddedEngine, node: str) -> dict[int, list[tuple[int, str, int, float]]]:
    """device index -> (pid, name, mem_mib, util_pct) of the jobs placed on `node`, for the
    demo's simulated agents: what the engine says runs there is what the screens show."""
    out: dict[int, list[tuple[int, str, int, float]]] = {}
    for job, devices in engine.jobs_on(node):
        h = zlib.crc32(job.id.encode())
        training = job.nodes * job.devices_per_node >= 4
        util = float(85 + h % 13) if training else float(30 + h % 45)
        for d in devices:
            out.setdefault(d, []).append(
                (pid_for(job.id, node, d), f"{job.id}:{job.name}", job.mem_per_device_mib, util))
    return out
