"""Workspace against a hostile agent: git never obeys what it wrote, secrets never enter the copy,
repository metadata never leaves in the diff, and a killed server's copies are cleared on restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from subagents.processes import process_owner
from subagents.tools.files import Read
from subagents.tools.sandbox import Sandbox
from subagents.tools.workspace import OWNER_FILE, Workspace, remove_orphaned_workspaces
from tests.tools.test_workspace import copy_tree, git, make_repo, snapshot

pytestmark = pytest.mark.anyio

CRLF = b"one\r\ntwo\r\n"
BINARY = b"\x00\x01\r\n\xff\xfe binary\x00"


def hostile_config(marker: Path) -> str:
    """A git config whose every program writes `marker`: filters, diff drivers, fsmonitor, hooks."""
    run = f"sh -c 'echo ran >> {marker} && cat'"
    return (
        f"[core]\n\tbare = false\n\tworktree = .\n\tfsmonitor = {run}\n\thooksPath = {marker.parent}\n"
        f'[filter "x"]\n\tclean = {run}\n\tsmudge = {run}\n\trequired = true\n'
        f'[diff "x"]\n\ttextconv = {run}\n\tcommand = {run}\n[diff]\n\texternal = {run}\n'
    )


def no_git_vars() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def plant_repository(directory: Path, marker: Path) -> None:
    """What git takes for a repository (HEAD, objects/, refs/), with a config that runs programs."""
    for sub in ("objects/info", "refs/heads"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (directory / "HEAD").write_text("ref: refs/heads/main\n")
    (directory / "config").write_text(hostile_config(marker))


@pytest.fixture
def user_root(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The root the user opened: a committed subdirectory of a repository, or a plain directory."""
    if request.param == "plain":
        root = tmp_path / "plain"
        root.mkdir()
    else:
        root = make_repo(tmp_path / "mono") / "pkg"
        root.mkdir()
    (root / "crlf.txt").write_bytes(CRLF)
    (root / "blob.bin").write_bytes(BINARY)
    if request.param != "plain":
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "pkg")
    return root


