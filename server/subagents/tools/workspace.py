"""An isolated copy of one root for an agent that writes: a git worktree, or a plain copy.

The agent's file tools and commands work in the copy; the user gets a unified diff back and their
tree, index, HEAD and branches are never touched. A git root becomes a detached worktree carrying
the user's uncommitted state; anything else is copied and `git init`ed. Either way the starting
state is committed as a baseline, so `diff()` shows only what the agent changed.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio

from subagents.errors import SubagentsError

log = logging.getLogger(__name__)

GIT_TIMEOUT_S = 60.0
WORKTREE_ADD_ATTEMPTS = 4
MAX_COPY_BYTES = 200_000_000
MAX_COPY_FILES = 20_000
COPY_SKIP = frozenset({".git", "node_modules", ".venv", "__pycache__"})
# Litter a test run leaves behind; never part of the agent's result.
DIFF_EXCLUDE = tuple(
    f":(exclude,glob){p}"
    for p in ("**/__pycache__/**", "**/*.pyc", "**/.pytest_cache/**", "**/.mypy_cache/**", "**/.ruff_cache/**")
)
# Hooks and fsmonitor would run programs; auto gc would repack the user's object store.
_SAFE_CONFIG = (
    *("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"),
    *("-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "init.defaultBranch=main"),
)
_IDENTITY = ("-c", "user.name=subagents", "-c", "user.email=subagents@localhost", "-c", "commit.gpgsign=false")
_DIFF_FLAGS = (
    *("--binary", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames"),
    *("--ignore-submodules=all", "--src-prefix=a/", "--dst-prefix=b/"),
)


class WorkspaceError(SubagentsError):
    """The isolated workspace could not be made or read. The message says why."""


class Workspace:
    """An isolated copy of one root, for one run. Use `await Workspace.create(root)`, then `close()`
    (or `async with await Workspace.create(root) as ws`)."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._top = tmp  # the worktree or copy: a git work tree of its own
        self.path: Path = tmp  # the directory matching the user's root; the agent's sandbox root
        self._repo: Path | None = None  # the user's repository, when this is a worktree of it
        self._common: Path | None = None  # its common git dir, where worktree entries live
        self._baseline = ""
        self._changed: list[str] = []
        self._closed = False

    @classmethod
    async def create(
        cls,
        root: Path,
        *,
        base_dir: Path | None = None,
        max_copy_bytes: int = MAX_COPY_BYTES,
        max_copy_files: int = MAX_COPY_FILES,
    ) -> Workspace:
        real, tmp = await anyio.to_thread.run_sync(_make_tmp, root, base_dir)
        ws = cls(tmp)
        copier = _Copier(real, tmp, max_copy_bytes, max_copy_files)
        try:
            repo = await _repo_of(real)
            if repo is not None:
                await ws._checkout(real, *repo, copier)
            else:
                await ws._copy(real, copier)
            await ws._commit_baseline()
        except BaseException:
            await ws.close()  # shielded inside: runs on cancellation too
            raise
        log.info("workspace for %s at %s (%s)", real, ws.path, "worktree" if ws._repo else "copy")
        return ws

    async def diff(self) -> str:
        """The agent's changes as a unified diff with paths relative to the original root, ready for
        `git apply` (or `patch -p1`) there. New files are included; files git ignores there and
        test-run litter (__pycache__, .pytest_cache, ...) are not. Changes outside `path` are left out."""
        self._check_open()
        await _git(self.path, "add", "-A", "--", ".", *DIFF_EXCLUDE)
        since = ("--cached", "--relative", self._baseline, "--")
        names = await _git(self.path, "diff", "--name-only", "-z", "--no-renames", *since)
        self._changed = [n for n in names.decode("utf-8", "replace").split("\0") if n]
        out = await _git(self.path, "diff", *_DIFF_FLAGS, *since)
        text = out.decode("utf-8", "replace")
        if "\ufffd" in text:
            log.warning("workspace diff has non-UTF-8 bytes; those hunks will not apply")
        return text

    @property
    def top(self) -> Path:
        """The whole copy (`path` is in it): what a Bash command in its sandbox may write."""
        return self._top

    @property
    def scratch(self) -> Path:
        """Room for throwaway files (Bash's HOME): outside `path`, so never in the diff; removed by close()."""
        return self._tmp

    def changed_files(self) -> list[str]:
        """Paths (relative to the original root) changed as of the last `diff()` call."""
        return list(self._changed)

    async def close(self) -> None:
        """Remove the worktree or copy. Idempotent, and finishes even when the caller is cancelled."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._repo is not None:
                args = ("worktree", "remove", "--force", "--force", str(self._top))
                if not await _git_ok(self._repo, *args):
                    log.warning("git worktree remove failed for %s; removing it by hand", self._top)
            await anyio.to_thread.run_sync(_rmtree, self._tmp)
            if self._common is not None:
                await anyio.to_thread.run_sync(_drop_worktree_entries, self._common, self._tmp)

    async def __aenter__(self) -> Workspace:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise WorkspaceError("The workspace is closed.")

    async def _checkout(self, root: Path, top: Path, prefix: str, common: Path, copier: _Copier) -> None:
        self._top = self._tmp / (top.name or "repo")
        self._repo, self._common = top, common
        with anyio.CancelScope(shield=True):  # a half-made worktree is locked against pruning
            await _add_worktree(top, self._top)
        self.path = self._top / prefix
        index = self._tmp / "user-index"
        # Work on a copy of the user's index: git may write refreshed stat data to the index it reads.
        env = {"GIT_INDEX_FILE": str(index)} if await _copy_index(top, index) else {}
        patch = await _git(top, "diff", "HEAD", *_DIFF_FLAGS, env=env)
        if patch.strip():
            try:
                await _git(self._top, "apply", "--binary", "--whitespace=nowarn", input=patch)
            except WorkspaceError as exc:
                raise WorkspaceError(f"Could not carry the uncommitted changes of {top} over: {exc}") from None
        listing = ("ls-files", "--others", "--exclude-standard", "-z", "--full-name", "--", ".")
        untracked = await _git(root, *listing, env=env)
        names = [n for n in os.fsdecode(untracked).split("\0") if n]
        await anyio.to_thread.run_sync(copier.untracked, top, self._top, names)
        await anyio.to_thread.run_sync(_rmtree, index)

    async def _copy(self, root: Path, copier: _Copier) -> None:
        self._top = self.path = self._tmp / (root.name or "root")
        await anyio.to_thread.run_sync(copier.tree, root, self._top)
        await _git(self._top, "init", "--quiet", "--template=")

    async def _commit_baseline(self) -> None:
        await _git(self._top, "add", "-A")
        message = "subagents baseline: the user's tree when the run started"
        await _git(self._top, *_IDENTITY, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)
        self._baseline = (await _git(self._top, "rev-parse", "HEAD")).decode().strip()


async def _repo_of(root: Path) -> tuple[Path, str, Path] | None:
    """(top level, root's prefix in it, common git dir) if root is a directory committed in a git
    work tree; None otherwise (not a repo, no commit yet, or root is new or ignored there)."""
    args = ("rev-parse", "--path-format=absolute", "--is-inside-work-tree", "--show-toplevel")
    found = await _git_out(root, *args, "--show-prefix", "--git-common-dir")
    lines = found.splitlines() if found is not None else []
    if len(lines) != 4 or lines[0] != "true":
        return None
    top, prefix, common = Path(lines[1]), lines[2], Path(lines[3])
    if await _git_out(top, "rev-parse", "--verify", "--quiet", f"HEAD:{prefix}") is None:
        return None
    return top, prefix, common


async def _add_worktree(repo: Path, where: Path) -> None:
    # Concurrent `worktree add`s in one repository can trip over each other's half-made entries
    # ("failed to read .git/worktrees/x/commondir"), so a failure is retried after a pause.
    for attempt in range(1, WORKTREE_ADD_ATTEMPTS + 1):
        try:
            await _git(repo, "worktree", "add", "--detach", "--quiet", str(where), "HEAD")
            return
        except WorkspaceError as exc:
            if attempt == WORKTREE_ADD_ATTEMPTS:
                raise
            log.info("git worktree add failed (attempt %d), retrying: %s", attempt, exc)
        await anyio.to_thread.run_sync(_rmtree, where)
        await anyio.sleep(0.05 * attempt)


def _make_tmp(root: Path, base_dir: Path | None) -> tuple[Path, Path]:
    real = Path(os.path.realpath(root))
    if not real.is_dir():
        raise WorkspaceError(f"Cannot make a workspace: {root} is not a directory.")
    return real, Path(os.path.realpath(tempfile.mkdtemp(prefix="subagents-ws-", dir=base_dir)))


async def _copy_index(top: Path, dest: Path) -> bool:
    index = await _git_out(top, "rev-parse", "--path-format=absolute", "--git-path", "index")
    return index is not None and await anyio.to_thread.run_sync(_copy_file, Path(index.strip()), dest)


def _copy_file(src: Path, dest: Path) -> bool:
    if not src.is_file():
        return False
    shutil.copyfile(src, dest)
    return True


class _Copier:
    """Copies files and in-root symlinks (as links, never followed) within a file and byte budget.
    Links leaving the root, special files and COPY_SKIP directories are left out."""

    def __init__(self, root: Path, avoid: Path, max_bytes: int, max_files: int) -> None:
        self.root, self.max_bytes, self.max_files = root, max_bytes, max_files
        self.avoid = avoid  # the workspace itself, when its base_dir is inside the root
        self.bytes = self.files = 0

    def tree(self, src: Path, dst: Path) -> None:
        stack = [(src, dst)]
        while stack:
            source, target = stack.pop()
            target.mkdir(parents=True, exist_ok=True)
            try:
                entries = sorted(os.scandir(source), key=lambda e: e.name)
            except OSError as exc:
                log.warning("workspace copy skips unreadable %s: %s", source, exc)
                continue
            for entry in entries:
                if entry.name in COPY_SKIP or entry.path == str(self.avoid):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), target / entry.name))
                else:
                    self.entry(Path(entry.path), target / entry.name)

    def untracked(self, top: Path, dst_top: Path, names: list[str]) -> None:
        for name in names:
            if name.endswith("/"):  # a nested repository: git lists it as one directory
                log.info("workspace leaves out nested repository %s", name)
                continue
            target = dst_top / name
            target.parent.mkdir(parents=True, exist_ok=True)
            self.entry(top / name, target)

    def entry(self, src: Path, dst: Path) -> None:
        try:
            self._entry(src, dst)
        except (FileNotFoundError, PermissionError) as exc:  # gone since listed, or unreadable
            log.warning("workspace copy skips %s: %s", src, exc)

    def _entry(self, src: Path, dst: Path) -> None:
        mode = os.lstat(src).st_mode
        if stat.S_ISLNK(mode):
            real = os.path.realpath(src)
            if not Path(real).is_relative_to(self.root):
                log.info("workspace leaves out %s: a link leading outside %s", src, self.root)
                return
            os.symlink(os.path.relpath(real, src.parent), dst)
        elif stat.S_ISREG(mode):
            self._spend(os.lstat(src).st_size)
            shutil.copy2(src, dst, follow_symlinks=False)

    def _spend(self, size: int) -> None:
        self.files += 1
        self.bytes += size
        if self.files > self.max_files or self.bytes > self.max_bytes:
            raise WorkspaceError(
                f"{self.root} is too big to copy into an isolated workspace (over {self.max_files:,} "
                f"files or {self.max_bytes:,} bytes besides .git, node_modules and .venv). Point the "
                "server at a smaller --root, or commit or ignore large untracked files."
            )


def _drop_worktree_entries(common: Path, tmp: Path) -> None:
    """Delete git's entries for worktrees under `tmp` that `git worktree remove` left behind (a
    half-made one stays locked). Only ours: other stale entries are the user's business."""
    entries = common / "worktrees"
    if not entries.is_dir():
        return
    for entry in entries.iterdir():
        try:
            where = Path((entry / "gitdir").read_text(encoding="utf-8").strip())
        except OSError:
            continue
        if where.is_relative_to(tmp):
            log.info("removing leftover worktree entry %s", entry)
            _rmtree(entry)
    with suppress(OSError):  # another run may be adding a worktree right now
        if not any(entries.iterdir()):
            entries.rmdir()


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


