"""The OS sandbox every Bash command runs in: bubblewrap (`bwrap`), as Claude Code's sandbox on Linux.

A command gets new user, pid, ipc, network, uts and cgroup namespaces and a mount namespace that
shows the system read-only (/usr, /bin, /lib*, /sbin and the few /etc entries programs need), the
server's Python and toolchains read-only, and only the directories it may write (the workspace and a
scratch HOME) read-write. Nothing else of the host is visible: no home directory, no other process,
no network but its own loopback. It has no capabilities, may not make user namespaces, starts from
the environment it is given, and all its processes die when its first process exits or is killed.
Without a working bwrap, Bash is refused (`find_jail` says why); it never runs unconfined.
"""

from __future__ import annotations

import functools
import glob
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "Bash runs commands only inside a bubblewrap sandbox: install the `bubblewrap` package "
    "(Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) on a host that allows "
    "user namespaces."
)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What programs read from /etc: the dynamic linker, CA certificates, users and name lookup, time
# zone, alternatives. Not the rest (no shadow, no ssl/private, no ssh keys).
ETC_ENTRIES = (
    *("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "timezone"),
    *("ssl/certs", "ssl/openssl.cnf", "ca-certificates", "ca-certificates.conf", "pki/tls/certs", "pki/ca-trust"),
    *("crypto-policies", "passwd", "group", "nsswitch.conf", "hosts", "host.conf", "gai.conf"),
    *("protocols", "services", "mime.types", "os-release", "debian_version", "python3*"),
)
TMP_BYTES = 512 * 1024 * 1024  # /tmp is memory; TMPDIR and HOME are on disk
PROBE_TIMEOUT_S = 10.0
_SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Jail:
    """A bwrap known to work here, and which of its optional hardening flags it has."""

    program: str
    flags: tuple[str, ...]  # --disable-userns, when this bwrap has it

    def command(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        writable: Sequence[Path],
        read_only: Iterable[Path],
        env: Mapping[str, str],
        info_fd: int | None = None,
    ) -> list[str]:
        """The bwrap command line that runs `argv` in `workdir` with only these paths visible."""
        args = [self.program, *_namespace_flags(self.flags)]
        if info_fd is not None:
            args += ["--info-fd", str(info_fd)]
        args.append("--clearenv")
        for name, value in env.items():
            args += ["--setenv", name, value]
        args += _system_mounts(self.flags)
        bound = [Path(d) for d in SYSTEM_DIRS]
        for path in dict.fromkeys([*interpreter_dirs(), *read_only]):
            if _bindable(path, bound):
                args += ["--ro-bind-try", str(path), str(path)]
                bound.append(path)
        for path in writable:
            args += ["--bind", str(path), str(path)]
        args += ["--remount-ro", "/", "--chdir", str(workdir), "--", *argv]
        return args


def find_jail() -> Jail | str:
    """The working bwrap, or the sentence that says why Bash cannot run here. Probed once per binary."""
    program = shutil.which("bwrap")
    if program is None:
        return f"Bash is unavailable: bwrap was not found on PATH. {INSTALL_HINT}"
    return _probe(os.path.realpath(program))


@functools.cache
def _probe(program: str) -> Jail | str:
    try:
        usage = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env={})
        optional = ("--disable-userns", "--size")
        jail = Jail(program, tuple(f for f in optional if f in usage.stdout))
        trial = jail.command(["true"], workdir=Path("/"), writable=(), read_only=(), env={"PATH": _SANDBOX_PATH})
        done = subprocess.run(trial, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env={})
    except (OSError, subprocess.SubprocessError) as exc:
        return f"Bash is unavailable: {program} cannot be run ({exc}). {INSTALL_HINT}"
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return f"Bash is unavailable: bubblewrap ({program}) cannot make its sandbox here: {why[0]}. {INSTALL_HINT}"
    missing = [f for f in ("--disable-userns",) if f not in jail.flags]
    if missing:
        log.warning("%s lacks %s; commands may still create user namespaces inside the sandbox", program, missing)
    return jail


def interpreter_dirs() -> list[Path]:
    """Where the server's Python lives, so `python -m pytest` finds the same interpreter and packages: the
    prefixes, and the folder this package is imported from. An editable install keeps that outside the
    prefix, and without it pytest stops at the package's own plugin (its `pytest11` entry point)."""
    package_home = str(Path(__file__).resolve().parents[2])  # the folder holding `subagents/`
    prefixes = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, package_home)
    return [Path(p) for p in dict.fromkeys(prefixes)]


def read_child_pid(data: bytes) -> int | None:
    """The host pid of the sandbox's init, from what bwrap wrote to its --info-fd."""
    try:
        pid = json.loads(data.decode("utf-8", "replace")).get("child-pid")
    except (ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and pid > 1 else None


def _namespace_flags(optional: tuple[str, ...]) -> list[str]:
    flags = ["--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
    return flags + (["--disable-userns"] if "--disable-userns" in optional else [])


def _system_mounts(optional: tuple[str, ...]) -> list[str]:
    args: list[str] = []
    etc = [e for entry in ETC_ENTRIES for e in sorted(glob.glob(f"/etc/{entry}"))]
    for path in [*SYSTEM_DIRS, *etc]:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin; /etc/localtime -> zoneinfo
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    size = ["--size", str(TMP_BYTES)] if "--size" in optional else []
    return [*args, "--proc", "/proc", "--dev", "/dev", *size, "--tmpfs", "/tmp"]


def _bindable(path: Path, bound: Sequence[Path]) -> bool:
    """Whether to show `path` read-only: not already shown, and never `/` or a directory holding HOME."""
    if not path.is_absolute() or not os.path.exists(path):
        return False
    real = Path(os.path.realpath(path))
    if any(real.is_relative_to(os.path.realpath(b)) for b in bound):
        return False
    if Path(os.path.realpath(Path.home())).is_relative_to(real):
        log.warning("Bash sandbox: not showing %s, it would expose the whole home directory or more", path)
        return False
    return True
