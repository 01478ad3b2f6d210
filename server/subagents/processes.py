"""Which process owns something (a run, a workspace), and whether that process still lives.

An owner is `host:pid:start`, where start is the process's start time in clock ticks: it tells a live
process from a later one that reused the pid.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_owner(pid: int | None = None) -> str:
    """`host:pid:start` — the start time tells a live process from a later one that reused its pid."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another host's run cannot be checked; treat it as dead, as before owners existed
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    return _start_ticks(pid) == start


def owner_gone(owner: str | None) -> bool:
    """True only when we can tell: the owner was a process on this host, and it no longer runs.

    Unlike `not owner_alive(...)`, another host's owner is not taken for gone: its lease decides."""
    if not owner or owner.partition(":")[0] != socket.gethostname():
        return False
    return not owner_alive(owner)


def _start_ticks(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22, counted after the parenthesised name
