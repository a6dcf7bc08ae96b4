"""The daemon's socket is ours alone: the daemon never deletes what is not its own stale socket,
and `stream` relays nothing from a socket or a daemon of another uid. Real processes, real
sockets; waits are on conditions, deadlines only bound a failure."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from child_guard import guard
from conftest import require

from agents import sockpath
from agents.sockpath import default_socket, user_socket

AGENT = str(Path(sys.executable).parent / "fleetops-agent")
SIM = ["--collector", "sim", "--sim-devices", "1", "--interval", "0.1"]
NOBODY = 65534


def agent(*args) -> subprocess.CompletedProcess:
    return subprocess.run([AGENT, *args], capture_output=True, timeout=60)


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert err.startswith("fleetops-agent: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def client(path: str, deadline_s: float = 20) -> tuple[socket.socket, bytes]:
    """A connection to `path` once something serves it, and the first line it gets."""
    deadline = time.monotonic() + deadline_s
    while True:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(deadline_s)
        try:
            s.connect(path)
            return s, s.makefile("rb").readline()
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def first_line(path: str) -> bytes:
    s, line = client(path)
    s.close()
    return line


@contextlib.contextmanager
def daemon(path: str, *extra: str):
    p = subprocess.Popen([AGENT, "daemon", *SIM, "--socket", path, *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=guard())
    try:
        assert first_line(path).startswith(b'{"kind":"hello"')
        yield p
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=10)
        p.stderr.close()


def stale_socket(path: str) -> None:
    """A socket file nobody listens on: what a killed daemon leaves behind."""
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)


def private_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    return d


# -- the daemon takes nothing that is not its own stale socket --------------------------------

def test_regular_file_at_the_path_is_an_error_and_left_intact(tmp_path):
    path = private_dir(tmp_path) / "agent.sock"
    path.write_text("precious\n")
    one_line_error(agent("daemon", *SIM, "--socket", str(path)), str(path), "not a socket")
    one_line_error(agent("stream", "--socket", str(path)), str(path), "not a socket")
    assert path.read_text() == "precious\n"


def test_a_live_daemon_is_named_and_left_serving(tmp_path):
    path = str(private_dir(tmp_path) / "agent.sock")
    with daemon(path) as first:
        r = agent("daemon", *SIM, "--socket", path)
        one_line_error(r, path, f"pid {first.pid}")
        assert first.poll() is None
        r = agent("stream", "--socket", path, "--count", "1")
        assert r.returncode == 0 and r.stdout.startswith(b'{"kind":"hello"'), r.stderr


def test_two_daemons_starting_at_once_one_serves_the_other_names_it(tmp_path):
    path = str(private_dir(tmp_path) / "agent.sock")
    stale_socket(path)  # both find it stale: only the lock holder may replace it
    procs = [subprocess.Popen([AGENT, "daemon", *SIM, "--socket", path],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              preexec_fn=guard()) for _ in range(2)]
    try:
        deadline = time.monotonic() + 30
        while all(p.poll() is None for p in procs):  # the loser exits; the winner never does
            assert time.monotonic() < deadline, "neither daemon gave way"
            time.sleep(0.05)
        loser, winner = sorted(procs, key=lambda p: p.poll() is None)
        assert loser.returncode == 1
        err = loser.stderr.read().decode()
        assert err.count("\n") == 1 and "another daemon" in err and str(winner.pid) in err, err
        assert first_line(path).startswith(b'{"kind":"hello"')
        assert winner.poll() is None
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
            p.stderr.close()


def test_a_stale_socket_of_ours_is_replaced(tmp_path):
    path = str(private_dir(tmp_path) / "agent.sock")
    stale_socket(path)
    assert stat.S_IMODE(os.lstat(path).st_mode) != 0o600  # bound under the usual umask
    with daemon(path):  # serving: the stale file was replaced
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert not os.path.lexists(path)  # and it removes its own on the way out


def test_the_daemon_creates_its_directories_private(tmp_path):
    path = tmp_path / "state" / "fleetops-agent" / "agent.sock"
    with daemon(str(path)):
        for d in (path.parent.parent, path.parent):
            assert stat.S_IMODE(d.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_a_directory_writable_by_others_is_refused(tmp_path, mode):
    d = private_dir(tmp_path)
    path = str(d / "agent.sock")
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(path)
        listening.listen()
        d.chmod(mode)
        one_line_error(agent("daemon", *SIM, "--socket", path), str(d), "writable by")
        r = agent("stream", "--socket", path, "--count", "1")
        one_line_error(r, str(d), "writable by")
        assert r.stdout == b""
    assert os.path.lexists(path)


def test_a_symlinked_directory_is_refused(tmp_path):
    real = private_dir(tmp_path)
    (tmp_path / "link").symlink_to(real)
    path = str(tmp_path / "link" / "agent.sock")
    one_line_error(agent("daemon", *SIM, "--socket", path), "symlink")
    assert list(real.iterdir()) == []


# -- another uid: squatting -----------------------------------------------------------------

def need_root() -> None:
    require("root", os.geteuid() == 0, "a second uid (nobody) squats the socket")


class Squatter:
    """A child process that drops to uid/gid nobody and listens on a socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        ctl_r, self._ctl = os.pipe()
        self._ack, ack_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into pytest
            try:
                os.close(self._ctl)
                os.close(self._ack)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                s = socket.socket(socket.AF_UNIX)
                s.bind(path)
                s.listen()
                os.write(ack_w, b"listening")
                if os.read(ctl_r, 1):  # a byte: stop listening, leave the file (stale)
                    s.close()
                    os.write(ack_w, b"closed")
                    os.read(ctl_r, 1)  # EOF: the test is done
            except BaseException as exc:
                os.write(ack_w, repr(exc).encode())
            finally:
                os._exit(0)
        os.close(ctl_r)
        os.close(ack_w)
        assert os.read(self._ack, 200) == b"listening"

    def stop_listening(self) -> None:
        os.write(self._ctl, b"c")
        assert os.read(self._ack, 200) == b"closed"

    def close(self) -> None:
        os.close(self._ctl)
        os.close(self._ack)
        os.waitpid(self.pid, 0)


