"""Security: hostile values never reach a shell or an SSH option, host keys are checked, and
secrets stay out of the audit log, the logs and the screen.

- Inventory: node names, data center names, hosts, users and proxy jumps with shell
  metacharacters or a leading '-' are refused when the file is loaded.
- Operations: node names, job ids and reasons with `$(...)`, backticks, `;`, `--` and leading
  '-' are refused (exit 2) or stay inert text; no command they carry ever runs.
- Audit: a private key or an SSH key path in a reason is masked in the audit log.
- Host keys: an unknown key is refused unless --accept-new-hosts; a changed key always is.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sshd
from sshd import SshdFleet

from console.model.inventory import InventoryError, parse_inventory

FLEETOPS = str(Path(sys.executable).parent / "fleetops")
sshd_fleet = sshd.sshd_fleet

FAKE_KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQFAKEKEYBODY" + "Q" * 40
FAKE_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n" + FAKE_KEY_BODY + "\n"
            "-----END OPENSSH PRIVATE KEY-----")


# -- inventory: hostile names refused at load ------------------------------------------------------

BASE = {"user": "ops", "proxy_jump": "bastion", "dc": "dc1", "name": "n1", "host": "10.0.0.1"}


def inventory_text(**over: str) -> str:
    v = {**BASE, **over}
    q = json.dumps  # a JSON string is a TOML basic string
    return f"""
