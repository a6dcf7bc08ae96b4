"""Inventory loader: precedence, defaults, and one-line errors naming file, entry and field."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from console.model.inventory import (
    DEFAULT_COMMAND,
    EmbeddedEngine,
    Inventory,
    InventoryError,
    SlurmEngine,
    UnknownNode,
    default_inventory_path,
    load_inventory,
    parse_inventory,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "inventory.toml"

FULL = """
[defaults]
user = "fleetops"
port = 22
identity_file = "~/.ssh/fleet"
known_hosts = "keys/known_hosts"
proxy_jump = "jump.example.com"
command = "fleetops-agent stream --fast"
connect_timeout_s = 5
keepalive_s = 30
interval_s = 0.5

[[dc]]
name = "hangzhou"
region = "cn-east"
country = "CN"
port = 2200
user = "hz"

[[dc.node]]
name = "hz-01"
host = "10.0.0.1"
pool = "nvidia"
port = 2201
labels = { rack = "a1", "any key" = "ok" }

[[dc.node]]
name = "hz-02"
host = "hz-02"
pool = "domestic"

[[dc]]
name = "xining"
region = "cn-northwest"
country = "CN"
domestic_target = 0.72
allowed_models = ["910B", "MLU590", "910B"]

[[dc.node]]
name = "xn-01"
host = "172.16.0.1"
pool = "domestic"
identity_file = "/etc/fleetops/xn_key"
keepalive_s = 0
interval_s = 2

[engine]
kind = "slurm"
controller = "hz-02"
partitions = { nvidia = "gpu", domestic = "npu" }

[console]
read_only = true
theme = "dark"
audit_path = "audit.jsonl"
journal_path = "~/journal.jsonl"
"""

MINIMAL = """
[[dc]]
name = "lab"
region = "r"
country = "CN"

[[dc.node]]
name = "n1"
host = "n1"
pool = "nvidia"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return path


def test_full_file_precedence(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, FULL))
    assert [d.name for d in inv.dcs] == ["hangzhou", "xining"]
    assert [n.name for n in inv.nodes] == ["hz-01", "hz-02", "xn-01"]
    hz1, hz2, xn1 = inv.nodes
    # node > dc > defaults
    assert (hz1.ssh.port, hz2.ssh.port, xn1.ssh.port) == (2201, 2200, 22)
    assert (hz1.ssh.user, xn1.ssh.user) == ("hz", "fleetops")
    assert xn1.ssh.keepalive_s == 0 and hz1.ssh.keepalive_s == 30
    assert (xn1.interval_s, hz1.interval_s) == (2.0, 0.5)
    assert hz1.ssh.command == "fleetops-agent stream --fast"
    assert hz1.ssh.connect_timeout_s == 5.0 and hz1.ssh.proxy_jump == "jump.example.com"
    # paths: ~ expanded, relative to the file's directory, absolute kept
    assert hz1.ssh.identity_file == Path("~/.ssh/fleet").expanduser()
    assert hz1.ssh.known_hosts == tmp_path / "keys" / "known_hosts"
    assert xn1.ssh.identity_file == Path("/etc/fleetops/xn_key")
    assert hz1.labels == {"rack": "a1", "any key": "ok"}
    assert (hz1.dc, hz1.pool, xn1.dc, xn1.pool) == ("hangzhou", "nvidia", "xining", "domestic")
    xining = inv.dcs[1]
    assert xining.domestic_target == 0.72
    assert xining.allowed_models == ("910B", "MLU590")
    assert inv.dcs[0].allowed_models is None and inv.dcs[0].domestic_target is None
    assert inv.engine == SlurmEngine("hz-02", {"nvidia": "gpu", "domestic": "npu"})
    assert inv.console.read_only and inv.console.theme == "dark"
    assert inv.console.audit_path == tmp_path / "audit.jsonl"
    assert inv.console.journal_path == Path("~/journal.jsonl").expanduser()
    assert inv.node("xn-01") is xn1
    assert inv.filter(pool="domestic") == [hz2, xn1]
    assert inv.filter(dc="hangzhou", pool="nvidia") == [hz1]
    assert inv.filter() == [hz1, hz2, xn1]


def test_minimal_file_builtin_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    inv = parse_inventory(MINIMAL)
    (node,) = inv.nodes
    assert node.ssh.user is None and node.ssh.port is None  # left to ~/.ssh/config
    assert node.ssh.identity_file is None and node.ssh.proxy_jump is None
    assert node.ssh.command == DEFAULT_COMMAND == "fleetops-agent stream"
    assert (node.ssh.connect_timeout_s, node.ssh.keepalive_s, node.interval_s) == (10, 15, 1.0)
    assert node.labels == {}
    assert inv.engine == EmbeddedEngine(tmp_path / "state" / "fleetops" / "jobs.db")
    assert inv.console.read_only is False and inv.console.audit_path is None
    assert inv.path == Path("<string>")