@pytest.mark.parametrize("user_root", ["monorepo", "plain"], indirect=True)
async def test_git_never_obeys_what_the_agent_wrote_and_bytes_survive(
    user_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "marker"
    repo_top = user_root.parent if user_root.name == "pkg" else user_root
    before = snapshot(repo_top)
    async with await Workspace.create(user_root, base_dir=tmp_path) as ws:
        top = ws.path
        # What an agent with a shell could leave: a .git at the top, a bare-looking repository, a
        # nested repository, .git aliases, and attributes that name the planted filter everywhere.
        plant_repository(top / ".git", marker)
        plant_repository(top / "vendor", marker)
        (top / "vendor" / "objects" / "info" / "alternates").write_text("/etc\n")
        plant_repository(top / "nested" / ".git", marker)
        (top / "nested" / "file.txt").write_text("in a nested repository\n")
        for alias in ("sub/.GIT/config", "GIT~1/config", "deep/.git. /x"):
            (top / alias).parent.mkdir(parents=True)
            (top / alias).write_text(hostile_config(marker))
        (top / ".gitattributes").write_text("[attr]evil filter=x diff=x\n* evil text eol=crlf ident\n")
        (top / "crlf.txt").write_bytes(CRLF + b"three\r\n")
        (top / "blob.bin").write_bytes(BINARY + b"\r\n\x00more")
        (top / "new.bin").write_bytes(b"\x00\x9c\r\n" * 50)
        # A hostile global config and attributes file too: our git reads neither.
        home = tmp_path / "hostile-home"
        (home / ".config" / "git").mkdir(parents=True)
        (home / ".gitconfig").write_text(hostile_config(marker))
        (home / ".config" / "git" / "attributes").write_text("* filter=x diff=x\n")
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.fsmonitor'='touch /tmp/never'")
        diff = await ws.diff()
        note = ws.left_out_note()
        assert not marker.exists(), marker.read_text()
        control = shutil.copytree(top, tmp_path / "control", symlinks=True)
        await anyio.run_process(["git", "add", "-A"], cwd=control, env=no_git_vars(), check=False)
        assert marker.exists()  # the control: plain git, run where the agent planted, obeys it
        monkeypatch.undo()
        expected = {name: (top / name).read_bytes() for name in ws.changed_files()}
    assert sorted(expected) == [".gitattributes", "blob.bin", "crlf.txt", "new.bin"]
    for shown in ("'.git'", "'vendor/HEAD'", "'vendor/config'", "'nested/'", "'sub/.GIT/config'", "'GIT~1/config'"):
        assert shown in note, (shown, note)
    assert "inside vendor, which looks like a git repository" in note and "nested git repositories" in note
    assert "[filter" not in diff and "alternates" not in diff and "HEAD" not in diff
    assert snapshot(repo_top) == before

    target = copy_tree(user_root, tmp_path / "apply")
    (tmp_path / "change.diff").write_text(diff)
    await anyio.run_process(["git", "apply", str(tmp_path / "change.diff")], cwd=target)
    assert {name: (target / name).read_bytes() for name in expected} == expected  # CRLF and binary exact


@pytest.mark.parametrize("user_root", ["monorepo"], indirect=True)
async def test_a_copy_that_looks_like_a_repository_gives_an_empty_diff_and_says_why(
    user_root: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    async with await Workspace.create(user_root, base_dir=tmp_path) as ws:
        plant_repository(ws.path, marker)  # the root itself: git would obey it wherever it runs inside
        (ws.path / "crlf.txt").write_bytes(b"changed\n")
        assert await ws.diff() == "" and ws.changed_files() == []
        note = ws.left_out_note()
    assert not marker.exists()
    assert "'HEAD'" in note and "'crlf.txt'" in note and "inside the root, which looks like a git repository" in note


@pytest.mark.parametrize("user_root", ["monorepo", "plain"], indirect=True)
async def test_secrets_never_enter_the_copy_and_their_absence_is_no_change(user_root: Path, tmp_path: Path) -> None:
    secrets = {".env": "API_TOKEN=sk-live-1\n", "config/secrets.json": '{"k": 1}\n', "id_rsa": "KEY\n"}
    if user_root.name == "pkg":  # committed by mistake: still not copied
        (user_root / "tracked.pem").write_text("PEM\n")
        git(user_root, "add", "tracked.pem")
        git(user_root, "commit", "-q", "-m", "oops")
        secrets["tracked.pem"] = "PEM\n"
    for name, content in secrets.items():
        (user_root / name).parent.mkdir(exist_ok=True)
        (user_root / name).write_text(content)
    (user_root / ".env.example").write_text("API_TOKEN=\n")  # a template: names, no values
    async with await Workspace.create(user_root, base_dir=tmp_path) as ws:
        for name in secrets:
            assert not await anyio.Path(ws.path / name).exists(), name
        assert (ws.path / ".env.example").read_text() == "API_TOKEN=\n"
        assert (ws.path / "crlf.txt").read_bytes() == CRLF
        assert await ws.diff() == ""


@pytest.mark.parametrize("user_root", ["monorepo", "plain"], indirect=True)
async def test_a_hard_link_to_a_file_outside_never_becomes_a_plain_file_in_the_copy(
    user_root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("TOKEN=outside\n")
    os.link(outside, user_root / "notes.txt")  # inside the root, the same file as one outside it
    async with await Workspace.create(user_root, base_dir=tmp_path) as ws:
        assert not (ws.path / "notes.txt").exists()  # a copy would lose the second-name mark Read refuses
        out = await Read(Sandbox([ws.path])).run({"file_path": "notes.txt"})
        assert out.is_error and "outside" not in out.text
    async with await Workspace.create(user_root, base_dir=tmp_path, allow_hardlinks=True) as ws:
        assert (ws.path / "notes.txt").read_text() == "TOKEN=outside\n"  # the operator allowed it


async def test_the_private_repository_is_outside_the_copy_and_out_of_the_tools_reach(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj")
    async with await Workspace.create(root, base_dir=tmp_path) as ws:
        git_dir = ws.path.parent.parent / "git"
        assert (git_dir / "HEAD").is_file() and not git_dir.is_relative_to(ws.path)
        assert not ws.scratch.is_relative_to(ws.path) and not git_dir.is_relative_to(ws.scratch)
        for path in ("../../git/config", str(git_dir / "index")):
            out = await Read(Sandbox([ws.path])).run({"file_path": path})
            assert out.is_error and "outside the allowed roots" in out.text


def dead_owner() -> str:
    """The owner string of a process that has exited: its pid is gone."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    owner = process_owner(child.pid)
    child.communicate(b"")
    return owner


def test_orphaned_workspaces_of_dead_servers_are_removed_and_nothing_else(tmp_path: Path) -> None:
    def workspace_dir(name: str, owner: str | None) -> Path:
        path = tmp_path / name
        (path / "work" / "proj").mkdir(parents=True)
        (path / "work" / "proj" / "copied.txt").write_text("a copy of the user's file\n")
        if owner is not None:
            (path / OWNER_FILE).write_text(owner)
        return path

    orphan = workspace_dir("subagents-ws-orphan", dead_owner())
    live = workspace_dir("subagents-ws-live", process_owner())
    ownerless = workspace_dir("subagents-ws-ownerless", None)  # an older server's, or one being made
    elsewhere = workspace_dir("subagents-ws-other-host", "another-host:1:1")
    unrelated = workspace_dir("unrelated-ws", dead_owner())
    (tmp_path / "subagents-ws-link").symlink_to(orphan)
    assert remove_orphaned_workspaces(tmp_path) == [orphan]
    assert not orphan.exists() and (tmp_path / "subagents-ws-link").is_symlink()
    assert all((p / "work" / "proj" / "copied.txt").exists() for p in (live, ownerless, elsewhere, unrelated))
