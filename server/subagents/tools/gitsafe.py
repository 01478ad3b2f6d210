"""Running git where what it reads may be hostile: our private repository for a workspace, and the user's.

A workspace's files are the agent's, so git must take nothing from them but bytes: the repository is
named explicitly (GIT_DIR and GIT_WORK_TREE, a git dir outside the copy), system and global config
are ignored, and hooks, fsmonitor, filters, textconv and external diff drivers are all off. In the
user's repository we only list and match names, with hooks, fsmonitor and pagers off.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import anyio

from subagents.errors import SubagentsError

GIT_TIMEOUT_S = 60.0
# Overrides every .gitattributes (info/attributes comes first, and "!" and "-" are final): no filter,
# no diff or merge driver, no end-of-line or encoding conversion, no $Id$ expansion. Bytes stay bytes.
PLAIN_BYTES_ATTRIBUTES = "* -filter !diff !merge -text !eol -ident -working-tree-encoding\n"
# Programs git could run, or repositories it could discover, from anything but its command line.
_NOTHING_RUNS = (
    *("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false"),
    *("-c", "safe.bareRepository=explicit", "-c", "protocol.allow=never", "-c", "core.pager=cat"),
    *("-c", "gc.auto=0", "-c", "maintenance.auto=false"),
)
_PRIVATE = (
    *_NOTHING_RUNS,
    *("-c", "core.attributesFile=/dev/null", "-c", "core.excludesFile=/dev/null"),
    *("-c", "core.autocrlf=false", "-c", "core.safecrlf=false", "-c", "core.compression=1"),
    *("-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"),
    *("-c", "user.name=subagents", "-c", "user.email=subagents@localhost"),
)


class WorkspaceError(SubagentsError):
    """The isolated workspace could not be made or read. The message says why."""


class PrivateRepo:
    """Our own repository for one workspace: its git dir sits beside the copy, out of every tool's
    reach, and git is told both places, so nothing in the copy can stand in for either."""

    def __init__(self, git_dir: Path, work_tree: Path) -> None:
        self.git_dir, self.work_tree = git_dir, work_tree

    async def init(self, excludes: str = "") -> None:
        """Create the repository, with attributes that make git treat every file as plain bytes."""
        await self.run("init", "--quiet", "--template=")
        await anyio.to_thread.run_sync(self._write_info, excludes)

    async def run(
        self, *args: str, input: bytes | None = None, index: Path | None = None, config: tuple[str, ...] = ()
    ) -> bytes:
        """Git's output; WorkspaceError if it fails. `index` replaces the repository's index file;
        `config` adds `name=value` settings for this command."""
        env = {
            "GIT_DIR": str(self.git_dir),
            "GIT_WORK_TREE": str(self.work_tree),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_ATTR_NOSYSTEM": "1",
            "GIT_NO_REPLACE_OBJECTS": "1",
        }
        if index is not None:
            env["GIT_INDEX_FILE"] = str(index)
        flags = (*_PRIVATE, *(f for setting in config for f in ("-c", setting)))
        result = await _run(self.work_tree, flags, args, input, env)
        return _checked(result, args, self.work_tree)

    def _write_info(self, excludes: str) -> None:
        info = self.git_dir / "info"
        info.mkdir(exist_ok=True)
        (info / "attributes").write_text(PLAIN_BYTES_ATTRIBUTES, encoding="utf-8")
        (info / "exclude").write_text(excludes, encoding="utf-8")


async def user_git(cwd: Path, *args: str, input: bytes | None = None, ok: tuple[int, ...] = (0,)) -> bytes | None:
    """Git's output in the user's repository, or None if it exited with a code not in `ok`. Only for
    commands that read; optional locks are off, so not even the index's stat data is refreshed."""
    result = await _run(cwd, _NOTHING_RUNS, args, input, {"GIT_OPTIONAL_LOCKS": "0"})
    return result.stdout if result.returncode in ok else None


def _checked(result: subprocess.CompletedProcess[bytes], args: tuple[str, ...], cwd: Path) -> bytes:
    if result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise WorkspaceError(f"git {args[0]} failed in {cwd} (exit {result.returncode}): {err}")
    return result.stdout


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    # GIT_DIR, GIT_CONFIG_PARAMETERS, GIT_EXTERNAL_DIFF and friends would steer git; only ours count.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", LC_ALL="C")
    env.update(extra)
    return env


async def _run(
    cwd: Path, flags: tuple[str, ...], args: tuple[str, ...], data: bytes | None, env: Mapping[str, str]
) -> subprocess.CompletedProcess[bytes]:
    try:
        with anyio.fail_after(GIT_TIMEOUT_S):
            return await anyio.run_process(
                ["git", "--no-pager", *flags, *args], input=data, cwd=cwd, env=_env(env), check=False
            )
    except TimeoutError:
        raise WorkspaceError(f"git {args[0]} timed out after {GIT_TIMEOUT_S:g} s in {cwd}.") from None
    except OSError as exc:
        raise WorkspaceError(f"Cannot run git (needed for isolated workspaces): {exc}.") from None