# --- running git ---


def _git_env(extra: Mapping[str, str]) -> dict[str, str]:
    # GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE and friends would point git at another repository.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    env.update(extra)
    return env


async def _run_git(
    cwd: Path, args: tuple[str, ...], data: bytes | None, env: Mapping[str, str]
) -> subprocess.CompletedProcess[bytes]:
    try:
        with anyio.fail_after(GIT_TIMEOUT_S):
            return await anyio.run_process(
                ["git", *_SAFE_CONFIG, *args], input=data, cwd=cwd, env=_git_env(env), check=False
            )
    except TimeoutError:
        raise WorkspaceError(f"git {args[0]} timed out after {GIT_TIMEOUT_S:g} s in {cwd}.") from None
    except OSError as exc:
        raise WorkspaceError(f"Cannot run git (needed for isolated workspaces): {exc}.") from None


async def _git(cwd: Path, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None) -> bytes:
    result = await _run_git(cwd, args, input, env or {})
    if result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise WorkspaceError(f"git {' '.join(args[:2])} failed in {cwd} (exit {result.returncode}): {err}")
    return result.stdout


async def _git_out(cwd: Path, *args: str) -> str | None:
    """Git's output as text, or None if it failed."""
    result = await _run_git(cwd, args, None, {})
    return result.stdout.decode("utf-8", "surrogateescape") if result.returncode == 0 else None


async def _git_ok(cwd: Path, *args: str) -> bool:
    try:
        return await _git_out(cwd, *args) is not None
    except WorkspaceError:
        return False
