"""The fleet inventory: a TOML file of data centers and nodes, loaded into a flat, resolved view.

The documented keys are a public contract (people write the file by hand, tools generate it), so
parsing is strict: unknown keys, wrong types and unsafe names are errors, reported on one line
naming the file, the entry and the field (see inventory_errors). SSH settings resolve with the
precedence node > data center > [defaults] > built-in defaults.

Pure apart from reading the file: no SSH, no DNS, no filesystem checks of the paths it names.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from console.model.inventory_errors import (
    InventoryError,
    UnknownNode,
    entry_name,
    explain,
    hint,
    locate,
    show,
)

__all__ = [
    "ConsoleSettings",
    "DataCenter",
    "EmbeddedEngine",
    "Inventory",
    "InventoryError",
    "Node",
    "PolicySettings",
    "SlurmEngine",
    "SshSettings",
    "UnknownNode",
    "default_inventory_path",
    "load_inventory",
    "parse_inventory",
]

Pool = Literal["nvidia", "domestic"]
POOLS: tuple[Pool, ...] = ("nvidia", "domestic")

DEFAULT_COMMAND = "fleetops-agent stream"
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_KEEPALIVE_S = 15.0
DEFAULT_INTERVAL_S = 1.0

# Node names end up in remote commands, file names and Slurm arguments: keep them boring.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
# Characters a shell would interpret; host/user/proxy_jump are passed as SSH arguments, where a
# leading '-' is an option ("-oProxyCommand=...") and these are an injection waiting to happen.
SHELL_META = frozenset(";&|$`<>()\\'\"*?!{}[]#~")


# --- validators (ValueError text becomes the message after "field: ") -----------------------


def _name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(
            "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit, "
            f"got {show(value)}"
        )
    return value


def _ssh_arg(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if value.startswith("-"):
        raise ValueError(
            f"must not start with '-' (it would be read as an option), got {show(value)}"
        )
    bad = sorted({c for c in value if c in SHELL_META or c.isspace() or not c.isprintable()})
    if bad:
        listed = " ".join(repr(c) for c in bad)
        raise ValueError(
            f"must not contain whitespace or shell metacharacters ({listed}), got {show(value)}"
        )
    return value


def _between(lo: float, hi: float) -> AfterValidator:
    def check(value: float) -> float:
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {show(value)}")
        return value

    return AfterValidator(check)


NameStr = Annotated[str, AfterValidator(_name)]
SshArg = Annotated[str, AfterValidator(_ssh_arg)]
NonEmpty = Annotated[str, Field(min_length=1)]
Port = Annotated[int, _between(1, 65535)]
Share = Annotated[float, _between(0, 1)]
Seconds = Annotated[float, Field(gt=0)]


# --- raw file models: exactly the documented keys ----------------------------------------------


class _Raw(BaseModel):
    # strict: TOML has real types, so "22" for a port or "yes" for a bool is a mistake, not input
    # to coerce; forbid: a typo in a key must not silently fall back to a default.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class RawSsh(_Raw):
    """Connection settings allowed in [defaults], [[dc]] and [[dc.node]]; None = inherit."""

    user: SshArg | None = None
    port: Port | None = None
    identity_file: NonEmpty | None = None
    known_hosts: NonEmpty | None = None
    proxy_jump: SshArg | None = None
    command: NonEmpty | None = None
    connect_timeout_s: Seconds | None = None
    keepalive_s: Annotated[float, Field(ge=0)] | None = None  # 0 disables keepalives
    interval_s: Seconds | None = None


class RawDefaults(RawSsh):
    pass


class _NodeKeys(_Raw):
    name: NameStr
    host: SshArg
    pool: Pool
    labels: dict[str, str] = Field(default_factory=dict)


# Pydantic orders fields from the last base to the first, so identity keys come before the SSH
# ones and a node missing its name reports that rather than some later field.
class RawNode(RawSsh, _NodeKeys):
    pass


class _DcKeys(_Raw):
    name: NameStr
    region: NonEmpty
    country: NonEmpty
    domestic_target: Share | None = None
    allowed_models: list[NonEmpty] | None = None  # None = every model; [] = none
    node: list[RawNode] = Field(default_factory=list)


class RawDc(RawSsh, _DcKeys):  # same field order trick as RawNode
    pass


class RawEmbeddedEngine(_Raw):
    kind: Literal["embedded"]
    db_path: NonEmpty | None = None


class RawSlurmEngine(_Raw):
    kind: Literal["slurm"]
    controller: NameStr | None = None  # a node name, or absent/"local" for local commands
    partitions: dict[Pool, NameStr] = Field(default_factory=dict)


class RawConsole(_Raw):
    read_only: bool = False
    dry_run: bool = False  # plan and audit every action, execute none
    theme: NonEmpty | None = None
    audit_path: NonEmpty | None = None
    journal_path: NonEmpty | None = None


class RawPolicy(_Raw):
    """Guardrails (README, "Operating as a team"): 1.0 / 0 switch a limit off."""

    max_out_of_service_share: Share = 0.5
    max_nodes_per_window: Annotated[int, Field(ge=0)] = 10
    window_s: Seconds = 600.0


class RawInventory(_Raw):
    defaults: RawDefaults = Field(default_factory=RawDefaults)
    dc: Annotated[list[RawDc], Field(min_length=1)]
    engine: Annotated[RawEmbeddedEngine | RawSlurmEngine, Field(discriminator="kind")] = Field(
        default_factory=lambda: RawEmbeddedEngine(kind="embedded")
    )
    console: RawConsole = Field(default_factory=RawConsole)
    policy: RawPolicy = Field(default_factory=RawPolicy)


_ENGINES: dict[str, type[_Raw]] = {"embedded": RawEmbeddedEngine, "slurm": RawSlurmEngine}


# --- resolved view ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SshSettings:
    """Effective connection settings of one node. None = leave it to ~/.ssh/config / SSH's own
    default (so a Host alias keeps its Port, User, IdentityFile)."""

    user: str | None
    port: int | None
    identity_file: Path | None
    known_hosts: Path | None
    proxy_jump: str | None
    command: str
    connect_timeout_s: float
    keepalive_s: float


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    dc: str
    host: str
    pool: Pool
    labels: dict[str, str]
    ssh: SshSettings
    interval_s: float


@dataclass(frozen=True, slots=True)
class DataCenter:
    name: str
    region: str
    country: str
    domestic_target: float | None
    allowed_models: tuple[str, ...] | None  # None = all models are placement targets
    nodes: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class EmbeddedEngine:
    db_path: Path
    kind: Literal["embedded"] = field(default="embedded", init=False)


@dataclass(frozen=True, slots=True)
class SlurmEngine:
    controller: str | None  # node to run Slurm commands on over SSH; None = locally
    partitions: dict[str, str]  # pool -> partition
    kind: Literal["slurm"] = field(default="slurm", init=False)


Engine = EmbeddedEngine | SlurmEngine


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    read_only: bool
    theme: str | None
    audit_path: Path | None
    journal_path: Path | None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Guardrail limits; None: that limit is off."""

    max_out_of_service_share: float | None = 0.5
    max_nodes_per_window: int | None = 10
    window_s: float = 600.0


