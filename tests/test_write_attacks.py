"""Attacks on the write workspace, end to end: a hostile agent plants git metadata, reads secrets, or the
server dies mid-run. The user's tree and .git stay the same byte for byte, and every run ends recorded."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from subagents.history.store import SQLiteRunStore
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text, tool_use
from subagents.tools.bash import BashPolicy
from tests.conftest import make_app, model_env
from tests.helpers import SUBAGENTS, child_env
from tests.tools.test_workspace import snapshot

pytestmark = pytest.mark.anyio

SERVER_SECRET = "sk-ant-server-secret-0123"
USER_SECRET = "STRIPE_KEY=sk_live_user_secret_4567"


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | {"GIT_OPTIONAL_LOCKS": "0"}
    ident = ("-c", "user.name=t", "-c", "user.email=t@t")
    return subprocess.run(["git", *ident, *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """A repository with a package in a subdirectory, mid-work: an untracked .env holds a secret."""
    repo = tmp_path / "mono"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (repo / "README.md").write_text("# mono\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    (repo / "pkg" / ".env").write_text(USER_SECRET + "\n")
    return repo


def diffed(diff: str) -> list[str]:
    """The paths a diff changes."""
    return re.findall(r"^diff --git a/(\S+) ", diff, re.MULTILINE)


def sent_to_model(fake: FakeMessagesServer) -> str:
    return "\n".join(json.dumps(r.body) for r in fake.requests)


async def test_a_planted_repository_is_refused_without_a_shell_and_the_run_completes(
    fake_model: FakeMessagesServer, monorepo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    config = f"[core]\n\tbare = false\n\tworktree = .\n[filter \"x\"]\n\tclean = sh -c 'env > {marker} && cat'\n"
    writes = [  # HEAD plus commondir is a repository to git, though objects/ and refs/ live elsewhere
        ("store/objects/keep", ""),
        ("store/refs/keep", ""),
        ("store/config", config),
        ("config", config),
        ("commondir", "store\n"),
        (".gitattributes", "* filter=x\n"),
        ("HEAD", "ref: refs/heads/main\n"),
    ]
    fake_model.set_script([*(tool_use("Write", {"file_path": p, "content": c}) for p, c in writes), text("done")])
    before = snapshot(monorepo)
    async with (
        SQLiteRunStore(tmp_path / "runs.db") as store,
        make_app(fake_model, monorepo / "pkg", store=store) as app,
    ):
        outcome = await app.run("test-writer", "x")
        recorded = await store.get(outcome.run_id)
    results = [r.tool_results[0] for r in fake_model.requests[1:]]
    assert [r["is_error"] for r in results] == [False] * 6 + [True]
    assert 'would make "." look like a git repository' in results[-1]["content"]
    assert outcome.status == "completed" and recorded.status == "completed"
    assert not marker.exists() and snapshot(monorepo) == before
    assert outcome.diff is not None and "HEAD" not in diffed(outcome.diff)
    assert diffed(outcome.diff) == [
        ".gitattributes",
        "commondir",
        "config",
        "store/config",
        "store/objects/keep",
        "store/refs/keep",
    ]


async def test_a_change_inside_a_repository_shaped_directory_never_leaves_in_the_diff(
    fake_model: FakeMessagesServer, monorepo: Path, tmp_path: Path
) -> None:
    fixture = monorepo / "pkg" / "fixtures" / "remote.git"  # a committed test fixture: a bare repository
    for name, content in {"HEAD": "ref: refs/heads/main\n", "config": "[core]\n\tbare = true\n"}.items():
        (fixture / name).parent.mkdir(parents=True, exist_ok=True)
        (fixture / name).write_text(content)
    for keep in ("objects/pack/.keep", "refs/heads/main"):
        (fixture / keep).parent.mkdir(parents=True, exist_ok=True)
        (fixture / keep).write_text("0" * 40 + "\n")
    git(monorepo, "add", "-A")
    git(monorepo, "commit", "-qm", "fixture")
    hostile = "[core]\n\tbare = false\n\tworktree = ../..\n[filter \"x\"]\n\tclean = sh -c 'env > /tmp/x && cat'\n"
    fake_model.set_script(
        [
            tool_use(
                "Edit",
                {
                    "file_path": "fixtures/remote.git/config",
                    "old_string": "[core]\n\tbare = true\n",
                    "new_string": hostile,
                },
            ),
            tool_use("Write", {"file_path": "test_calc.py", "content": "def test():\n    pass\n"}),
            text("Wrote test_calc.py."),
        ]
    )
    before = snapshot(monorepo)
    async with make_app(fake_model, monorepo / "pkg") as app:
        outcome = await app.run("test-writer", "x")
    assert [r.tool_results[0]["is_error"] for r in fake_model.requests[1:]] == [False, False]
    assert outcome.status == "completed" and snapshot(monorepo) == before
    assert outcome.diff is not None and diffed(outcome.diff) == ["test_calc.py"]
    assert outcome.report == (
        "Wrote test_calc.py.\n\nLeft out of the diff: 'fixtures/remote.git/config' (inside fixtures/remote.git, "
        "which looks like a git repository whose config git would obey)."
    )


PLANT = """import os, shutil
if os.path.isfile(".git"):
    os.remove(".git")
for sub in ("objects/info", "refs/heads"):
    os.makedirs(os.path.join(".git", sub), exist_ok=True)