[defaults]
user = {q(v["user"])}
proxy_jump = {q(v["proxy_jump"])}
[[dc]]
name = {q(v["dc"])}
region = "r"
country = "XX"
[[dc.node]]
name = {q(v["name"])}
host = {q(v["host"])}
pool = "nvidia"
"""


HOSTILE_VALUES = [
    "a;touch /tmp/pwned", "$(touch /tmp/pwned)", "`touch /tmp/pwned`", "a|sh", "a&&b", "a>b",
    "a b", "a\tb", "a\nb", "a'b", 'a"b', "a\\b", "a*", "~root", "a\x1b]0;PWNED\x07", "-rf", "--",
    "-", "-oProxyCommand=touch /tmp/pwned", "--help", "",
]
HOSTILE_NAMES = [*HOSTILE_VALUES, ".hidden", "a/b", "../etc", "a" * 64, "é"]
CASES = ([("name", v) for v in HOSTILE_NAMES] + [("dc", v) for v in HOSTILE_NAMES]
         + [(f, v) for f in ("host", "user", "proxy_jump") for v in HOSTILE_VALUES])


def test_the_baseline_inventory_loads():
    node = parse_inventory(inventory_text()).nodes[0]
    assert (node.name, node.host, node.ssh.user, node.ssh.proxy_jump) == \
        ("n1", "10.0.0.1", "ops", "bastion")


@pytest.mark.parametrize(("field", "value"), CASES, ids=[f"{f}={v!r}" for f, v in CASES])
def test_hostile_inventory_values_are_refused_at_load(field, value):
    with pytest.raises(InventoryError) as err:
        parse_inventory(inventory_text(**{field: value}))
    message = str(err.value)
    assert "\n" not in message and "\x1b" not in message  # one line, escaped
    assert field.replace("dc", "name") in message


def test_cli_refuses_an_option_injecting_host_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    inv = tmp_path / "inventory.toml"
    inv.write_text(inventory_text(host=f"-oProxyCommand=touch {marker}"))
    r = subprocess.run([FLEETOPS, "--inventory", str(inv), "nodes", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "must not start with '-'" in r.stderr
    assert r.stdout == "" and not marker.exists()


# -- operations with hostile arguments, against the demo fleet ---------------------------------


@pytest.fixture(scope="module")
def demo():
    p = subprocess.Popen([FLEETOPS, "demo", "--serve", "--nodes", "4", "--devices", "2",
                          "--interval", "0.2", "--seed", "11"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    path = p.stdout.readline().strip()
    assert path
    yield Path(path)
    p.terminate()
    p.wait(timeout=10)


def fo(inv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FLEETOPS, "--inventory", str(inv), *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def a_node(inv: Path) -> str:
    return json.loads(fo(inv, "nodes", "--json").stdout)[0]["name"]


def identity_file(inv: Path) -> Path:
    m = re.search(r'^identity_file = "(.*)"$', inv.read_text(), re.M)
    assert m
    return Path(m.group(1))


@pytest.fixture
def marker(tmp_path):
    """A file a successful injection would create."""
    path = Path("/tmp") / f"fleetops-pwned-{uuid.uuid4().hex}"
    yield path
    assert not path.exists(), f"an injected command ran: {path} exists"
    path.unlink(missing_ok=True)


def injections(m: Path) -> list[str]:
    return [f"$(touch {m})", f"`touch {m}`", f"x;touch {m}", f"x && touch {m}", f"x|touch {m}"]


def refused_cases(m: Path) -> list[list[str]]:
    cases = [["drain", "-rf", "--reason", "x", "--yes"],  # an option, not a node
             ["drain", "--reason", "x", "--yes", "--", "-rf"],
             ["cordon", "--yes", "--", "--help"],
             ["resume", "--yes", "--", "-oProxyCommand=touch " + str(m)],
             ["cordon", "--yes", "--", "a\x1b]0;PWNED-TITLE\x07"],
             ["move", "--to-pool", "domestic", "--reason", "x", "--yes", "--", "-1"],
             ["plan", "move", "--to-pool", "nvidia", "--", "--yes"],
             ["audit", "--since", f"$(touch {m})"]]
    for bad in injections(m):
        cases += [["drain", bad, "--reason", "x", "--yes"],
                  ["cordon", bad, "--yes"],
                  ["move", bad, "--to-pool", "domestic", "--reason", "x", "--yes"],
                  ["plan", "drain", bad],
                  ["plan", "evacuate", "--dc", bad]]
    return cases


def test_hostile_node_names_and_job_ids_are_refused(demo, marker):
    for args in refused_cases(marker):
        r = fo(demo, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr, args
        assert "\x1b" not in r.stderr and "\x07" not in r.stderr, args
        assert not marker.exists(), args


def test_hostile_text_in_filters_and_dry_runs_is_inert(demo, marker):
    node = a_node(demo)
    for bad in injections(marker):
        r = fo(demo, "jobs", "--node", bad, "--json")
        assert r.returncode == 0 and json.loads(r.stdout) == []
        r = fo(demo, "drain", node, "--reason", bad, "--dry-run", "--yes", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["plan"]["reason"] == bad  # kept as text, never run


def test_a_reason_with_a_key_is_masked_in_the_audit_log(demo, marker):
    node = a_node(demo)
    ident = identity_file(demo)
    reason = (f"; touch {marker} $(touch {marker}) `touch {marker}` {FAKE_KEY} "
              f"key was {ident}")
    r = fo(demo, "cordon", node, "--reason", reason, "--yes", "--json")
    try:
        assert r.returncode == 0, r.stderr
        entries = json.loads(fo(demo, "audit", "--json").stdout)
        mine = [e for e in entries if str(marker) in e["reason"]]
        assert mine and all(e["targets"] == [node] for e in mine)
        for e in mine:
            assert "[redacted private key]" in e["reason"]
            assert "[redacted ssh path]" in e["reason"]
            assert f"touch {marker}" in e["reason"]  # the rest is kept, as text
        key_lines = [line for line in ident.read_text().splitlines() if "-----" not in line]
        for args in (["audit", "--json"], ["audit", "--jsonl"], ["audit"]):
            out = fo(demo, *args)
            assert out.returncode == 0
            for secret in (FAKE_KEY_BODY, "BEGIN OPENSSH PRIVATE KEY", str(ident), *key_lines):
                assert secret not in out.stdout, (args, secret[:20])
    finally:
        assert fo(demo, "uncordon", node, "--yes").returncode == 0


def test_a_key_in_a_reason_never_reaches_the_screen(demo):
    node = a_node(demo)
    try:
        for extra in ([], ["--json"]):
            r = fo(demo, "cordon", node, "--reason", f"oops {FAKE_KEY}", "--yes", *extra)
            assert r.returncode == 0, r.stderr
            assert FAKE_KEY_BODY not in r.stdout + r.stderr
    finally:
        fo(demo, "uncordon", node, "--yes")


def test_a_key_in_a_reason_is_not_stored_anywhere(demo):
    node = a_node(demo)
    body = FAKE_KEY_BODY.replace("FAKEKEYBODY", "STOREDKEY00")
    try:
        r = fo(demo, "cordon", node, "--reason", "oops " + FAKE_KEY.replace(FAKE_KEY_BODY, body),
               "--yes")
        assert r.returncode == 0, r.stderr
    finally:
        fo(demo, "uncordon", node, "--yes")
    leaked = [p.name for p in demo.parent.iterdir()
              if p.is_file() and body.encode() in p.read_bytes()]
    assert leaked == []


# -- host keys ----------------------------------------------------------------------------------


def read_nodes(inv: Path, *flags: str) -> tuple[int, dict[str, dict]]:
    r = subprocess.run([FLEETOPS, *flags, "--inventory", str(inv), "nodes", "--json",
                        "--timeout", "15"], capture_output=True, text=True, timeout=60)
    return r.returncode, {n["name"]: n for n in json.loads(r.stdout)}


@pytest.mark.sshd
def test_unknown_and_changed_host_keys_are_refused(sshd_fleet: SshdFleet, tmp_path):
    # A known_hosts that does not exist yet: every host key is unknown.
    known = tmp_path / "known_hosts.fresh"
    text = sshd_fleet.write_inventory(tmp_path / "trusted.toml").read_text()
    inv = tmp_path / "inventory.toml"
    inv.write_text(text.replace(json.dumps(str(sshd_fleet.known_hosts)), json.dumps(str(known))))

    status, nodes = read_nodes(inv)
    assert status == 3
    assert {n["state"] for n in nodes.values()} == {"host-key-mismatch"}
    assert all("not trusted" in n["error"] for n in nodes.values())
    assert not known.exists() or known.read_text() == ""

    status, nodes = read_nodes(inv, "--accept-new-hosts")  # unknown keys: learnt
    assert status == 0, nodes
    assert {n["state"] for n in nodes.values()} == {"live"}
    learnt = known.read_text()
    assert len(learnt.splitlines()) == len(nodes)

    sshd_fleet.rotate_host_key()  # now every key the console knows has changed
    for flags in ((), ("--accept-new-hosts",)):
        status, nodes = read_nodes(inv, *flags)
        assert status == 3, flags
        assert {n["state"] for n in nodes.values()} == {"host-key-mismatch"}, flags
        assert all(n["devices"] == [] for n in nodes.values())
        assert known.read_text() == learnt, "a changed key was written to known_hosts"


@pytest.mark.sshd
def test_a_bad_identity_file_never_shows_its_contents(sshd_fleet: SshdFleet, tmp_path):
    ident = tmp_path / "id_broken"
    ident.write_text(FAKE_KEY + "\n")
    ident.chmod(0o600)
    text = sshd_fleet.write_inventory(tmp_path / "good.toml").read_text()
    inv = tmp_path / "inventory.toml"
    inv.write_text(text.replace(json.dumps(str(sshd_fleet.client_key)), json.dumps(str(ident))))
    r = subprocess.run([FLEETOPS, "--inventory", str(inv), "nodes", "--json", "--timeout", "15"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3
    nodes = json.loads(r.stdout)
    assert {n["state"] for n in nodes} <= {"down", "auth-failed"}
    assert all(n["error"] for n in nodes)
    assert FAKE_KEY_BODY not in r.stdout + r.stderr
    assert "PRIVATE KEY-----" not in r.stdout + r.stderr
