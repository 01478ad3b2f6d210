"""An isolated copy of one root for an agent that writes, in a temporary directory of its own.

The agent's file tools and commands work in the copy; the user gets a unified diff back, and nothing
of ours ever goes into their tree or repository. The copy holds the root's working-tree content (see
`workspace_copy`); a private git repository beside it, which no tool can reach, commits that as a
baseline, so `diff()` shows only what the agent changed. Git never obeys anything in the copy, and
the diff never carries repository metadata (a `.git` path, or a directory git would take for a
repository): such paths are left out, and `left_out_note()` says so.

Layout of the temporary directory: `owner` (which process made it, so a restart can clear what a
killed server left), `git/` (the private git dir), `scratch/` (Bash's HOME), `work/<root name>/`.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio

from subagents.processes import owner_alive, process_owner
from subagents.tools.gitdir import git_dirs_in, is_git_name
from subagents.tools.gitsafe import PrivateRepo
from subagents.tools.gitsafe import WorkspaceError as WorkspaceError
from subagents.tools.workspace_copy import COPY_SKIP, MAX_COPY_BYTES, MAX_COPY_FILES, Copier, SourceRepo, source_repo

log = logging.getLogger(__name__)

TMP_PREFIX = "subagents-ws-"
OWNER_FILE = "owner"
# Litter a test run leaves behind; never part of the agent's result.
DIFF_EXCLUDE = tuple(
    f":(exclude,glob){p}"
    for p in ("**/__pycache__/**", "**/*.pyc", "**/.pytest_cache/**", "**/.mypy_cache/**", "**/.ruff_cache/**")
)
_DIFF_FLAGS = (
    *("--binary", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames"),
    *("--ignore-submodules=all", "--src-prefix=a/", "--dst-prefix=b/"),
)
_STATUS = ("status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--ignore-submodules=all")
_METADATA = "git repository metadata, which git would obey"
_NESTED = "nested git repositories"
_MAX_NAMED = 10


class Workspace:
    """An isolated copy of one root, for one run. Use `await Workspace.create(root)`, then `close()`
    (or `async with await Workspace.create(root) as ws`)."""

    def __init__(self, tmp: Path, name: str) -> None:
        self._tmp = tmp
        self.path: Path = tmp / "work" / name  # the copy of the user's root; the agent's sandbox root
        self._git = PrivateRepo(tmp / "git", self.path)
        self._source: SourceRepo | None = None  # the user's repository, when the root is in one
        self._baseline = ""
        self._changed: list[str] = []
        self._left_out: dict[str, list[str]] = {}
        self._closed = False

    @classmethod
    async def create(
        cls,
        root: Path,
        *,
        base_dir: Path | None = None,
        max_copy_bytes: int = MAX_COPY_BYTES,
        max_copy_files: int = MAX_COPY_FILES,
        allow_hardlinks: bool = False,
    ) -> Workspace:
        real, tmp = await anyio.to_thread.run_sync(_make_tmp, root, base_dir)
        ws = cls(tmp, real.name or "root")
        copier = Copier(real, ws.path, tmp, max_copy_bytes, max_copy_files, allow_hardlinks=allow_hardlinks)
        try:
            ws._source = await source_repo(real)
            if ws._source is not None:
                await anyio.to_thread.run_sync(copier.listed, await ws._source.listing())
                await ws._git.init()
            else:
                await anyio.to_thread.run_sync(copier.tree)
                # What the copy left out stays out of the diff too, at any depth (node_modules/, ...).
                await ws._git.init(excludes="".join(f"{name}/\n" for name in sorted(COPY_SKIP)))
            await ws._commit_baseline()
        except BaseException:
            await ws.close()  # shielded inside: runs on cancellation too
            raise
        log.info("workspace for %s at %s (%d files copied)", real, ws.path, copier.files)
        return ws

    async def diff(self) -> str:
        """The agent's changes as a unified diff with paths relative to the original root, ready for
        `git apply` (or `patch -p1`) there. New and binary files are included; files git ignores
        there, test-run litter (__pycache__, .pytest_cache, ...) and repository metadata are not."""
        self._check_open()
        listed = await self._git.run(*_STATUS, "--", ".", *DIFF_EXCLUDE)
        entries = [(e[:2], e[3:]) for e in os.fsdecode(listed).split("\0") if len(e) > 3]
        new = [path for code, path in entries if code == "??"]
        ignored = await self._source.ignored(new) if self._source is not None else set()
        kept, self._left_out = _screen([p for _, p in entries if p not in ignored], self.path)
        self._changed = sorted(kept, key=os.fsencode)
        if not kept:
            return ""
        index = self._tmp / "git" / "diff-index"  # the baseline index, plus the changes we keep
        try:
            await anyio.to_thread.run_sync(shutil.copyfile, self._tmp / "git" / "index", index)
        except OSError as exc:
            raise WorkspaceError(f"The workspace's git index could not be copied: {exc}.") from None
        pathspecs = b"".join(b":(literal)" + os.fsencode(p) + b"\0" for p in kept)
        await self._git.run("add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul", input=pathspecs, index=index)
        out = await self._git.run("diff", "--cached", *_DIFF_FLAGS, self._baseline, "--", index=index)
        text = out.decode("utf-8", "replace")
        if "\ufffd" in text:
            log.warning("workspace diff has non-UTF-8 bytes; those hunks will not apply")
        return text

    def changed_files(self) -> list[str]:
        """Paths (relative to the original root) in the diff, as of the last `diff()` call."""
        return list(self._changed)

    def left_out_note(self) -> str:
        """One sentence naming the changed paths the last `diff()` left out, and why; "" if none.
        The user must see it: those changes exist in the workspace but will not reach them."""
        if not self._left_out:
            return ""
        parts = [f"{_names(paths)} ({reason})" for reason, paths in self._left_out.items()]
        return "Left out of the diff: " + "; ".join(parts) + "."

    @property
    def top(self) -> Path:
        """The top of the copy, the directory that contains `path` (the copy is of the root alone,
        so they are the same): what a jail around the agent's commands binds."""
        return self.path

    @property
    def scratch(self) -> Path:
        """Room for throwaway files (Bash's HOME): outside `path`, so never in the diff; removed by close()."""
        return self._tmp / "scratch"

    async def close(self) -> None:
        """Remove the copy and its repository. Idempotent, and finishes even when the caller is cancelled."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_rmtree, self._tmp)

    async def __aenter__(self) -> Workspace:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise WorkspaceError("The workspace is closed.")

    async def _commit_baseline(self) -> None:
        # From a repository, every copied file is part of the user's tree, ignored or not (force-added).
        # Every blob counts as big, so all go into one pack rather than a file each: faster to write and remove.
        force = ("--force",) if self._source is not None else ()
        await self._git.run("add", "-A", *force, config=("core.bigFileThreshold=1",))
        message = "subagents baseline: the user's tree when the run started"
        await self._git.run("commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)
        self._baseline = (await self._git.run("rev-parse", "HEAD")).decode().strip()


def _screen(paths: Iterable[str], top: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The changed paths a diff may carry, and the rest by reason: nested repositories (git lists
    them as `dir/`), `.git` paths, and paths in a directory git would take for a repository."""
    left_out: dict[str, list[str]] = {}
    candidates: list[str] = []
    if os.path.lexists(top / ".git"):  # git never lists it, but the user should hear of it
        left_out.setdefault(_METADATA, []).append(".git")
    for path in paths:
        if path.endswith("/"):
            left_out.setdefault(_NESTED, []).append(path)
        elif any(is_git_name(part) for part in path.split("/")):
            left_out.setdefault(_METADATA, []).append(path)
        else:
            candidates.append(path)
    planted = git_dirs_in(candidates, top)
    kept: list[str] = []
    for path in candidates:
        holder = next((d for d in sorted(planted) if (top / path).is_relative_to(d)), None)
        if holder is None:
            kept.append(path)
            continue
        where = holder.relative_to(top).as_posix() if holder != top else "the root"
        reason = f"inside {where}, which looks like a git repository whose config git would obey"
        left_out.setdefault(reason, []).append(path)
    return kept, left_out