@pytest.fixture
def squatted(tmp_path):
    """Our private directory, with a socket of uid nobody in it that is still listening.

    nobody binds it in a directory of its own, and we move it in: a rename keeps the socket
    working. The same as a squatter in a world-writable directory, with the directory checks
    out of the way so that the socket's own checks are the ones tested."""
    need_root()
    theirs = tempfile.mkdtemp(prefix="fleetops-squat-")
    try:
        os.chown(theirs, NOBODY, NOBODY)
        squatter = Squatter(os.path.join(theirs, "s.sock"))
        try:
            path = str(private_dir(tmp_path) / "agent.sock")
            os.rename(squatter.path, path)
            assert os.lstat(path).st_uid == NOBODY
            yield squatter, path
        finally:
            squatter.close()
    finally:
        shutil.rmtree(theirs)


def assert_still_listening(path: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)


def test_stream_refuses_a_socket_of_another_uid_and_relays_nothing(squatted):
    _, path = squatted
    r = agent("stream", "--socket", path, "--count", "1")
    one_line_error(r, path, f"owned by uid {NOBODY}")
    assert r.stdout == b""


def test_stream_checks_the_daemons_peer_uid_not_only_the_file(squatted):
    squatter, path = squatted
    os.chown(path, 0, 0)  # the file now looks like ours; the process behind it is not
    r = agent("stream", "--socket", path, "--count", "1")
    one_line_error(r, f"pid {squatter.pid}", f"runs as uid {NOBODY}")
    assert r.stdout == b""


def test_the_daemon_names_a_live_squatter_and_leaves_it(squatted):
    squatter, path = squatted
    r = agent("daemon", *SIM, "--socket", path)
    one_line_error(r, path, f"pid {squatter.pid}", f"uid {NOBODY}")
    assert os.lstat(path).st_uid == NOBODY
    assert_still_listening(path)


def test_the_daemon_does_not_remove_a_stale_socket_of_another_uid(squatted):
    squatter, path = squatted
    squatter.stop_listening()
    r = agent("daemon", *SIM, "--socket", path)
    one_line_error(r, path, f"stale socket of uid {NOBODY}")
    assert stat.S_ISSOCK(os.lstat(path).st_mode) and os.lstat(path).st_uid == NOBODY
    r = agent("stream", "--socket", path, "--count", "1")
    one_line_error(r, f"owned by uid {NOBODY}")
    assert r.stdout == b""


