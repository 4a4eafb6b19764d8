"""Who runs a command, as the operating system knows them: the account of the process's user id.

Records that name a person take the name given (`--approver`, `--actor`), which is free text: a lead approves what an
operator runs. Beside it, every registry event keeps the account that wrote it, and `--actor` defaults to it, read
from the user id and the password database, never from $LOGNAME or $USER, which any shell can set
(`LOGNAME=ceo-alice harness audit` signed a pack as someone else)."""

from __future__ import annotations

import os


def os_account() -> str:
    """`ana (uid 1000)`; `uid 1000` where the id has no account (a container's arbitrary uid); `unknown` where the
    system has no user ids."""
    try:
        uid = os.getuid()
    except AttributeError:  # not a POSIX system
        return "unknown"
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"
