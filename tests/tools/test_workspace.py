"""Workspace: an isolated copy whose diff applies to the user's tree, which never changes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import anyio
import pytest

from subagents.tools.base import ToolOutput
from subagents.tools.edit import Edit, Write
from subagents.tools.sandbox import Sandbox
from subagents.tools.workspace import Workspace, WorkspaceError

pytestmark = pytest.mark.anyio

IDENTITY = ("-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false")
CALC = "def add(a, b):\n    return a + b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
PYPROJECT = '[tool.pytest.ini_options]\npythonpath = ["."]\ntestpaths = ["tests"]\n'


def git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | {"GIT_OPTIONAL_LOCKS": "0"}
    done = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, env=env, capture_output=True, check=True)
    return done.stdout.decode()


def make_repo(path: Path) -> Path:
    """A small committed Python project: calc.py, a passing test and a pytest config."""
    (path / "tests").mkdir(parents=True)
    (path / "calc.py").write_text(CALC)
    (path / "tests" / "test_calc.py").write_text(TEST_CALC)
    (path / "pyproject.toml").write_text(PYPROJECT)
    (path / ".gitignore").write_text("build/\n__pycache__/\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file, link and directory under root, .git included, by content."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                out[str(rel / name)] = b"link:" + os.readlink(path).encode()
            elif path.is_dir():
                out[str(rel / name)] = b"<dir>"
            elif stat.S_ISREG(path.lstat().st_mode):
                out[str(rel / name)] = path.read_bytes()
    return out


def git_state(repo: Path) -> tuple[str, ...]:
    return (
        git(repo, "status", "--porcelain", "--untracked-files=all"),
        git(repo, "rev-parse", "HEAD"),
        git(repo, "branch", "-a", "-v"),
        git(repo, "ls-files", "-s"),
        git(repo, "worktree", "list", "--porcelain"),
    )


def patch_p1(target: Path, diff: str) -> None:
    subprocess.run(["patch", "-p1", "--batch", "--quiet"], cwd=target, input=diff.encode(), check=True)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True, ignore=lambda d, names: [n for n in names if n == "fifo"])
    return dst


async def edit_like_an_agent(ws: Workspace) -> None:
    box = Sandbox([ws.path])
    outs: list[ToolOutput] = [
        await Edit(box).run({"file_path": "calc.py", "old_string": "a + b", "new_string": "b + a"}),
        await Write(box).run({"file_path": "tests/test_more.py", "content": "def test_more():\n    pass\n"}),
        await Write(box).run({"file_path": "tests/data/new dir/ünï.txt", "content": "x\n"}),
    ]
    assert not any(o.is_error for o in outs), outs


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The user's repository, mid-work: a modified file, a staged new one, untracked and ignored files."""
    root = make_repo(tmp_path / "proj")
    (root / "data.bin").write_bytes(b"\x00\x01 committed")
    git(root, "add", "data.bin")
    git(root, "commit", "-q", "-m", "data")
    (root / "data.bin").write_bytes(b"\x00\x02 changed, not committed")
    (root / "calc.py").write_text(CALC + "\n\ndef sub(a, b):\n    return a - b\n")
    (root / "staged.py").write_text("STAGED = 1\n")
    git(root, "add", "staged.py")
    (root / "notes.txt").write_text("untracked notes\n")
    (root / "build").mkdir()
    (root / "build" / "out.bin").write_bytes(b"\x00ignored")
    return root