def test_slurm_local_controller() -> None:
    text = MINIMAL + '[engine]\nkind = "slurm"\ncontroller = "local"\n'
    assert parse_inventory(text).engine == SlurmEngine(None, {})


def test_embedded_db_path_relative_to_file(tmp_path: Path) -> None:
    inv = load_inventory(
        write(tmp_path, MINIMAL + '[engine]\nkind = "embedded"\ndb_path = "j.db"\n')
    )
    assert inv.engine == EmbeddedEngine(tmp_path / "j.db")


def test_example_file_loads() -> None:
    inv = load_inventory(EXAMPLE)
    assert [d.name for d in inv.dcs] == ["hangzhou", "xining", "singapore", "frankfurt"]
    xining = inv.dc("xining")
    assert xining.domestic_target == 0.72
    assert xining.allowed_models is not None and "H20" not in xining.allowed_models
    assert all(len(d.nodes) >= 2 for d in inv.dcs)
    assert isinstance(inv.engine, EmbeddedEngine)
    assert inv.node("xn-04").ssh.port == 2222
    assert inv.node("xn-04").ssh.connect_timeout_s == 20


def test_default_inventory_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_inventory_path() == tmp_path / "fleetops" / "inventory.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")  # the XDG spec says ignore it
    assert default_inventory_path() == Path.home() / ".config" / "fleetops" / "inventory.toml"


def _dc(nodes: str = "", extra: str = "", name: str = "lab") -> str:
    return f'[[dc]]\nname = "{name}"\nregion = "r"\ncountry = "CN"\n{extra}\n{nodes}'


def _node(name: str = "n1", host: str = "h1", pool: str = "nvidia", extra: str = "") -> str:
    return f'[[dc.node]]\nname = "{name}"\nhost = "{host}"\npool = "{pool}"\n{extra}\n'


# (TOML text, fragments the one-line message must contain besides the file name)
BROKEN = [
    pytest.param(
        MINIMAL + "[console]\nread_only = tru\n",
        ["invalid TOML", "line 12", "column"],
        id="bad-toml",
    ),
    pytest.param(
        _dc("".join(_node(f"xn-0{i}") for i in range(1, 4)) + _node("xn-04", pool="ascend")),
        ["dc[0] 'lab' node[3] 'xn-04': pool: must be 'nvidia' or 'domestic', got 'ascend'"],
        id="unknown-pool",
    ),
    pytest.param(
        _dc(_node("n1")) + _dc(_node("n2") + _node("n1", host="h2"), name="other"),
        ["dc[1] 'other' node[1] 'n1': name: duplicate node name", "dc[0] 'lab' node[0] 'n1'"],
        id="duplicate-node",
    ),
    pytest.param(
        _dc(_node("n1")) + _dc(_node("n2")),
        ["dc[1] 'lab': name: duplicate data center name", "also dc[0] 'lab'"],
        id="duplicate-dc",
    ),
    pytest.param(
        _dc('[[dc.node]]\nhost = "h"\npool = "nvidia"\n'),
        ["dc[0] 'lab' node[0]: name: required key missing"],
        id="missing-node-name",
    ),
    pytest.param(
        _dc('[[dc.node]]\nname = "n1"\npool = "nvidia"\n'),
        ["dc[0] 'lab' node[0] 'n1': host: required key missing"],
        id="missing-host",
    ),
    pytest.param(
        _dc('[[dc.node]]\nname = "n1"\nhost = "h"\n'),
        ["dc[0] 'lab' node[0] 'n1': pool: required key missing"],
        id="missing-pool",
    ),
    pytest.param(
        '[[dc]]\nregion = "r"\ncountry = "CN"\n',
        ["dc[0]: name: required key missing"],
        id="missing-dc-name",
    ),
    pytest.param(
        "[defaults]\nport = 22\n",
        ["top level: dc: required key missing"],
        id="missing-dc",
    ),
    pytest.param(
        _dc(_node(extra='lables = { a = "b" }')),
        ["dc[0] 'lab' node[0] 'n1': lables: unknown key; did you mean 'labels'?"],
        id="unknown-key-typo-node",
    ),
    pytest.param(
        "[defaults]\nconect_timeout_s = 3\n" + MINIMAL,
        ["[defaults]: conect_timeout_s: unknown key; did you mean 'connect_timeout_s'?"],
        id="unknown-key-typo-defaults",
    ),
    pytest.param(
        MINIMAL + '[engine]\nkind = "slurm"\npartition = { nvidia = "gpu" }\n',
        ["[engine]: partition: unknown key; did you mean 'partitions'?"],
        id="unknown-key-typo-engine",
    ),
    pytest.param(
        _dc(_node(extra="port = 0")),
        ["dc[0] 'lab' node[0] 'n1': port: must be between 1 and 65535, got 0"],
        id="port-0",
    ),
    pytest.param(
        _dc(_node(extra='port = "22"')),
        ["dc[0] 'lab' node[0] 'n1': port: must be an integer, got string '22'"],
        id="port-string",
    ),
    pytest.param(
        _dc(_node(), extra="domestic_target = 1.5"),
        ["dc[0] 'lab': domestic_target: must be between 0 and 1, got 1.5"],
        id="domestic-target-1.5",
    ),
    pytest.param(
        _dc(_node(name="n1;reboot")),
        ["dc[0] 'lab' node[0] 'n1;reboot': name: must be 1-63 letters"],
        id="node-name-semicolon",
    ),
    pytest.param(
        _dc(_node(name="-n1")),
        ["dc[0] 'lab' node[0] '-n1': name: must be 1-63 letters"],
        id="node-name-leading-dash",
    ),
    pytest.param(
        _dc(_node(host="-oProxyCommand=x")),
        ["dc[0] 'lab' node[0] 'n1': host: must not start with '-'"],
        id="host-option-injection",
    ),
    pytest.param(
        _dc(_node(host="h1 $(reboot)")),
        ["dc[0] 'lab' node[0] 'n1': host: must not contain whitespace or shell metacharacters"],
        id="host-metacharacters",
    ),
    pytest.param(
        MINIMAL + '[engine]\nkind = "k8s"\n',
        ["[engine]: kind: must be 'embedded' or 'slurm', got 'k8s'"],
        id="engine-kind-k8s",
    ),
    pytest.param(
        MINIMAL + '[engine]\nkind = "slurm"\ncontroller = "n01"\n',
        ["[engine]: controller: no node named 'n01'", "did you mean 'n1'?"],
        id="slurm-controller-unknown-node",
    ),
    pytest.param(
        MINIMAL + '[engine]\nkind = "slurm"\npartitions = { ascend = "npu" }\n',
        ["[engine]: partitions.ascend: key must be 'nvidia' or 'domestic'"],
        id="slurm-partition-unknown-pool",
    ),
    pytest.param(
        MINIMAL + '[console]\nread_only = "yes"\n',
        ["[console]: read_only: must be true or false, got string 'yes'"],
        id="console-read-only-string",
    ),
    pytest.param(
        _dc(_node(extra="labels = { gpus = 8 }")),
        ["dc[0] 'lab' node[0] 'n1': labels.gpus: must be a string, got integer 8"],
        id="label-value-not-string",
    ),
    pytest.param(
        _dc(_node(pool="ascend", extra="port = 0")),
        ["node[0] 'n1': pool: must be", "(+1 more)"],
        id="several-errors-count",
    ),
]