@dataclass(frozen=True, slots=True)
class Inventory:
    path: Path
    dcs: tuple[DataCenter, ...]
    nodes: tuple[Node, ...]
    engine: Engine
    console: ConsoleSettings
    raw: RawInventory = field(repr=False, compare=False)
    policy: PolicySettings = field(default_factory=PolicySettings)
    _by_name: dict[str, Node] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {n.name: n for n in self.nodes})

    def node(self, name: str) -> Node:
        """The node called `name`; UnknownNode (a KeyError) suggesting close names otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownNode(str(self.path), name, tuple(self._by_name)) from None

    def dc(self, name: str) -> DataCenter:
        for dc in self.dcs:
            if dc.name == name:
                return dc
        known = [d.name for d in self.dcs]
        raise InventoryError(
            str(self.path), None, "dc", f"no data center named {show(name)}{hint(name, known)}"
        )

    def filter(self, dc: str | None = None, pool: str | None = None) -> list[Node]:
        """Nodes in data center `dc` and/or pool `pool` (None = any), in file order."""
        if pool is not None and pool not in POOLS:
            raise InventoryError(
                str(self.path), None, "pool", f"must be 'nvidia' or 'domestic', got {show(pool)}"
            )
        nodes = self.dc(dc).nodes if dc is not None else self.nodes
        return [n for n in nodes if pool is None or n.pool == pool]


# --- loading ------------------------------------------------------------------------------------


def _xdg(var: str, fallback: str) -> Path:
    # The XDG spec says relative values are invalid and must be ignored.
    value = os.environ.get(var, "")
    return Path(value) if os.path.isabs(value) else Path.home() / fallback


def default_inventory_path() -> Path:
    """$XDG_CONFIG_HOME/fleetops/inventory.toml, or ~/.config/fleetops/inventory.toml."""
    return _xdg("XDG_CONFIG_HOME", ".config") / "fleetops" / "inventory.toml"


def default_db_path() -> Path:
    """$XDG_STATE_HOME/fleetops/jobs.db, or ~/.local/state/fleetops/jobs.db."""
    return _xdg("XDG_STATE_HOME", ".local/state") / "fleetops" / "jobs.db"


def load_inventory(path: str | os.PathLike[str] | None = None) -> Inventory:
    """Read and resolve the inventory at `path` (default: default_inventory_path())."""
    path = Path(path) if path is not None else default_inventory_path()
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InventoryError(
            str(path), None, None, "file not found (see examples/inventory.toml)"
        ) from None
    except UnicodeDecodeError as exc:
        raise InventoryError(
            str(path), None, None, f"not UTF-8 (bad byte at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise InventoryError(str(path), None, None, f"cannot read: {exc.strerror or exc}") from None
    # Relative paths inside the file are relative to the file, wherever the console runs from.
    return _build(text, path, path.absolute().parent)


def parse_inventory(text: str, path: str | os.PathLike[str] = "<string>") -> Inventory:
    """Parse inventory TOML `text`; `path` names it in errors and anchors relative paths."""
    path = Path(path)
    return _build(text, path, path.parent)


def _build(text: str, path: Path, base: Path) -> Inventory:
    file = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        raise InventoryError(file, None, None, f"invalid TOML: {exc}") from None
    try:
        raw = RawInventory.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc, file, data) from None
    return _resolve(raw, path, base)


def _from_validation_error(exc: ValidationError, file: str, data: dict[str, Any]) -> InventoryError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = list(first["loc"])
    if loc[:1] == ["engine"]:
        if len(loc) > 1 and loc[1] in _ENGINES:
            del loc[1]  # the discriminated union's tag, not a key of the file
        elif first["type"].startswith("union_tag"):
            loc.append("kind")
    entry, fld = locate(loc, data)
    message = explain({**first, "loc": tuple(loc)}, _keys_at(loc, data))
    return InventoryError(file, entry, fld, message, more=len(errors) - 1)


def _keys_at(loc: list[str | int], data: dict[str, Any]) -> list[str]:
    """Valid keys of the table holding the last element of `loc` (for typo suggestions)."""
    parent = loc[:-1]
    model: type[BaseModel] = RawInventory
    if parent == ["defaults"]:
        model = RawDefaults
    elif parent == ["console"]:
        model = RawConsole
    elif parent == ["policy"]:
        model = RawPolicy
    elif parent == ["engine"]:
        engine = data.get("engine")
        kind = engine.get("kind") if isinstance(engine, dict) else None
        model = (
            _ENGINES.get(kind, RawEmbeddedEngine) if isinstance(kind, str) else RawEmbeddedEngine
        )
    elif len(parent) == 2 and parent[0] == "dc":
        model = RawDc
    elif len(parent) == 4 and parent[2] == "node":
        model = RawNode
    return list(model.model_fields)


def _resolve(raw: RawInventory, path: Path, base: Path) -> Inventory:
    file = str(path)
    problems: list[tuple[str, str, str]] = []  # (entry, field, message); first one is raised

    def local_path(value: str | None, entry: str, key: str) -> Path | None:
        if value is None:
            return None
        try:
            p = Path(value).expanduser()
        except RuntimeError:  # "~someone/..." for a user this machine does not know
            problems.append((entry, key, f"cannot expand '~' in {show(value)}"))
            return None
        return p if p.is_absolute() else base / p

    d = raw.defaults
    seen_dc: dict[str, str] = {}
    seen_node: dict[str, str] = {}
    dcs: list[DataCenter] = []
    for i, rdc in enumerate(raw.dc):
        dc_entry = entry_name("dc", i, {"name": rdc.name})
        if rdc.name in seen_dc:
            problems.append(
                (dc_entry, "name", f"duplicate data center name (also {seen_dc[rdc.name]})")
            )
        seen_dc.setdefault(rdc.name, dc_entry)
        nodes: list[Node] = []
        for j, rn in enumerate(rdc.node):
            entry = f"{dc_entry} {entry_name('node', j, {'name': rn.name})}"
            if rn.name in seen_node:
                problems.append((entry, "name", f"duplicate node name (also {seen_node[rn.name]})"))
            seen_node.setdefault(rn.name, entry)

            def pick(key: str, builtin: Any = None, _n: RawNode = rn, _dc: RawDc = rdc) -> Any:
                # node > dc > [defaults] > built-in; None means "not set at this level".
                for level in (_n, _dc, d):
                    value = getattr(level, key)
                    if value is not None:
                        return value
                return builtin

            ssh = SshSettings(
                user=pick("user"),
                port=pick("port"),
                identity_file=local_path(pick("identity_file"), entry, "identity_file"),
                known_hosts=local_path(pick("known_hosts"), entry, "known_hosts"),
                proxy_jump=pick("proxy_jump"),
                command=pick("command", DEFAULT_COMMAND),
                connect_timeout_s=float(pick("connect_timeout_s", DEFAULT_CONNECT_TIMEOUT_S)),
                keepalive_s=float(pick("keepalive_s", DEFAULT_KEEPALIVE_S)),
            )
            nodes.append(
                Node(
                    name=rn.name,
                    dc=rdc.name,
                    host=rn.host,
                    pool=rn.pool,
                    labels=dict(rn.labels),
                    ssh=ssh,
                    interval_s=float(pick("interval_s", DEFAULT_INTERVAL_S)),
                )
            )
        allowed = None if rdc.allowed_models is None else tuple(dict.fromkeys(rdc.allowed_models))
        dcs.append(
            DataCenter(
                rdc.name, rdc.region, rdc.country, rdc.domestic_target, allowed, tuple(nodes)
            )
        )

    engine: Engine
    if isinstance(raw.engine, RawSlurmEngine):
        controller = raw.engine.controller
        if controller == "local":
            controller = None
        if controller is not None and controller not in seen_node:
            problems.append(
                (
                    "[engine]",
                    "controller",
                    f"no node named {show(controller)}{hint(controller, list(seen_node))}"
                    " (use 'local' to run Slurm commands on the console host)",
                )
            )
        engine = SlurmEngine(controller, dict(raw.engine.partitions))
    else:
        db_path = local_path(raw.engine.db_path, "[engine]", "db_path")
        engine = EmbeddedEngine(db_path if db_path is not None else default_db_path())

    c = raw.console
    console = ConsoleSettings(
        c.read_only,
        c.theme,
        local_path(c.audit_path, "[console]", "audit_path"),
        local_path(c.journal_path, "[console]", "journal_path"),
        c.dry_run,
    )
    p = raw.policy
    policy = PolicySettings(
        None if p.max_out_of_service_share >= 1 else p.max_out_of_service_share,
        p.max_nodes_per_window or None,
        p.window_s,
    )

    if problems:
        entry, fld, message = problems[0]
        raise InventoryError(file, entry, fld, message, more=len(problems) - 1)

    nodes_flat = tuple(n for dc in dcs for n in dc.nodes)
    return Inventory(path, tuple(dcs), nodes_flat, engine, console, raw, policy)
