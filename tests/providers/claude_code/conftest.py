"""Claude Code tests: the real CLI (bundled with claude-agent-sdk) against the fake Messages API.

They need the `claude-code` extra and skip, saying why, when the CLI cannot run here; with
SUBAGENTS_CLAUDE_CODE_REQUIRED=1 (CI) a missing CLI fails them instead of skipping.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from subagents.app import Subagents
from subagents.backends import Backends
from subagents.config import Settings
from subagents.definitions.catalog import Layer, bundled_agents_dir, load_catalog
from subagents.history.store import RunStore, SQLiteRunStore
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.claude_code.detect import find_cli, sdk_installed
from subagents.providers.claude_code.options import ClaudeCodeSettings
from subagents.providers.claude_code.runner import ClaudeCodeBackend
from subagents.providers.fake_server import content_text
from subagents.providers.testing import FakeMessagesServer, RecordedRequest

REQUIRED = os.environ.get("SUBAGENTS_CLAUDE_CODE_REQUIRED") == "1"  # read before the env is scrubbed
DUMMY_KEY = "sk-ant-claude-code-test-dummy"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "claude_code: runs the real Claude Code CLI (the claude-code extra); skips when it cannot run"
    )


def _cli_problem() -> str | None:
    if not sdk_installed():
        return "claude-agent-sdk is not installed (pip install -e '.[claude-code]')"
    cli = find_cli()
    if cli is None:
        return "no Claude Code CLI: neither bundled with claude-agent-sdk nor on PATH"
    try:
        done = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{cli} --version failed: {exc}"
    return None if done.returncode == 0 else f"{cli} --version exited {done.returncode}: {done.stderr[-300:]}"


@pytest.fixture(scope="session")
def claude_cli() -> str:
    problem = _cli_problem()
    if problem is not None:
        (pytest.fail if REQUIRED else pytest.skip)(problem)
    cli = find_cli()
    assert cli is not None
    return cli


@pytest.fixture
def claude_fake(claude_cli: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMessagesServer]:
    """The fake Messages API, and an environment that points Claude Code at it: a dummy key, the scratch
    HOME of the autouse fixture, no nonessential traffic, no account."""
    with FakeMessagesServer() as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", DUMMY_KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        monkeypatch.setenv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        yield fake


def claude_app(
    root: Path,
    *,
    agents_dir: Path | None = None,
    bundled: bool = False,
    store: RunStore | None = None,
    claude: ClaudeCodeSettings | None = None,
    **settings: Any,
) -> Subagents:
    """An app whose agents run on Claude Code (`--provider claude-code`); no pre-started sessions unless asked."""
    layers = [Layer("bundled", bundled_agents_dir())] if bundled else []
    if agents_dir is not None:
        layers.append(Layer("agents-dir", agents_dir))
    claude = claude or ClaudeCodeSettings(warm_sessions=0)
    values = {"roots": (root.resolve(),), "project_dir": root, "provider": "claude-code", "claude_code": claude}
    config = Settings(**(values | settings))
    backend = ClaudeCodeBackend(claude, max_retries=0)
    backends = Backends("claude-code", AnthropicSettings(), backend)
    return Subagents(
        config, load_catalog(layers), AnthropicProvider(AnthropicSettings()), store=store, backends=backends
    )


def tool_calls(request: RecordedRequest) -> list[dict[str, Any]]:
    """The tool_use blocks of every assistant turn so far, oldest first."""
    return [
        block
        for message in request.messages
        if message.get("role") == "assistant" and isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_use"
    ]


def all_results(request: RecordedRequest) -> list[dict[str, Any]]:
    """Every tool_result block the model has been sent, oldest first, content flattened to text."""
    found = []
    for message in request.messages:
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                found.append({"content": content_text(block.get("content")), "is_error": bool(block.get("is_error"))})
    return found


def mentions(request: RecordedRequest, marker: str) -> bool:
    return marker in json.dumps(request.body.get("messages", []))


@pytest.fixture
async def store() -> AsyncIterator[RunStore]:
    async with SQLiteRunStore(":memory:") as store:
        yield store