def test_a_directory_of_another_uid_is_refused(tmp_path):
    need_root()
    d = private_dir(tmp_path)
    path = str(d / "agent.sock")
    stale_socket(path)
    os.chown(d, NOBODY, NOBODY)
    one_line_error(agent("daemon", *SIM, "--socket", path), str(d), f"owned by uid {NOBODY}")
    one_line_error(agent("stream", "--socket", path), str(d), f"owned by uid {NOBODY}")
    assert os.path.lexists(path)


def as_nobody(fn) -> str:
    """What `fn()` returns or raises, run in a forked child as uid/gid nobody."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                out = repr(fn())
            except BaseException as exc:
                out = f"{type(exc).__name__}: {exc}"
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def test_a_user_trusts_roots_daemon_but_cannot_use_its_private_socket():
    need_root()
    d = tempfile.mkdtemp(prefix="fleetops-root-")  # in /tmp, so nobody can reach it
    try:
        os.chmod(d, 0o755)
        path = os.path.join(d, "agent.sock")

        def probe():
            with sockpath.connect(path) as conn:
                return conn.makefile("rb").readline()[:15]

        with daemon(path):
            got = as_nobody(probe)
            assert got.startswith("SocketError") and "permission denied" in got, got
            os.chmod(path, 0o666)  # an admin opened it up: root's daemon is trusted
            assert as_nobody(probe) == repr(b'{"kind":"hello"')
    finally:
        shutil.rmtree(d)


# -- where the socket lives by default --------------------------------------------------------

def test_a_valid_runtime_dir_holds_the_socket(tmp_path):
    runtime = private_dir(tmp_path)
    env = {"XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path)}
    assert user_socket(os.geteuid(), env) == f"{runtime}/fleetops-agent/agent.sock"


@pytest.mark.parametrize("case", ["unset", "relative", "group-readable", "not ours", "symlink"])
def test_otherwise_the_socket_lives_in_the_private_state_dir(tmp_path, case):
    runtime = private_dir(tmp_path)
    uid = os.geteuid()
    env = {"XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path / "home")}
    if case == "unset":
        del env["XDG_RUNTIME_DIR"]
    elif case == "relative":
        env["XDG_RUNTIME_DIR"] = "run"
    elif case == "group-readable":
        runtime.chmod(0o750)
    elif case == "not ours":
        uid += 1
    else:
        (tmp_path / "link").symlink_to(runtime)
        env["XDG_RUNTIME_DIR"] = str(tmp_path / "link")
    got = user_socket(uid, env)
    assert got == f"{tmp_path}/home/.local/state/fleetops-agent/agent.sock"
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    assert user_socket(uid, env) == f"{tmp_path}/state/fleetops-agent/agent.sock"


def test_root_uses_its_runtime_directory_and_the_environment_overrides(monkeypatch):
    monkeypatch.delenv("FLEETOPS_AGENT_SOCKET", raising=False)
    if os.geteuid() == 0:
        assert default_socket() == "/run/fleetops-agent/agent.sock"
    assert not default_socket().startswith("/tmp/")
    monkeypatch.setenv("FLEETOPS_AGENT_SOCKET", "/srv/x/agent.sock")
    assert default_socket() == "/srv/x/agent.sock"


# -- the client cap ---------------------------------------------------------------------------

def test_clients_beyond_the_cap_are_closed_at_once_and_logged_once(tmp_path):
    path = str(private_dir(tmp_path) / "agent.sock")
    # Not daemon(): its readiness probe would hold a slot until the daemon's next write.
    p = subprocess.Popen([AGENT, "daemon", *SIM, "--socket", path, "--max-clients", "2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=guard())
    served = []
    try:
        for _ in range(2):
            s, hello = client(path)
            served.append(s)
            assert hello.startswith(b'{"kind":"hello"')  # served, so counted
        for _ in range(3):
            s, line = client(path)
            s.close()
            assert line == b""  # closed, nothing sent
        r = agent("stream", "--socket", path, "--count", "1")
        one_line_error(r, "--max-clients")
        assert r.stdout == b""
        served.pop().close()
        # The daemon notices the departure on its next write; then a newcomer is served.
        deadline = time.monotonic() + 20
        while not first_line(path).startswith(b'{"kind":"hello"'):
            assert time.monotonic() < deadline, "a freed slot was never reused"
            time.sleep(0.05)
    finally:
        for s in served:
            s.close()
        p.terminate()
        p.wait(timeout=10)
        log = p.stderr.read().decode()
        p.stderr.close()
    assert log.count("--max-clients") == 1, log
