"""test-writer end to end: it writes and runs tests in an isolated copy; the user gets a diff."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest
from mcp import Client

from subagents.history.store import SQLiteRunStore
from subagents.mcp.server import build_server
from subagents.providers.testing import FakeMessagesServer, text, tool_use
from subagents.tools.bash import BashPolicy
from tests.conftest import make_app

pytestmark = pytest.mark.anyio

TEST_FILE = "def test_add():\n    from calc import add\n    assert add(2, 3) == 5\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (root / "notes.txt").write_text("uncommitted work of the user\n")  # must survive untouched
    return root


def snapshot(repo: Path) -> tuple[str, str, dict[str, bytes]]:
    files = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    return git(repo, "status", "--porcelain"), git(repo, "rev-parse", "HEAD"), files


@pytest.mark.usefixtures("bwrap")
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_test_writer_returns_a_diff_and_runs_the_tests(
    mode: str, fake_model: FakeMessagesServer, repo: Path
) -> None:
    fake_model.set_script(
        [
            tool_use("Write", {"file_path": "tests/test_calc.py", "content": TEST_FILE}),
            tool_use("Bash", {"command": "python -m pytest -q tests/test_calc.py"}),
            text("Wrote tests/test_calc.py. Run: python -m pytest -q tests/test_calc.py — 1 passed."),
        ]
    )
    before = snapshot(repo)
    bash = BashPolicy(enabled=True, allow=("python -m pytest",), timeout_s=60)
    async with make_app(fake_model, repo, bash=bash) as app, Client(build_server(app), mode=mode) as client:
        result = await client.call_tool("test-writer", {"task": "Write a test for calc.add"})
    assert result.is_error is False, result.content
    assert snapshot(repo) == before  # the user's tree, HEAD and status are untouched

    assert fake_model.requests[0].tool_names == ["Read", "Grep", "Glob", "LS", "Write", "Edit", "Bash"]
    [ran] = fake_model.requests[2].tool_results
    assert "1 passed" in ran["content"], ran  # the tests ran, in the copy

    diff = result.structured_content["diff"]  # type: ignore[index]
    assert "+++ b/tests/test_calc.py" in diff and "notes.txt" not in diff
    await anyio.run_process(["git", "-C", str(repo), "apply", "--check", "-"], input=diff.encode())
    await anyio.run_process(["git", "-C", str(repo), "apply", "-"], input=diff.encode())
    assert (repo / "tests" / "test_calc.py").read_text() == TEST_FILE
    assert not [line for line in git(repo, "worktree", "list").splitlines() if "subagents" in line]


async def test_without_bash_the_test_writer_still_writes_and_says_bash_is_off(
    fake_model: FakeMessagesServer, repo: Path, tmp_path: Path
) -> None:
    fake_model.set_script(
        [
            tool_use("Bash", {"command": "python -m pytest"}),
            tool_use("Write", {"file_path": "t.py", "content": "x = 1\n"}),
            text("done"),
        ]
    )
    async with SQLiteRunStore(tmp_path / "runs.db") as store, make_app(fake_model, repo, store=store) as app:
        outcome = await app.run("test-writer", "x")
        assert (await store.get(outcome.run_id)).diff == outcome.diff  # kept in the run history
    assert fake_model.requests[0].tool_names == ["Read", "Grep", "Glob", "LS", "Write", "Edit"]
    [refused] = fake_model.requests[1].tool_results
    assert refused["is_error"] and "not available" in refused["content"]
    assert outcome.diff and "+x = 1" in outcome.diff
    assert not (repo / "t.py").exists()


async def test_a_write_outside_the_workspace_is_refused(
    fake_model: FakeMessagesServer, repo: Path, tmp_path: Path
) -> None:
    target = tmp_path / "escape.txt"
    fake_model.set_script(
        [
            tool_use("Write", {"file_path": str(target), "content": "x"}),
            tool_use("Write", {"file_path": "../escape.txt", "content": "x"}),
            text("done"),
        ]
    )
    async with make_app(fake_model, repo) as app:
        outcome = await app.run("test-writer", "x")
    for request in fake_model.requests[1:]:
        [result] = request.tool_results
        assert result["is_error"]
    assert not target.exists() and outcome.diff == ""
