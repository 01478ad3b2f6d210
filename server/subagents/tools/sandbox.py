"""Where file tools may look: inside the roots, never at secrets, system filesystems, special files or
hard links that may name a file elsewhere.

Everything a tool returns goes to a model provider, and the model's arguments are untrusted (a file it
read can steer them). So a path is never checked and then opened by name: `Sandbox.open` walks it one
component at a time from a root's descriptor (resolver.py), checks the real path it reached, and hands
back the descriptor it opened there.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from subagents.errors import SandboxError
from subagents.tools.denylist import DEFAULT_DENY, compiled
from subagents.tools.resolver import (
    CONTROL,
    DIR_READ,
    FILE_FLAGS,
    SYSTEM_DIRS,
    Handle,
    Located,
    Missing,
    Root,
    locate,
    system_dir,
    system_message,
)
from subagents.tools.walk import Budget, FileWalk

__all__ = ["DEFAULT_DENY", "SYSTEM_DIRS", "Handle", "Kind", "Sandbox"]

Kind = Literal["file", "dir", "any"]
Mode = Literal["r", "w", "rw"]
MAX_PATH_CHARS = 4096
MAX_OPEN_TRIES = 5  # a path whose entry keeps being swapped between check and open is refused after this
HARDLINK_FLAG = "--allow-hardlinks"
_MODES = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}
_NOUNS = {"file": "file", "dir": "directory", "any": "file or directory"}


_SHARED: dict[tuple[tuple[str, ...], bool], tuple[tuple[tuple[int, int] | None, ...], Sandbox]] = {}
_MAX_SHARED = 64


def shared_sandbox(roots: Sequence[Path], *, allow_hardlinks: bool = False) -> Sandbox:
    """The default sandbox on `roots`, built once per root set rather than per run: a sandbox holds no state
    of a run's. Reused while each root given still names the directory it named (one stat each); a root
    replaced, or a link in it pointed elsewhere, gets a new sandbox with every check made again."""
    key = (tuple(os.fspath(r) for r in roots), allow_hardlinks)
    now = tuple(_identity(raw) for raw in key[0])
    hit = _SHARED.get(key)
    if hit is not None and hit[0] == now and None not in now:
        return hit[1]
    sandbox = Sandbox(tuple(roots), allow_hardlinks=allow_hardlinks)
    if len(_SHARED) >= _MAX_SHARED:
        _SHARED.clear()
    _SHARED[key] = (now, sandbox)
    return sandbox


def _identity(raw: str) -> tuple[int, int] | None:
    try:
        st = os.stat(raw)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


class Sandbox:
    """The roots a subagent may read, and the checks every file tool goes through."""

    def __init__(
        self,
        roots: Sequence[Path],
        *,
        deny: Sequence[str] = DEFAULT_DENY,
        max_read_bytes: int = 256_000,
        max_file_bytes: int = 10_000_000,
        max_walk_entries: int = 100_000,
        max_call_seconds: float = 10.0,
        allow_hardlinks: bool = False,
    ) -> None:
        if not roots:
            raise ValueError("At least one root directory is needed.")
        _check_platform()
        self._roots: tuple[Root, ...] = tuple({r.path: r for r in map(_checked_root, roots)}.values())
        self.roots: tuple[Path, ...] = tuple(r.path for r in self._roots)
        self.deny: tuple[str, ...] = tuple(deny)
        self.denylist = compiled(self.deny)
        self.max_read_bytes = max_read_bytes
        self.max_file_bytes = max_file_bytes
        self.max_walk_entries = max_walk_entries  # entries one Grep, Glob or LS call may look at
        self.max_call_seconds = max_call_seconds  # and the time it may take
        self.allow_hardlinks = allow_hardlinks

    def open(self, raw: str, *, kind: Kind = "any", mode: Mode = "r") -> Handle:
        """An open descriptor on what `raw` names, or SandboxError saying why the model may not have it.
        Directories open for listing; files without following links or blocking on a FIFO."""
        for _ in range(MAX_OPEN_TRIES):
            handle = self._open_once(raw, kind, mode)
            if handle is not None:
                return handle
        raise SandboxError(f'Refused: "{shown_text(raw)}" kept changing while it was opened; try again.')

    def _open_once(self, raw: str, kind: Kind, mode: Mode) -> Handle | None:
        """The handle, or None if the entry opened is not the one checked (it was swapped meanwhile)."""
        shown = shown_text(raw)
        with self.locate(raw, kind=kind) as found:
            assert found.st is not None
            self.check_kind(found.st, found.path, shown, kind)
            flags = DIR_READ if found.name == "." else FILE_FLAGS | _MODES[mode]
            try:
                fd = os.open(found.name, flags, dir_fd=found.parent_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # a link swapped in since the check
                    return None
                raise SandboxError(f'Cannot open "{shown}": {exc.strerror or exc}.') from None
        handle = Handle(fd, found.path, os.fstat(fd))
        if (handle.st.st_dev, handle.st.st_ino) != (found.st.st_dev, found.st.st_ino):
            handle.close()
            return None
        try:
            self.check_kind(handle.st, found.path, shown, kind)  # its link count may have changed
        except SandboxError:
            handle.close()
            raise
        return handle

    def resolve(self, raw: str, *, kind: Kind = "any") -> Path:
        """The real path `raw` names if the model may have it, else SandboxError saying why."""
        return self.check(raw, kind=kind)[0]

    def check(self, raw: str, *, kind: Kind = "any") -> tuple[Path, os.stat_result]:
        """The real path `raw` names and its lstat, if the model may have it; nothing is opened but
        the directories on the way."""
        with self.locate(raw, kind=kind) as found:
            assert found.st is not None
            self.check_kind(found.st, found.path, shown_text(raw), kind)
            return found.path, found.st

    def locate(self, raw: str, *, kind: Kind = "any", create: bool = False, verb: str = "read") -> Located:
        """Where `raw` leads, walked safely and checked against the roots, system filesystems and the
        deny-list (the path as written and the real one). The caller closes it."""
        shown = shown_text(raw)
        check_text(raw, shown)
        candidate = raw if os.path.isabs(raw) else os.path.join(self.roots[0], raw)
        # Lexically too: /proc/self/cwd and /proc/self/root are links that lead out of /proc.
        lexical = Path(os.path.normpath(candidate))
        found_system = system_dir(lexical)
        if found_system is not None:
            raise SandboxError(system_message(shown, found_system))
        # A link named .env is refused even if it points elsewhere; a missing .env is refused by name.
        self._refuse_denied(lexical, shown, verb)
        try:
            found = locate(self._roots, candidate, shown, create=create)
        except Missing as exc:
            raise Missing(shown, exc.looked_in, _NOUNS[kind]) from None
        try:
            self._refuse_denied(found.path, shown, verb)
        except SandboxError:
            found.close()
            raise
        return found

    def budget(self) -> Budget:
        """The entry and time budget of one walking call."""
        return Budget(self.max_walk_entries, time.monotonic() + self.max_call_seconds)

    def walk(self, base: Handle, pattern: str | None = None, budget: Budget | None = None) -> FileWalk:
        """Regular files under the open directory `base`, in name order, matching an optional glob."""
        return FileWalk(self, base, pattern, budget or self.budget())

    def display(self, path: Path | str) -> str:
        """The path as the model sees it: relative to the root when there is one root, else absolute."""
        text = str(path)
        if len(self.roots) == 1:
            root = str(self.roots[0])
            if text == root:
                return "."
            prefix = root.rstrip("/") + "/"
            if text.startswith(prefix):
                return text[len(prefix) :]
        return text

    def is_denied(self, path: Path) -> bool:
        """True if `path` (absolute, or relative to the first root) must not be shown to the model."""
        return self.deny_rule(path) is not None

    def deny_rule(self, path: Path) -> str | None:
        """The reason `path` is denied: a deny-list pattern, or a note that it is outside the roots."""
        path = path if path.is_absolute() else self.roots[0] / path
        if system_dir(path) is not None:
            return "system filesystem"
        if not any(path.is_relative_to(r) for r in self.roots):
            return "outside the roots"
        return self.denylist.rule_for(self.rel_parts(path))

    def rel_parts(self, path: Path) -> tuple[str, ...]:
        """Components below the outermost root holding `path` (the most to match), or () if none."""
        holders = [path.relative_to(r).parts for r in self.roots if path.is_relative_to(r)]
        return max(holders, key=len, default=())

    def check_links(self, st: os.stat_result, shown: str) -> None:
        """Refuse a regular file with more than one name: the other may be outside the roots."""
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and not self.allow_hardlinks:
            raise SandboxError(
                f'Refused: "{shown}" is a hard link (the file has {st.st_nlink} names), so it may be a file '
                f"outside the roots under another name. Hard-linked files are used only when the server runs "
                f"with {HARDLINK_FLAG}."
            )

    def _refuse_denied(self, path: Path, shown: str, verb: str) -> None:
        if not any(path.is_relative_to(r) for r in self.roots):
            return
        rule = self.denylist.rule_for(self.rel_parts(path))
        if rule is not None:
            why = "secrets are never sent to the model" if verb == "read" else "such files are never written"
            raise SandboxError(f'Refused: "{shown}" matches the secrets deny-list ({rule}); {why}.')

    def check_kind(self, st: os.stat_result, real: Path, shown: str, kind: Kind) -> None:
        """Refuse what `kind` does not allow, special files, and hard links (unless allowed)."""
        mode = st.st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise SandboxError(f'Refused: "{shown}" is a {special_kind(mode)}, not a regular file or directory.')
        if kind == "file" and stat.S_ISDIR(mode):
            raise SandboxError(f'"{shown}" is a directory, not a file. List it with LS or search it with Glob.')
        if kind == "dir" and not stat.S_ISDIR(mode):
            raise SandboxError(f'"{shown}" is a file, not a directory. Read it with Read.')
        self.check_links(st, shown)


def shown_text(raw: str) -> str:
    """`raw` safe to quote in a message: short, with control characters escaped."""
    text = raw if len(raw) <= 200 else raw[:200] + "..."
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def check_text(raw: str, shown: str) -> None:
    """Refuse a path that is empty, overlong, has control characters or cannot be a file name."""
    if not raw:
        raise SandboxError("Refused: the path is empty. Give a file or directory path.")
    if len(raw) > MAX_PATH_CHARS:
        raise SandboxError(f'Refused: "{shown}" is longer than {MAX_PATH_CHARS} characters.')
    if CONTROL.search(raw):
        raise SandboxError(f'Refused: "{shown}" contains a NUL or control character; paths must be plain text.')
    try:
        os.fsencode(raw)
    except UnicodeError:
        raise SandboxError(f'Refused: "{shown}" is not valid text for a file name.') from None


def special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file"


def _checked_root(root: Path) -> Root:
    raw = os.fspath(root)
    if not raw or CONTROL.search(raw):
        raise ValueError(f"Root {raw!r} is not a usable path.")
    real = Path(os.path.realpath(raw))
    if not real.is_dir():
        raise ValueError(f"Root {raw} does not exist or is not a directory.")
    if system_dir(real) is not None:
        raise ValueError(f"Root {raw} is inside {system_dir(real)}, a system filesystem.")
    st = os.stat(real)
    return Root(real, st.st_dev, st.st_ino)


def _check_platform() -> None:
    """Fail closed where files cannot be opened relative to a directory descriptor (openat)."""
    if not {os.open, os.stat, os.readlink, os.mkdir} <= os.supports_dir_fd or os.scandir not in os.supports_fd:
        raise ValueError(
            "This platform cannot open files relative to a directory descriptor (openat), which the "
            "file tools' sandbox needs to keep paths inside the roots; the file tools are unavailable here."
        )
