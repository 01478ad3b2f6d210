"""Opening paths so that nothing leads out of the roots, even while the tree changes under us.

Every component is looked up relative to its parent's descriptor and opened with O_NOFOLLOW; symlinks
are read and resolved here, and every hop has to stay under a root. `..` steps back to the descriptor
we came through, never to whatever the parent is by then. So a directory swapped for a symlink between
a check and an open cannot redirect us: nothing is ever opened by a path string checked earlier.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from subagents.errors import SandboxError

O_PATH: int = getattr(os, "O_PATH", 0)
# Directories on the way are opened for lookups only (O_PATH on Linux: no read permission needed).
DIR_LOOKUP = (O_PATH or os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
DIR_READ = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
MAX_HOPS = 40  # symlinks followed in one lookup, as the kernel allows
MAX_DEPTH = 255  # directories held open on the way down
MAX_RETRIES = 20  # times one component may change between its lstat and its open
SYSTEM_DIRS: tuple[Path, ...] = (Path("/proc"), Path("/sys"), Path("/dev"))
# C0/C1 controls and Unicode line separators: a name with these could fake lines in tool output.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_Item = tuple[str, bool]  # a component, and whether it came from a link's target


@dataclass(frozen=True)
class Root:
    """A root directory and its identity when the sandbox was made, checked at every open."""

    path: Path
    dev: int
    ino: int


@dataclass
class Located:
    """Where a path leads: `name` in the directory `parent_fd` (owned here), or the directory itself
    when `name` is ".". `st` is the entry's lstat (never a symlink); None when it does not exist yet,
    and then `missing` holds the new names from `name` down."""

    parent_fd: int
    name: str
    path: Path
    root: Path
    st: os.stat_result | None
    missing: tuple[str, ...] = ()

    def close(self) -> None:
        if self.parent_fd >= 0:
            os.close(self.parent_fd)
            self.parent_fd = -1

    def __enter__(self) -> Located:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Handle:
    """An open file or directory the sandbox allowed: its descriptor, real path and fstat."""

    def __init__(self, fd: int, path: Path, st: os.stat_result) -> None:
        self.fd, self.path, self.st = fd, path, st

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    def file(self, mode: str = "rb") -> BinaryIO:
        """The descriptor as a Python file, which now owns it."""
        fd, self.fd = self.fd, -1
        return os.fdopen(fd, mode)  # type: ignore[return-value]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def locate(roots: Sequence[Root], candidate: str, shown: str, *, create: bool = False) -> Located:
    """Walk `candidate` (absolute) from the outermost root holding it. With `create`, a path whose
    last components (as written, not reached through a link) do not exist is located too."""
    return _Walk(roots, shown).run(PurePosixPath(candidate).parts, create)


def system_dir(path: Path) -> Path | None:
    return next((d for d in SYSTEM_DIRS if path.is_relative_to(d)), None)


def system_message(shown: str, found: Path) -> str:
    return f'Refused: "{shown}" is under {found}, a system filesystem that is never readable.'


def outside_message(shown: str, roots: Sequence[Root]) -> str:
    listed = ", ".join(str(r.path) for r in roots)
    return f'Refused: "{shown}" resolves outside the allowed roots ({listed}). Only files under the roots can be read.'


class Missing(SandboxError):
    """The path leads nowhere: `looked_in` is where it would be."""

    def __init__(self, shown: str, looked_in: Path, noun: str = "file or directory") -> None:
        super().__init__(f'No such {noun}: "{shown}" (looked in {looked_in}).')
        self.shown, self.looked_in = shown, looked_in


class _Walk:
    def __init__(self, roots: Sequence[Root], shown: str) -> None:
        self.roots, self.shown = roots, shown
        self.stack: list[tuple[int, Path]] = []
        self.root: Root | None = None
        self.hops = self.retries = 0

    def run(self, parts: Sequence[str], create: bool) -> Located:
        try:
            queue: deque[_Item] = deque((p, False) for p in self._enter(parts))
            return self._walk(queue, create)
        finally:
            for fd, _ in self.stack:
                os.close(fd)

    def _walk(self, queue: deque[_Item], create: bool) -> Located:
        self.hops = self.retries = 0
        while queue:
            part, from_link = queue.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if len(self.stack) == 1:
                    raise SandboxError(outside_message(self.shown, self.roots))
                os.close(self.stack.pop()[0])
                continue
            found = self._step(part, from_link, queue, create)
            if found is not None:
                return found
        fd, here = self.stack[-1]
        return self._result(".", here, os.fstat(fd))

    def _step(self, part: str, from_link: bool, queue: deque[_Item], create: bool) -> Located | None:
        """Take one component: step into a directory, queue a link's target, or end at anything else."""
        fd, here = self.stack[-1]
        st = self._lstat(part, fd)
        if st is None:
            if create and not from_link and not any(f for _, f in queue):
                return self._missing(part, queue)
            raise Missing(self.shown, here.joinpath(part, *(p for p, _ in queue)))
        if stat.S_ISLNK(st.st_mode):
            self.hops += 1
            if self.hops > MAX_HOPS:
                raise SandboxError(f'Refused: "{self.shown}" goes through more than {MAX_HOPS} symlinks.')
            target = self._readlink(part, fd)
            if target is not None:
                self._follow(target, queue)
                return None
        elif stat.S_ISDIR(st.st_mode):
            if self._descend(part, fd, here, st):
                return None
        elif any(p not in ("", ".") for p, _ in queue):  # a file used as a directory
            raise Missing(self.shown, here.joinpath(part, *(p for p, _ in queue)))
        else:
            return self._result(part, here / part, st)
        self.retries += 1  # it changed between its lstat and its open: look again
        if self.retries > MAX_RETRIES:
            raise SandboxError(f'Refused: "{self.shown}" kept changing while it was opened; try again.')
        queue.appendleft((part, from_link))
        return None

    def _enter(self, parts: Sequence[str]) -> Sequence[str]:
        """Open the outermost root holding `parts` (absolute); the components below it."""
        clean = tuple("/" if p == "//" else p for p in parts if p not in ("", "."))
        holders = [r for r in self.roots if clean[: len(r.path.parts)] == r.path.parts]
        if not holders:
            found = system_dir(Path(os.path.normpath(os.path.join("/", *clean))))
            raise SandboxError(system_message(self.shown, found) if found else outside_message(self.shown, self.roots))
        root = min(holders, key=lambda r: len(r.path.parts))
        for fd, _ in self.stack:
            os.close(fd)
        self.stack.clear()
        try:
            fd = os.open(root.path, DIR_LOOKUP)
        except OSError as exc:
            raise SandboxError(f"Cannot open the root {root.path}: {exc.strerror or exc}.") from None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (root.dev, root.ino):
            os.close(fd)
            raise SandboxError(f"Refused: the root {root.path} was replaced since the server started.")
        self.stack.append((fd, root.path))
        self.root = root
        return clean[len(root.path.parts) :]

    def _lstat(self, part: str, fd: int) -> os.stat_result | None:
        try:
            return os.stat(part, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SandboxError(f'Cannot access "{self.shown}": {exc.strerror or exc}.') from None

    def _readlink(self, part: str, fd: int) -> str | None:
        try:
            return os.readlink(part, dir_fd=fd)
        except OSError:
            return None  # no longer a link

    def _follow(self, target: str, queue: deque[_Item]) -> None:
        if not target:
            raise Missing(self.shown, self.stack[-1][1])
        parts = PurePosixPath(target).parts
        if os.path.isabs(target):
            parts = tuple(self._enter(parts))
        queue.extendleft((p, True) for p in reversed(parts))

    def _descend(self, part: str, fd: int, here: Path, st: os.stat_result) -> bool:
        """Open the directory `part` and step into it; False if it changed since its lstat (so the
        name the checks saw is the directory opened)."""
        path = here / part
        found = system_dir(path)
        if found is not None:
            raise SandboxError(system_message(self.shown, found))
        if len(self.stack) >= MAX_DEPTH:
            raise SandboxError(f'Refused: "{self.shown}" is nested more than {MAX_DEPTH} directories deep.')
        try:
            child = os.open(part, DIR_LOOKUP, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                return False
            raise SandboxError(f'Cannot access "{self.shown}": {exc.strerror or exc}.') from None
        opened = os.fstat(child)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            os.close(child)
            return False
        self.stack.append((child, path))
        return True

    def _missing(self, part: str, queue: deque[_Item]) -> Located:
        if any(p == ".." for p, _ in queue):
            raise SandboxError(f'Refused: "{self.shown}" goes up (..) through a directory that does not exist.')
        names = (part, *(p for p, _ in queue if p not in ("", ".")))
        fd, here = self.stack.pop()
        assert self.root is not None
        return Located(fd, part, here.joinpath(*names), self.root.path, None, names)

    def _result(self, name: str, path: Path, st: os.stat_result) -> Located:
        found = system_dir(path)
        if found is not None:
            raise SandboxError(system_message(self.shown, found))
        fd, _ = self.stack.pop()
        assert self.root is not None
        return Located(fd, name, path, self.root.path, st)
