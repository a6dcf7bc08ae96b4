"""Where `daemon` and `stream` meet: the agent's Unix socket, and whom to trust on it.

A Unix socket is a rendezvous by name: whoever creates the name first is the one readers talk
to. Three rules keep the name ours:
- it lives in a directory that only its user (or root) can write: `$XDG_RUNTIME_DIR/
  fleetops-agent/` (the XDG Base Directory spec requires that directory to be owned by the user
  with mode 0700, and we check it), as root `/run/fleetops-agent/`, else `$XDG_STATE_HOME`
  (default `~/.local/state`) `/fleetops-agent/`; never a predictable name in a world-writable /tmp;
- the daemon deletes nothing but a stale socket of its own (`claim`);
- a reader checks the socket file's owner, its directory and the daemon's peer credentials
  (SO_PEERCRED, man 7 unix) before it reads a byte (`connect`).
Root is trusted everywhere: it can read our memory anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
import struct
import time
from dataclasses import dataclass

NAME = "fleetops-agent"
SOCKET = "agent.sock"
BACKLOG = 64

# struct ucred { pid_t pid; uid_t uid; gid_t gid; } as SO_PEERCRED returns it (man 7 unix).
_UCRED = struct.Struct("iII")


class SocketError(Exception):
    """The socket cannot be used safely; the message is one line for the operator."""


def default_socket() -> str:
    if os.environ.get("FLEETOPS_AGENT_SOCKET"):
        return os.environ["FLEETOPS_AGENT_SOCKET"]
    if os.geteuid() == 0:
        return f"/run/{NAME}/{SOCKET}"  # systemd's RuntimeDirectory=fleetops-agent
    return user_socket(os.geteuid(), os.environ)


def user_socket(uid: int, env) -> str:
    """A non-root user's socket: in $XDG_RUNTIME_DIR when it is valid, else the state dir."""
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime) and _private_dir(runtime, uid):
        return os.path.join(runtime, NAME, SOCKET)
    state = env.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):  # the spec: a relative path is invalid and must be ignored
        home = env.get("HOME") or os.path.expanduser("~")
        state = os.path.join(home, ".local", "state")
    return os.path.join(state, NAME, SOCKET)


def _private_dir(path: str, uid: int) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and st.st_mode & 0o077 == 0


def check_dir(directory: str) -> None:
    """The socket's directory: a real directory (not a symlink), ours or root's, and writable
    by nobody else, so nobody else can create, replace or remove names in it."""
    st = os.lstat(directory)
    me = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        raise SocketError(f"refusing {directory}: a symlink, not a directory")
    if not stat.S_ISDIR(st.st_mode):
        raise SocketError(f"refusing {directory}: not a directory")
    if st.st_uid not in (me, 0):
        raise SocketError(f"refusing {directory}: owned by uid {st.st_uid}, not by uid {me} "
                          "or root")
    if st.st_mode & 0o022:
        raise SocketError(f"refusing {directory}: writable by group or others "
                          f"(mode {stat.S_IMODE(st.st_mode):04o})")


def peer_cred(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end, as the kernel recorded it at connect()."""
    pid, uid, _gid = _UCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return pid, uid


def connect(path: str) -> socket.socket | None:
    """A connection to the daemon at `path`, verified; None when no daemon serves it (no file,
    or a stale socket). SocketError when something is there that cannot be trusted."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    check_dir(os.path.dirname(os.path.abspath(path)))
    me = os.geteuid()
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketError(f"refusing {path}: not a socket")
    if st.st_uid not in (me, 0):
        raise SocketError(f"refusing {path}: the socket is owned by uid {st.st_uid}, not by "
                          f"uid {me} or root")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        return None  # stale: the daemon is gone
    except PermissionError:
        sock.close()
        raise SocketError(f"cannot connect to {path}: permission denied (the daemon serves "
                          "its own user only)") from None
    except BaseException:
        sock.close()
        raise
    # The file's owner is not enough: the name could have been swapped between lstat and
    # connect. The peer's credentials are the kernel's word on who is serving this connection.
    pid, uid = peer_cred(sock)
    if uid not in (me, 0):
        sock.close()
        raise SocketError(f"refusing {path}: the daemon on it (pid {pid}) runs as uid {uid}, "
                          f"not as uid {me} or root")
    return sock


@dataclass
class Listener:
    """A daemon's bound, listening socket, and the lock that makes the path its own."""

    path: str
    sock: socket.socket
    lock_fd: int
    inode: tuple[int, int]

    def close(self) -> None:
        """Close, and remove the socket file if it is still the one we bound. Idempotent."""
        if self.lock_fd < 0:
            return
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self.inode:
                os.unlink(self.path)
        os.close(self.lock_fd)  # last: the unlink above happens under the lock
        self.lock_fd = -1


def claim(path: str) -> Listener:
    """Bind `path` for a daemon, deleting nothing but a stale socket of our own.

    Two daemons starting at once must not both find the old socket stale, and one then unlink
    the other's fresh socket. So each takes an exclusive flock(2) on PATH.lock first and holds
    it for its lifetime: the check, the unlink and the bind all happen under it, and the kernel
    drops the lock when the process dies, so a crashed daemon leaves nothing to clean up (a pid
    file would). Binding a temporary name and rename(2)-ing it over PATH would not do: rename
    silently replaces a live socket. The lock file is never removed: a newcomer could otherwise
    lock a fresh inode while the running daemon holds the old one.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    _make_dirs(directory)
    check_dir(directory)  # from here on only we (or root) can change names in it
    lock_fd = _lock(path)
    try:
        _remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # bind(2) creates the file 0777 & ~umask: with 0177 it is 0600 from the first instant,
        # and connecting needs write permission on it (man 7 unix). The umask is per process:
        # a file another thread created in this instant would only come out more private.
        old = os.umask(0o177)
        try:
            sock.bind(path)
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(old)
        sock.listen(BACKLOG)
        st = os.lstat(path)
    except BaseException:
        os.close(lock_fd)
        raise
    return Listener(path, sock, lock_fd, (st.st_dev, st.st_ino))


def _make_dirs(directory: str) -> None:
    """Create `directory` and its missing parents, each 0700 (the XDG spec's mode)."""
    missing = []
    while not os.path.lexists(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o700)


def _lock(path: str) -> int:
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        # The holder writes its pid right after it locks: give it that instant.
        holder = b""
        for _ in range(50):
            if holder := os.pread(fd, 32, 0).strip():
                break
            time.sleep(0.01)
        os.close(fd)
        raise SocketError(f"another daemon (pid {holder.decode(errors='replace') or 'unknown'}) "
                          f"is serving {path}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _remove_stale(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketError(f"{path} exists and is not a socket; not touching it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            pass  # nobody listens: stale
        except (TimeoutError, BlockingIOError):
            raise SocketError(f"another daemon is listening on {path} (its backlog is full); "
                              "not replacing it") from None
        except OSError as exc:
            raise SocketError(f"cannot probe {path}: {exc.strerror or exc}") from None
        else:
            pid, uid = peer_cred(probe)
            raise SocketError(f"another daemon is listening on {path} (pid {pid}, uid {uid}); "
                              "not replacing it")
    if st.st_uid != os.geteuid():
        raise SocketError(f"{path} is a stale socket of uid {st.st_uid}; not ours to remove")
    os.unlink(path)
