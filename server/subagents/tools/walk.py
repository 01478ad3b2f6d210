"""Walking and listing directories the sandbox opened, on their descriptors, in bounded work.

A walk never goes back to a path string: it lists a directory by its descriptor, opens each
subdirectory relative to it with O_NOFOLLOW, and hands out files as (directory descriptor, name).
Every entry it looks at costs one unit of an entry budget, and the call has a deadline; when either
runs out the walk stops and says so, however large the tree.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from subagents.errors import SandboxError
from subagents.tools.globs import glob_matcher
from subagents.tools.resolver import CONTROL, DIR_READ, FILE_FLAGS, SYSTEM_DIRS, Handle, system_dir

if TYPE_CHECKING:
    from subagents.tools.sandbox import Sandbox

SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv"})
_SYSTEM_PATHS = frozenset(str(d) for d in SYSTEM_DIRS)  # a walk under a root of / must not enter these
MAX_WALK_DEPTH = 64  # directories a walk holds open at once


@dataclass
class Budget:
    """What one call may still spend: entries to look at, and a deadline (time.monotonic)."""

    entries: int
    deadline: float
    looked: int = 0
    cut: str | None = None  # "entries" or "time" once spent
    seconds: float = field(init=False)

    def __post_init__(self) -> None:
        self.seconds = max(self.deadline - time.monotonic(), 0.0)

    def spend(self) -> bool:
        """Pay for one entry; False (and `cut` set) once the budget is gone."""
        if self.looked >= self.entries:
            self.cut = "entries"
            return False
        if time.monotonic() > self.deadline:
            self.cut = "time"
            return False
        self.looked += 1
        return True

    def note(self, hint: str) -> str | None:
        """The line that tells the model the result is partial, or None if it is not."""
        if self.cut == "entries":
            return f"[stopped after looking at {self.looked:,} entries, the limit of one call; {hint}]"
        if self.cut == "time":
            return f"[stopped after {self.seconds:g} s, the time limit of one call; {hint}]"
        return None


@dataclass
class WalkFile:
    """A file the walk found: valid until the walk moves on."""

    real: str  # the real path
    name: str
    dir_fd: int
    st: os.stat_result
    handle: Handle | None = None  # already open, when it was reached through a symlink

    @property
    def path(self) -> Path:
        return Path(self.real)

    def open(self, sandbox: Sandbox) -> Handle:
        """Open the file for reading, relative to its directory, refusing anything but a single-named file."""
        if self.handle is not None:
            handle, self.handle = self.handle, None
            return handle
        fd = os.open(self.name, FILE_FLAGS | os.O_RDONLY, dir_fd=self.dir_fd)
        handle = Handle(fd, self.path, os.fstat(fd))
        try:
            if not _same(handle.st, self.st) or not stat.S_ISREG(handle.st.st_mode):
                raise FileNotFoundError(errno.ENOENT, "replaced since the walk listed it", self.real)
            sandbox.check_links(handle.st, sandbox.display(self.real))
        except (OSError, SandboxError):
            handle.close()
            raise
        return handle


@dataclass
class _Dir:
    fd: int
    prefix: str  # its real path, ending in "/"
    parts: tuple[str, ...]  # below the root, for the deny-list
    rel: str  # below the walk's base, "" or ending in "/", for the pattern
    entries: Iterator[os.DirEntry[str]]


class FileWalk(Iterator[WalkFile]):
    """Regular files under a directory, depth-first in name order. `truncated` says the budget ran out.

    Skips denied paths, the usual bulky directories and names with control characters. It does not
    descend into symlinked directories (no cycles); a symlinked file is opened through the sandbox
    from its root and yielded as its real path, once, only if the sandbox allows it.
    """

    def __init__(self, sandbox: Sandbox, base: Handle, pattern: str | None, budget: Budget) -> None:
        self.sandbox, self.base, self.budget = sandbox, base, budget
        self._match: Callable[[str], bool] | None = glob_matcher(pattern) if pattern else None
        self._seen: set[str] = set()
        self._stack: list[_Dir] = []
        self._pending: WalkFile | None = None
        self.too_deep = False
        self._files = self._walk()

    @property
    def truncated(self) -> bool:
        return self.budget.cut is not None or self.too_deep

    def notes(self, hint: str) -> list[str]:
        """Lines that tell the model the walk did not see everything, and why."""
        notes = [note] if (note := self.budget.note(hint)) else []
        if self.too_deep:
            notes.append(f"[skipped directories nested more than {MAX_WALK_DEPTH} levels deep; {hint}]")
        return notes

    def __next__(self) -> WalkFile:
        self._release()
        self._pending = next(self._files)
        return self._pending

    def __enter__(self) -> FileWalk:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._release()
        self._files.close()

    def _release(self) -> None:
        if self._pending is not None and self._pending.handle is not None:
            self._pending.handle.close()
        self._pending = None

    def _walk(self) -> Generator[WalkFile, None, None]:
        fd = os.dup(self.base.fd)
        prefix = str(self.base.path).rstrip("/") + "/"
        self._stack.append(_Dir(fd, prefix, self.sandbox.rel_parts(self.base.path), "", self._list(fd)))
        try:
            yield from self._files_below()
        finally:
            for directory in self._stack:
                os.close(directory.fd)
            self._stack.clear()

    def _files_below(self) -> Iterator[WalkFile]:
        while self._stack:
            top = self._stack[-1]
            entry = next(top.entries, None)
            if entry is None:
                os.close(self._stack.pop().fd)
                continue
            if not self.budget.spend():
                return
            name = entry.name
            if CONTROL.search(name) or self.sandbox.denylist.tail_rule((*top.parts, name)):
                continue
            if entry.is_dir(follow_symlinks=False):
                self._enter(top, entry)
            elif self._match is None or self._match(top.rel + name):
                found = self._file(top, entry)
                if found is not None:
                    yield found

    def _list(self, fd: int) -> Iterator[os.DirEntry[str]]:
        """A directory's entries in name order, reading no more than the budget can still pay for."""
        try:
            with os.scandir(fd) as it:
                batch = list(islice(it, max(self.budget.entries - self.budget.looked, 0) + 1))
        except OSError:
            return iter(())  # unreadable directory: skip it, like find and rg do
        batch.sort(key=lambda e: e.name)
        return iter(batch)

    def _enter(self, top: _Dir, entry: os.DirEntry[str]) -> None:
        name, path = entry.name, top.prefix + entry.name
        if name in SKIP_DIRS or path in _SYSTEM_PATHS:
            return
        if len(self._stack) >= MAX_WALK_DEPTH:
            self.too_deep = True
            return
        try:  # relative to its parent, never following a link: a directory swapped for one is skipped
            fd = os.open(name, DIR_READ, dir_fd=top.fd)
        except OSError:
            return
        try:
            same = _same(os.fstat(fd), entry.stat(follow_symlinks=False))
        except OSError:
            same = False
        if not same:  # not the directory the deny-list checked by name
            os.close(fd)
            return
        self._stack.append(_Dir(fd, path + "/", (*top.parts, name), f"{top.rel}{name}/", self._list(fd)))

    def _file(self, top: _Dir, entry: os.DirEntry[str]) -> WalkFile | None:
        try:
            if entry.is_file(follow_symlinks=False):
                key = top.prefix + entry.name
                if key in self._seen:
                    return None
                found = WalkFile(key, entry.name, top.fd, entry.stat(follow_symlinks=False))
            elif entry.is_symlink():
                handle = self.sandbox.open(top.prefix + entry.name, kind="file")
                key = str(handle.path)
                found = WalkFile(key, entry.name, top.fd, handle.st, handle)
            else:
                return None  # FIFO, socket, device
        except (OSError, SandboxError):
            return None
        if key in self._seen and found.handle is not None:
            found.handle.close()
            return None
        self._seen.add(key)
        return found