open(".git/HEAD", "w").write("ref: refs/heads/main\\n")
open(".git/config", "w").write({config!r})
open(".gitattributes", "w").write("* filter=x diff=x\\n")
"""


@pytest.mark.parametrize("root", ["top", "subdirectory"])
async def test_a_repository_planted_by_the_agents_code_is_never_obeyed(
    root: str, fake_model: FakeMessagesServer, monorepo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SERVER_SECRET)  # the server's environment: the prize
    marker = tmp_path / "marker"
    run = f"sh -c 'env >> {marker} && cat'"
    config = (
        f'[core]\n\tbare = false\n\tfsmonitor = {run}\n[filter "x"]\n\tclean = {run}\n[diff "x"]\n\ttextconv = {run}\n'
    )
    fake_model.set_script(
        [
            tool_use("Write", {"file_path": "plant.py", "content": PLANT.format(config=config)}),
            tool_use("Bash", {"command": "python plant.py"}),
            text("Planted."),
        ]
    )
    before = snapshot(monorepo)
    bash = BashPolicy(enabled=True, allow=("python",), timeout_s=60)
    async with make_app(fake_model, monorepo / "pkg" if root == "subdirectory" else monorepo, bash=bash) as app:
        outcome = await app.run("test-writer", "x")
    [ran] = fake_model.requests[2].tool_results
    assert not ran["is_error"] and "exit code 0" in ran["content"].lower(), ran
    assert not marker.exists(), marker.read_text()[:300]
    assert outcome.status == "completed" and snapshot(monorepo) == before
    assert outcome.diff is not None and diffed(outcome.diff) == [".gitattributes", "plant.py"]
    assert "Left out of the diff: '.git' (git repository metadata, which git would obey)" in outcome.report


async def test_an_agent_with_a_shell_never_sees_the_users_secrets(
    fake_model: FakeMessagesServer, monorepo: Path
) -> None:
    fake_model.set_script(
        [tool_use("Bash", {"command": "cat .env"}), tool_use("Bash", {"command": "cat calc.py"}), text("done")]
    )
    bash = BashPolicy(enabled=True, allow=("cat",), timeout_s=60)
    before = snapshot(monorepo)
    async with make_app(fake_model, monorepo / "pkg", bash=bash) as app:
        outcome = await app.run("test-writer", "x")
    assert snapshot(monorepo) == before
    [secret] = fake_model.requests[1].tool_results
    [code] = fake_model.requests[2].tool_results
    assert "No such file" in secret["content"] and "return a + b" in code["content"]
    assert "sk_live_user_secret" not in sent_to_model(fake_model)
    assert outcome.status == "completed" and outcome.diff == ""


async def test_a_diff_that_cannot_be_collected_ends_the_run_failed_and_recorded(
    fake_model: FakeMessagesServer, monorepo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def script(request: RecordedRequest) -> Reply:
        if not request.tool_results:
            return tool_use("Write", {"file_path": "new.py", "content": "x = 1\n"})
        for workspace in temp.glob("subagents-ws-*"):  # a temp cleaner takes our repository mid-run
            shutil.rmtree(workspace / "git")
        return text("Wrote new.py.")

    fake_model.set_script(script)
    async with (
        SQLiteRunStore(tmp_path / "runs.db") as store,
        make_app(fake_model, monorepo / "pkg", store=store) as app,
    ):
        outcome = await app.run("test-writer", "x")
        record = await store.get(outcome.run_id)
    assert outcome.status == record.status == "failed"
    assert record.error and record.error.startswith("The agent's changes could not be collected: git status failed in")
    assert "Wrote new.py." in outcome.report and list(temp.iterdir()) == []


async def test_a_server_killed_mid_run_leaves_nothing_after_a_restart(
    fake_model: FakeMessagesServer, monorepo: Path, tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    fake_model.set_script(
        lambda req: (
            text("slow", latency=30)
            if req.tool_results
            else tool_use("Write", {"file_path": "test_calc.py", "content": "def test():\n    pass\n"})
        )
    )
    env = child_env(model_env(fake_model) | {"SUBAGENTS_STORE": str(tmp_path / "runs.db"), "TMPDIR": str(temp)})
    root = monorepo / "pkg"
    before = snapshot(monorepo)
    params = StdioServerParameters(command=SUBAGENTS[0], args=[*SUBAGENTS[1:], "serve", "--root", str(root)], env=env)
    async with Client(params, mode="legacy") as client, anyio.create_task_group() as tg:
        tg.start_soon(client.call_tool, "test-writer", {"task": "write a test"})
        with anyio.fail_after(30):
            while len(fake_model.requests) < 2:  # the Write is done; the model holds its next reply
                await anyio.sleep(0.05)
        found = await anyio.run_process(["pgrep", "-f", f"subagents serve --root {root}"], check=False)
        pids = found.stdout.decode().split()
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)  # no chance to clean anything up
        tg.cancel_scope.cancel()
    assert pids
    [left] = temp.glob("subagents-ws-*")
    assert [p.name for p in left.rglob("test_calc.py")] == ["test_calc.py"]
    assert not list(left.rglob(".env"))  # the secret was never copied

    with anyio.fail_after(120):  # stdin closes at once: the server starts, cleans up, and exits
        restarted = await anyio.run_process([*SUBAGENTS, "serve", "--root", str(root)], env=env, input=b"")
    assert "removed 1 workspaces left by servers that stopped" in restarted.stderr.decode()
    assert list(temp.iterdir()) == []
    assert snapshot(monorepo) == before
    assert git(monorepo, "worktree", "list", "--porcelain").count("worktree ") == 1