@pytest.mark.parametrize(("text", "fragments"), BROKEN)
def test_broken_inventory(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(InventoryError, match=r"nope\.toml: file not found"):
        load_inventory(path)


def test_parse_error_names_given_path() -> None:
    with pytest.raises(InventoryError, match=r"^site\.toml: dc\[0\] 'lab' node\[0\] 'n1': port"):
        parse_inventory(_dc(_node(extra="port = 70000")), path="site.toml")


@pytest.fixture
def inv() -> Inventory:
    return parse_inventory(_dc(_node("xn-03") + _node("xn-04", host="h2"), name="xining"))


def test_unknown_node_suggests_close_names(inv: Inventory) -> None:
    with pytest.raises(UnknownNode) as info:
        inv.node("xn-4")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == "<string>: no node named 'xn-4'; did you mean 'xn-04' or 'xn-03'?"
    assert info.value.suggestions == ["xn-04", "xn-03"]
    clone = pickle.loads(pickle.dumps(info.value))
    assert type(clone) is UnknownNode and str(clone) == str(info.value)


def test_filter_unknown_dc_and_pool(inv: Inventory) -> None:
    with pytest.raises(
        InventoryError, match=r"dc: no data center named 'xinig'; did you mean 'xining'"
    ):
        inv.filter(dc="xinig")
    with pytest.raises(InventoryError, match=r"pool: must be 'nvidia' or 'domestic', got 'npu'"):
        inv.filter(pool="npu")


def test_models_are_frozen(inv: Inventory) -> None:
    from dataclasses import FrozenInstanceError

    from pydantic import ValidationError

    with pytest.raises(FrozenInstanceError):
        inv.nodes[0].host = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        inv.raw.dc[0].name = "x"  # type: ignore[misc]


def test_unknown_tilde_user_is_an_error() -> None:
    text = MINIMAL + '[console]\naudit_path = "~no-such-user-fleetops/audit.jsonl"\n'
    with pytest.raises(InventoryError, match=r"\[console\]: audit_path: cannot expand '~'"):
        parse_inventory(text)
