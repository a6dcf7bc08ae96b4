"""Who is acting: the OS account of this process, for the journal, the audit log and leases.

Never `$USER` or `$LOGNAME` (what `getpass.getuser()` reads first): anyone can set those, and
an audit log that records what the environment claims records nothing. The name comes from the
password database for the effective uid. Through sudo, the account that ran sudo is recorded
beside the effective one: sudo(8) sets SUDO_USER/SUDO_UID for the command it runs, and they are
believed only when this process really is that command's root (euid 0) and the two agree.
"""

from __future__ import annotations

import os
import pwd
import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    user: str  # the effective account
    uid: int
    invoked_by: str | None = None  # who ran sudo, when run through sudo
    host: str = ""
    pid: int = 0

    @property
    def label(self) -> str:
        """'alice', or 'root (sudo from alice)'."""
        return self.user if not self.invoked_by else f"{self.user} (sudo from {self.invoked_by})"


def account_name(uid: int) -> str:
    """The password database's name for `uid`; the number itself when it has none (a
    container user without an /etc/passwd entry is still someone)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _sudo_user(euid: int) -> str | None:
    name, uid = os.environ.get("SUDO_USER"), os.environ.get("SUDO_UID")
    if euid != 0 or not name or not uid or not uid.isdigit():
        return None
    # SUDO_UID must name the same account as SUDO_USER: a hand-set pair that disagrees is
    # not a sudo invocation.
    return account_name(int(uid)) if account_name(int(uid)) == name else None


def current() -> Actor:
    euid = os.geteuid()
    return Actor(account_name(euid), euid, _sudo_user(euid), socket.gethostname(), os.getpid())