async def test_copy_carries_uncommitted_state_and_its_diff_applies_to_the_user_tree(repo: Path, tmp_path: Path) -> None:
    before, state = snapshot(repo), git_state(repo)
    base = tmp_path / "ws"
    base.mkdir()
    async with await Workspace.create(repo, base_dir=base) as ws:
        assert ws.path.is_relative_to(base) and ws.path.name == "proj" and ws.top == ws.path
        assert not await anyio.Path(ws.path / ".git").exists()  # nothing in the copy points into the user's repository
        for name in ("calc.py", "data.bin"):
            assert (ws.path / name).read_bytes() == (repo / name).read_bytes()
        assert (ws.path / "staged.py").exists() and (ws.path / "notes.txt").exists()
        assert not (ws.path / "build").exists()  # ignored files stay behind
        await edit_like_an_agent(ws)
        (ws.path / "__pycache__").mkdir()
        (ws.path / "__pycache__" / "calc.cpython-311.pyc").write_bytes(b"\x00litter")
        diff = await ws.diff()
        assert ws.changed_files() == ["calc.py", "tests/data/new dir/ünï.txt", "tests/test_more.py"]
        expected = {name: (ws.path / name).read_bytes() for name in ws.changed_files()}
        assert "diff --git a/calc.py b/calc.py" in diff and "-    return a + b" in diff
        assert "notes.txt" not in diff and "staged.py" not in diff and "pycache" not in diff
        assert snapshot(repo) == before  # nothing of ours in the user's tree or .git, even while open
    assert snapshot(repo) == before and git_state(repo) == state
    assert os.listdir(base) == [] and not (repo / ".git" / "worktrees").exists()

    target = copy_tree(repo, tmp_path / "apply")
    (tmp_path / "change.diff").write_text(diff)
    git(target, "apply", "--check", str(tmp_path / "change.diff"))
    git(target, "apply", str(tmp_path / "change.diff"))
    assert {name: (target / name).read_bytes() for name in expected} == expected