@dataclass
class Listing:
    """One directory's entries as LS shows them (sorted), and what it hid or did not get to."""

    names: list[str]
    hidden: int


def list_dir(sandbox: Sandbox, base: Handle, ignore: Callable[[str], bool], budget: Budget) -> Listing:
    """The entries of the open directory `base`: cheap checks per entry (its name and type; a symlink
    is resolved through the sandbox), and no more entries than `budget` allows."""
    parts = sandbox.rel_parts(base.path)
    labelled: list[tuple[str, str]] = []
    hidden = 0
    with os.scandir(base.fd) as it:
        for entry in it:
            if not budget.spend():
                break
            if ignore(entry.name):
                continue
            label = _label(sandbox, base.path, parts, entry)
            if label is None:
                hidden += 1
            else:
                labelled.append((entry.name, label))
    labelled.sort()
    return Listing([label for _, label in labelled], hidden)


def _label(sandbox: Sandbox, where: Path, parts: tuple[str, ...], entry: os.DirEntry[str]) -> str | None:
    """How LS shows the entry, or None if the sandbox hides it."""
    name = entry.name
    if CONTROL.search(name) or sandbox.denylist.tail_rule((*parts, name)):
        return None
    try:
        if entry.is_dir(follow_symlinks=False):
            return None if system_dir(where / name) else name + "/"
        if entry.is_file(follow_symlinks=False):
            return name
        if entry.is_symlink():  # shown only if it leads somewhere the sandbox allows
            _, st = sandbox.check(str(where / name))
            return name + "/" if stat.S_ISDIR(st.st_mode) else name
    except (OSError, SandboxError):
        return None
    return None  # FIFO, socket, device


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
