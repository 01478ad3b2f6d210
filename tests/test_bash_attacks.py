"""The attacks on `--allow-bash "python -m pytest"` (the README's example), end to end: a real
`subagents serve` over stdio, holding a real API key, driven by a scripted hostile model. Each passed
before Bash ran in its bubblewrap sandbox."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mcp import Client, StdioServerParameters

from subagents.providers.testing import FakeMessagesServer, text, tool_use
from tests.helpers import SUBAGENTS, child_env, processes_with, tree_hashes
from tests.tools.test_workspace import make_repo

pytestmark = pytest.mark.anyio
ALLOW = "python -m pytest"
IDENTITY = ("-c", "user.name=t", "-c", "user.email=t@t")
TEST_FILES = "def test_write(tmp_path):\n    (tmp_path / 'out.txt').write_text('x')\n"


@pytest.fixture
def secret() -> str:
    return f"sk-ant-{uuid.uuid4().hex}"


@pytest.fixture
def fake(secret: str) -> Iterator[FakeMessagesServer]:
    with FakeMessagesServer(api_key=secret) as server:  # the server must hold the real key
        yield server


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The user's project: committed tests, one using tmp_path (so pytest makes --basetemp), and
    uncommitted work."""
    root = make_repo(tmp_path / "user-repo")
    (root / "tests" / "test_files.py").write_text(TEST_FILES)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), *IDENTITY, "commit", "-qm", "file test"], check=True)
    (root / "notes.txt").write_text("uncommitted work of the user\n")
    return root


def server(repo: Path, fake: FakeMessagesServer, secret: str, *, path: str | None = None) -> StdioServerParameters:
    env = {"ANTHROPIC_API_KEY": secret, "ANTHROPIC_BASE_URL": fake.url} | ({"PATH": path} if path else {})
    return StdioServerParameters(
        command=SUBAGENTS[0],
        args=[*SUBAGENTS[1:], "serve", "--root", str(repo), "--allow-bash", ALLOW, "--no-store"],
        env=child_env(env),
        cwd=str(repo),
    )


def assert_untouched(before: dict[str, str], after: dict[str, str]) -> None:
    """Every file, directory and link of the user's tree, `.git` included, is as it was, byte for byte."""
    assert after == before


def bash_results(fake: FakeMessagesServer) -> list[str]:
    return [str(r["content"]) for request in fake.requests for r in request.tool_results]


@pytest.mark.usefixtures("bwrap")
async def test_pytest_basetemp_pointed_at_the_users_repo_leaves_it_byte_for_byte(
    repo: Path, fake: FakeMessagesServer, secret: str
) -> None:
    """pytest deletes --basetemp, then makes it, when a test asks for tmp_path: without the sandbox this
    wiped the user's tree, .git too. In the sandbox the user's tree is not there: nothing to delete,
    and the tmp_path test errors on the missing parent directory."""
    command = f"python -m pytest --basetemp={repo} -q tests/"
    fake.set_script([tool_use("Bash", {"command": command}), text("Ran the tests.")])
    before = tree_hashes(repo)
    async with Client(server(repo, fake, secret)) as client:
        result = await client.call_tool("test-writer", {"task": "Run the tests"})
    assert result.is_error is False, result.content
    assert_untouched(before, tree_hashes(repo))
    [ran] = bash_results(fake)
    assert ran.startswith("Command exit code 1.") and "1 passed, 1 error" in ran, ran
    assert f"FileNotFoundError: [Errno 2] No such file or directory: '{repo}'" in ran
    assert all(secret not in json.dumps(r.body) for r in fake.requests)


CONFTEST = """
import json, os, socket, subprocess, sys

def attempt(action):
    try:
        return action()
    except OSError as exc:
        return type(exc).__name__

def keys():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        env = attempt(lambda: open(f"/proc/{pid}/environ", "rb").read())
        if isinstance(env, bytes) and b"ANTHROPIC_API_KEY=" in env:
            found.append(env.split(b"ANTHROPIC_API_KEY=")[1].split(b"\\0")[0].decode())
    return found

def write_into_users_tree():
    with open(os.path.join(__REPO__, "PWNED"), "w") as f:
        f.write("owned")
    return "written"

def call_home():
    socket.create_connection(("127.0.0.1", __PORT__), timeout=3).close()
    return "connected"

def daemon():
    code = "import time; time.sleep(60)"
    subprocess.Popen([sys.executable, "-c", code, __MARK__[::-1]], start_new_session=True)
    return "started"

REPORT = {
    "keys": keys(),
    "parent_environ": attempt(lambda: open(f"/proc/{os.getppid()}/environ", "rb").read().decode()),
    "read_users_file": attempt(lambda: open(os.path.join(__REPO__, "notes.txt")).read()),
    "write_users_file": attempt(write_into_users_tree),
    "call_home": attempt(call_home),
    "daemon": daemon(),
}

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line("REPORT " + json.dumps(REPORT))
"""