async def test_root_in_a_subdirectory_is_copied_alone_and_the_repository_ignore_rules_still_apply(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "proj")
    (repo / "sub").mkdir()
    (repo / "sub" / "mod.py").write_text("X = 1\n")
    (repo / ".git" / "info" / "exclude").write_text("*.log\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "sub")
    (repo / "sub" / "draft.py").write_text("untracked in sub\n")
    (repo / "elsewhere.txt").write_text("untracked outside the root\n")
    before = snapshot(repo)
    async with await Workspace.create(repo / "sub", base_dir=tmp_path) as ws:
        assert ws.path.name == "sub" and sorted(os.listdir(ws.path)) == ["draft.py", "mod.py"]
        await Edit(Sandbox([ws.path])).run({"file_path": "mod.py", "old_string": "1", "new_string": "2"})
        for ignored in ("build/out.txt", "run.log"):  # ignored by the repository's rules above the root
            (ws.path / ignored).parent.mkdir(exist_ok=True)
            (ws.path / ignored).write_text("ignored\n")
        diff = await ws.diff()
        assert ws.changed_files() == ["mod.py"]
    assert "a/mod.py" in diff and "sub/" not in diff and "build" not in diff and "run.log" not in diff
    assert snapshot(repo) == before
    target = copy_tree(repo / "sub", tmp_path / "apply")
    patch_p1(target, diff)
    assert (target / "mod.py").read_text() == "X = 2\n"


async def test_plain_directory_is_copied_without_following_links(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("VALUE = 1\n")
    (tmp_path / "secret.txt").write_text("outside the root\n")
    (root / "leak").symlink_to(tmp_path / "secret.txt")
    (root / "inside_abs").symlink_to(root / "pkg" / "mod.py")
    (root / "inside_rel").symlink_to("pkg/mod.py")
    for junk in ("node_modules", ".venv", "__pycache__"):
        (root / junk).mkdir()
        (root / junk / "big.js").write_text("junk\n")
    os.mkfifo(root / "fifo")
    (root / "pkg" / "tool.sh").write_text("#!/bin/sh\n")
    (root / "pkg" / "tool.sh").chmod(0o755)
    before = snapshot(root)
    async with await Workspace.create(root, base_dir=tmp_path) as ws:
        assert ws.path.name == "plain" and (ws.path / "pkg" / "tool.sh").stat().st_mode & 0o777 == 0o755
        assert not await anyio.Path(ws.path / "leak").is_symlink()
        assert not await anyio.Path(ws.path / "fifo").exists()
        assert os.readlink(ws.path / "inside_abs") == "pkg/mod.py"  # rewritten to stay in the copy
        assert os.readlink(ws.path / "inside_rel") == "pkg/mod.py"
        assert not any((ws.path / junk).exists() for junk in ("node_modules", ".venv", "__pycache__"))
        await edit_like_an_agent_plain(ws)
        (ws.path / "pkg" / "node_modules").mkdir()  # what the copy leaves out stays out of the diff
        (ws.path / "pkg" / "node_modules" / "dep.js").write_text("installed by a test run\n")
        diff = await ws.diff()
        assert ws.changed_files() == ["pkg/mod.py", "pkg/test_mod.py"]
    assert snapshot(root) == before
    target = copy_tree(root, tmp_path / "apply")
    patch_p1(target, diff)
    assert (target / "pkg" / "mod.py").read_text() == "VALUE = 2\n"
    assert (target / "pkg" / "test_mod.py").read_text() == "def test_value():\n    pass\n"


async def edit_like_an_agent_plain(ws: Workspace) -> None:
    box = Sandbox([ws.path])
    edit = {"file_path": "pkg/mod.py", "old_string": "1", "new_string": "2"}
    write = {"file_path": "pkg/test_mod.py", "content": "def test_value():\n    pass\n"}
    assert not (await Edit(box).run(edit)).is_error
    assert not (await Write(box).run(write)).is_error


async def test_a_tree_over_the_copy_cap_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    for i in range(5):
        (root / f"f{i}.txt").write_text("x\n")
    base = tmp_path / "ws"
    base.mkdir()
    with pytest.raises(WorkspaceError, match="too big to copy"):
        await Workspace.create(root, base_dir=base, max_copy_files=3)
    assert os.listdir(base) == []


async def test_the_users_hooks_and_fsmonitor_do_not_run_and_git_env_vars_are_ignored(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "hook-ran"
    for hook in ("post-checkout", "pre-commit", "post-commit", "prepare-commit-msg", "fsmonitor-watchman"):
        path = repo / ".git" / "hooks" / hook
        path.write_text(f"#!/bin/sh\ntouch {marker}\n")
        path.chmod(0o755)
    with (repo / ".git" / "config").open("a") as config:
        config.write(f"[core]\n\tfsmonitor = {repo / '.git' / 'hooks' / 'fsmonitor-watchman'}\n")
    before = snapshot(repo)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "nowhere-index"))
    async with await Workspace.create(repo, base_dir=tmp_path) as ws:
        (ws.path / "new.txt").write_text("new\n")
        (ws.path / "tests" / "scratch.log").write_text("new, in a directory the user's git lists\n")
        assert "b/new.txt" in await ws.diff()
    assert not marker.exists() and not (tmp_path / "nowhere").exists()
    assert snapshot(repo) == before


async def test_cancelled_create_leaves_nothing_behind(repo: Path, tmp_path: Path) -> None:
    base = tmp_path / "ws"
    base.mkdir()
    start = anyio.current_time()
    await (await Workspace.create(repo, base_dir=base)).close()
    full = anyio.current_time() - start
    for delay in [0.0] + [full * f for f in (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0)]:
        with anyio.move_on_after(delay):  # cancelled at various steps: before, in and after git calls
            ws = await Workspace.create(repo, base_dir=base)
            await ws.close()
        assert os.listdir(base) == [], delay
        assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1, delay
    assert not (repo / ".git" / "worktrees").exists()


async def test_concurrent_workspaces_of_one_repo_are_separate_and_all_cleaned_up(repo: Path, tmp_path: Path) -> None:
    spaces: list[Workspace] = []

    async def make(i: int) -> None:
        ws = await Workspace.create(repo, base_dir=tmp_path)
        spaces.append(ws)
        (ws.path / f"only_{i}.txt").write_text(f"{i}\n")

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(make, i)
    assert len({ws.path for ws in spaces}) == 6
    diffs = [await ws.diff() for ws in spaces]
    assert all(d.count("diff --git") == 1 for d in diffs)
    async with anyio.create_task_group() as tg:
        for ws in spaces:
            tg.start_soon(ws.close)
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not (repo / ".git" / "worktrees").exists()


async def test_close_runs_when_the_caller_is_cancelled_and_is_idempotent(repo: Path, tmp_path: Path) -> None:
    base = tmp_path / "ws"
    base.mkdir()
    ws = await Workspace.create(repo, base_dir=base)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await ws.close()  # shielded inside: a cancelled caller still gets a clean close
    await ws.close()
    assert os.listdir(base) == [] and not (repo / ".git" / "worktrees").exists()
    with pytest.raises(WorkspaceError, match="closed"):
        await ws.diff()
