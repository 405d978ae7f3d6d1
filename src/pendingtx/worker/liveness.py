"""Worker identities, and telling whether a worker on this host has died."""

from __future__ import annotations

import os
import secrets
import socket


def new_worker_id() -> str:
    """`host:pid:nonce`: unique per worker, and says where to check whether it is alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def local_prefix() -> str:
    """The prefix shared by the ids of every worker on this host."""
    return f"{socket.gethostname()}:"


def is_dead_local(worker_id: str) -> bool:
    """Whether `worker_id` names a process on this host that no longer exists."""
    parts = worker_id.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