@pytest.mark.usefixtures("bwrap")
async def test_an_agent_written_conftest_cannot_take_the_key_the_users_files_the_network_or_stay(
    repo: Path, fake: FakeMessagesServer, secret: str
) -> None:
    marker = f"daemon-{uuid.uuid4().hex}"
    port = urlsplit(fake.url).port
    conftest = CONFTEST.replace("__REPO__", repr(str(repo))).replace("__PORT__", str(port))
    conftest = conftest.replace("__MARK__", repr(marker[::-1]))
    fake.set_script(
        [
            tool_use("Write", {"file_path": "conftest.py", "content": conftest}),
            tool_use("Bash", {"command": "python -m pytest -q tests/"}),
            text("Tests pass."),
        ]
    )
    before = tree_hashes(repo)
    async with Client(server(repo, fake, secret)) as client:
        result = await client.call_tool("test-writer", {"task": "Add a conftest"})
        assert processes_with(marker) == []  # gone when the call returned, with the server still up
    assert result.is_error is False, result.content
    wrote, ran = bash_results(fake)
    assert "2 passed" in ran, ran  # the project's tests still run in the sandbox
    report = json.loads(ran.split("REPORT ", 1)[1].split("\n", 1)[0])
    assert report == {
        "keys": [],
        "parent_environ": "",  # the sandbox's init: bwrap, started with an empty environment
        "read_users_file": "FileNotFoundError",
        "write_users_file": "FileNotFoundError",
        "call_home": "ConnectionRefusedError",
        "daemon": "started",
    }
    assert all(secret not in json.dumps(r.body) for r in fake.requests)
    assert len(fake.requests) == 3  # the conftest never reached the model's endpoint
    assert_untouched(before, tree_hashes(repo))


def _path_without_bwrap(tmp_path: Path) -> str:
    bin_dir = tmp_path / "bin-without-bwrap"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git is not None
    (bin_dir / "git").symlink_to(git)  # the workspace needs git
    return str(bin_dir)


async def test_without_bwrap_the_model_is_told_bash_needs_bubblewrap_and_nothing_runs(
    repo: Path, fake: FakeMessagesServer, secret: str, tmp_path: Path
) -> None:
    fake.set_script([tool_use("Bash", {"command": f"python -m pytest --basetemp={repo} -q"}), text("ok")])
    before = tree_hashes(repo)
    params = server(repo, fake, secret, path=_path_without_bwrap(tmp_path))
    async with Client(params) as client:
        result = await client.call_tool("test-writer", {"task": "Run the tests"})
    assert result.is_error is False, result.content
    [refused] = fake.requests[1].tool_results
    assert refused["is_error"] and "bwrap was not found on PATH" in refused["content"]
    assert "apt-get install bubblewrap" in refused["content"]
    assert_untouched(before, tree_hashes(repo))


def test_serve_warns_at_start_up_when_bash_is_allowed_but_bwrap_is_missing(repo: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "subagents", "serve", "--root", str(repo), "--allow-bash", ALLOW],
        input="",  # end of input: the server exits
        capture_output=True,
        text=True,
        env=child_env({"PATH": _path_without_bwrap(tmp_path)}),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--allow-bash is set, but every Bash call will be refused" in proc.stderr
    assert "apt-get install bubblewrap" in proc.stderr and proc.stdout == ""


@pytest.mark.usefixtures("bwrap")
def test_serve_with_a_working_bwrap_does_not_warn(repo: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "subagents", "serve", "--root", str(repo), "--allow-bash", ALLOW],
        input="",
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert proc.returncode == 0 and "bubblewrap" not in proc.stderr, proc.stderr