def _names(paths: list[str]) -> str:
    shown = ", ".join(repr(p) for p in paths[:_MAX_NAMED])
    return shown + (f" and {len(paths) - _MAX_NAMED} more" if len(paths) > _MAX_NAMED else "")


def _make_tmp(root: Path, base_dir: Path | None) -> tuple[Path, Path]:
    real = Path(os.path.realpath(root))
    if not real.is_dir():
        raise WorkspaceError(f"Cannot make a workspace: {root} is not a directory.")
    tmp = Path(os.path.realpath(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=base_dir)))
    try:
        (tmp / OWNER_FILE).write_text(process_owner(), encoding="utf-8")  # first: a copy is never ownerless
        (tmp / "scratch").mkdir()
    except OSError as exc:
        _rmtree(tmp)
        raise WorkspaceError(f"Cannot make a workspace in {tmp.parent}: {exc}.") from None
    return real, tmp


def remove_orphaned_workspaces(base_dir: Path | None = None) -> list[Path]:
    """Remove the workspaces a server killed mid-run left in `base_dir` (the temp dir): each holds a
    copy of a user's files. Only ours (our prefix, our uid, an owner file) whose owner on this
    host is gone; a live process's, another host's, or anything else is left alone."""
    base = Path(base_dir or tempfile.gettempdir())
    try:
        entries = [e for e in os.scandir(base) if e.name.startswith(TMP_PREFIX)]
    except OSError as exc:
        log.warning("could not look for leftover workspaces in %s: %s", base, exc)
        return []
    removed: list[Path] = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.getuid():
            owner = _read_owner(Path(entry.path) / OWNER_FILE)
            if owner is not None and owner.split(":", 1)[0] == socket.gethostname() and not owner_alive(owner):
                log.info("removing workspace %s left by a stopped server (%s)", entry.path, owner)
                _rmtree(Path(entry.path))
                removed.append(Path(entry.path))
    return removed


def _read_owner(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read(200).decode("utf-8", "replace").strip() if stat.S_ISREG(os.fstat(fd).st_mode) else None


def _rmtree(path: Path) -> None:
    def retry(func: Callable[..., Any], name: str, _exc: object) -> None:
        # Read-only directories (a test run may make them) block deleting what they hold.
        parent = os.path.dirname(name)
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR)
        func(name)

    if os.path.lexists(path):
        try:
            if not os.path.isdir(path) or os.path.islink(path):
                os.unlink(path)
                return
            shutil.rmtree(path, onerror=retry)
        except OSError as exc:
            log.warning("could not remove %s: %s", path, exc)
