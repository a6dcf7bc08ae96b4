"""Test daemons (sshd, slurmctld, munged...) die with the test process.

`guard()` is the preexec_fn for Popen: the child gets SIGTERM when the test process dies, so
a pytest killed by a timeout (no fixture teardown) leaves no daemon behind. The parent-death
signal fires when the forking *thread* exits, so only the main thread's children may ask for
it (a restart from asyncio.to_thread would kill the daemon at once): `guard()` returns None
off the main thread.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Loaded here, in the parent: dlopen in a forked child of a threaded process can deadlock.
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def guard() -> Callable[[], None] | None:
    """The preexec_fn to pass to Popen for a daemon the tests start."""
    return _die_with_parent if threading.current_thread() is threading.main_thread() else None
