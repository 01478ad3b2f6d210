"""What of the user's root goes into a workspace, and copying it there.

In a git repository that is the working tree as the user sees it: tracked files with their
uncommitted changes, and untracked files that are not ignored. Anywhere else, the whole tree. Either
way, files the sandbox's deny-list refuses (secrets) stay behind: an agent's test run could
otherwise read one and write it into a file that comes back in the diff.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from subagents.tools.gitsafe import WorkspaceError, user_git
from subagents.tools.sandbox import Sandbox

log = logging.getLogger(__name__)

MAX_COPY_BYTES = 200_000_000
MAX_COPY_FILES = 20_000
COPY_SKIP = frozenset({".git", "node_modules", ".venv", "__pycache__"})


class SourceRepo:
    """The user's git repository around a root, asked only to list and match names."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def listing(self) -> list[str]:
        """The root's working-tree files, relative to it: tracked ones and untracked, unignored ones."""
        out = await user_git(self.root, "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", ".")
        if out is None:
            raise WorkspaceError(f"git ls-files failed in {self.root}, so its files could not be listed.")
        return list(dict.fromkeys(n for n in os.fsdecode(out).split("\0") if n))  # merge conflicts repeat names

    async def ignored(self, names: Iterable[str]) -> set[str]:
        """Which of `names` (relative to the root) the user's repository ignores: build output and the like."""
        data = b"".join(os.fsencode(n) + b"\0" for n in names)
        out = await user_git(self.root, "check-ignore", "-z", "--stdin", input=data, ok=(0, 1)) if data else b""
        if out is None:
            log.warning("git check-ignore failed in %s; ignored files may show up in the diff", self.root)
        return {n for n in os.fsdecode(out or b"").split("\0") if n}


async def source_repo(root: Path) -> SourceRepo | None:
    """The repository whose working tree holds `root`, unless there is none or it ignores the root."""
    args = ("rev-parse", "--path-format=absolute", "--is-inside-work-tree", "--show-toplevel", "--show-prefix")
    found = await user_git(root, *args)
    lines = os.fsdecode(found).splitlines() if found is not None else []
    if len(lines) != 3 or lines[0] != "true":
        return None
    top, prefix = Path(lines[1]), lines[2].rstrip("/")
    if prefix and await user_git(top, "check-ignore", "--quiet", "--", prefix) is not None:
        return None  # an ignored directory: git would list none of its files
    return SourceRepo(root)


class Copier:
    """Copies files and in-root symlinks (as links, never followed) within a file and byte budget.
    Links leaving the root, special files, denied secrets and files with several hard links are left out."""

    def __init__(
        self, root: Path, dest: Path, avoid: Path, max_bytes: int, max_files: int, *, allow_hardlinks: bool = False
    ) -> None:
        self.root, self.dest, self.max_bytes, self.max_files = root, dest, max_bytes, max_files
        self.avoid = avoid  # the workspace itself, when its base_dir is inside the root
        self.secrets = Sandbox((root,))
        # A file with several names may be a link to one outside the root; copied, it would lose that mark.
        self.allow_hardlinks = allow_hardlinks
        self.bytes = self.files = 0

    def tree(self) -> None:
        """Everything under the root, but COPY_SKIP directories."""
        stack = [(self.root, self.dest)]
        while stack:
            source, target = stack.pop()
            target.mkdir(parents=True, exist_ok=True)
            try:
                entries = sorted(os.scandir(source), key=lambda e: e.name)
            except OSError as exc:
                log.warning("workspace copy skips unreadable %s: %s", source, exc)
                continue
            for entry in entries:
                path = Path(entry.path)
                if entry.name in COPY_SKIP or path == self.avoid or self._secret(path):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((path, target / entry.name))
                else:
                    self.entry(path, target / entry.name)

    def listed(self, names: list[str]) -> None:
        """The files `names` (relative to the root, as git lists them)."""
        self.dest.mkdir(parents=True, exist_ok=True)
        made = {self.dest}
        for name in names:
            if name.endswith("/"):  # a nested repository: git lists it as one directory
                log.info("workspace leaves out nested repository %s", name)
                continue
            source = self.root / name
            if source.is_relative_to(self.avoid) or self._secret(source):
                continue
            target = self.dest / name
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            self.entry(source, target)

    def entry(self, src: Path, dst: Path) -> None:
        try:
            self._entry(src, dst)
        except OSError as exc:  # gone or changed since listed, or unreadable
            log.warning("workspace copy skips %s: %s", src, exc)

    def _secret(self, path: Path) -> bool:
        rule = self.secrets.deny_rule(path)
        if rule is not None:
            log.info("workspace leaves out %s: the deny-list refuses it (%s)", path, rule)
        return rule is not None

    def _entry(self, src: Path, dst: Path) -> None:
        info = os.lstat(src)
        if stat.S_ISLNK(info.st_mode):
            real = os.path.realpath(src)
            if not Path(real).is_relative_to(self.root):
                log.info("workspace leaves out %s: a link leading outside %s", src, self.root)
                return
            os.symlink(os.path.relpath(real, src.parent), dst)
        elif stat.S_ISREG(info.st_mode):
            if info.st_nlink > 1 and not self.allow_hardlinks:
                log.info("workspace leaves out %s: it has %d hard links (see --allow-hardlinks)", src, info.st_nlink)
                return
            self._spend(info.st_size)
            _copy_file(src, dst, stat.S_IMODE(info.st_mode))

    def _spend(self, size: int) -> None:
        self.files += 1
        self.bytes += size
        if self.files > self.max_files or self.bytes > self.max_bytes:
            raise WorkspaceError(
                f"{self.root} is too big to copy into an isolated workspace (over {self.max_files:,} "
                f"files or {self.max_bytes:,} bytes besides .git, node_modules and .venv). Point the "
                "server at a smaller --root, or commit or ignore large untracked files."
            )


def _copy_file(src: Path, dst: Path, mode: int) -> None:
    """Contents and mode (all git keeps), never following a link or blocking on a FIFO swapped in."""
    source = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(source).st_mode):
            return
        target = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(target, mode)
            while os.sendfile(target, source, None, 1 << 30):
                pass
        finally:
            os.close(target)
    finally:
        os.close(source)
