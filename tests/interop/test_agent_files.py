"""Claude Code itself reads the agent files of tests/definitions/claude_code_cases.py: the table holds.

`claude -p hi` runs offline in a scratch HOME against the fake Messages API; the request it sends lists
every agent it loaded (`- name: description (Tools: ...)`). The set of lines must be the table's, and for
a few files the subagent's own request shows what the listing cannot: the tools it really gets, its
model and how many turns it may take.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.definitions.claude_code_cases import build_project, listed_lines
from tests.interop.test_interop import claude_binary

from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text, tool_use

pytestmark = pytest.mark.interop

BUILT_IN = ("Explore:", "Plan:", "claude:", "general-purpose:", "statusline-setup:")
HEADER = "Available agent types for the Agent tool:"


def claude_p(cwd: Path, home: Path, fake: FakeMessagesServer) -> subprocess.CompletedProcess[str]:
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "ANTHROPIC_BASE_URL": fake.url,
        "ANTHROPIC_API_KEY": "sk-ant-interop-dummy",
    }
    args = [claude_binary(), "-p", "hi", "--allowedTools", "Agent"]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def agent_lines(requests: list[RecordedRequest]) -> set[str]:
    """The agents Claude Code listed for its model, built-in ones left out."""
    for request in requests:
        for s in strings(request.body):
            if HEADER in s:
                block = s.split(HEADER, 1)[1].split("\n\nWhen you launch multiple", 1)[0].strip()
                entries = block.removeprefix("- ").split("\n- ")
                return {e for e in entries if not e.startswith(BUILT_IN)}
    raise AssertionError("Claude Code listed no agents")


def test_claude_code_lists_exactly_the_recorded_agents(tmp_path: Path) -> None:
    start = build_project(tmp_path / "project")
    with FakeMessagesServer(lambda _: text("ok")) as fake:
        done = claude_p(start, tmp_path / "home", fake)
        assert done.returncode == 0, done.stderr
        seen = agent_lines(fake.requests)
    expected = listed_lines()
    assert seen - expected == set(), "Claude Code lists agents the table does not"
    assert expected - seen == set(), "the table lists agents Claude Code does not"


def spawner(agent: str, sub: list[RecordedRequest], *, read_first: bool) -> Any:
    """Claude Code's model: start `agent` once; as the subagent, Read a file first if asked, then finish."""

    def reply(request: RecordedRequest) -> Reply:
        if f"Body of {agent}." in request.system_text:
            sub.append(request)
            if read_first and len(sub) < 3:
                return tool_use("Read", {"file_path": "/etc/hostname"})
            return text("done")
        started = any(
            block.get("type") == "tool_use"
            for m in request.messages
            if m.get("role") == "assistant" and isinstance(m.get("content"), list)
            for block in m["content"]
        )
        if "Agent" in request.tool_names and not started:
            return tool_use("Agent", {"description": "try", "prompt": "go", "subagent_type": agent})
        return text("ok")

    return reply


@pytest.mark.parametrize(
    ("agent", "read_first", "tools", "turns"),
    [
        pytest.param("tools-empty", False, [], 1, id="empty-tools-means-none"),
        pytest.param("tools-map", False, [], 1, id="unreadable-tools-means-none"),
        pytest.param("tools-space", False, ["Read", "Grep", "Glob"], 1, id="space-separated"),
        pytest.param("max-turns-one", True, ["Read"], 1, id="maxTurns-text-is-a-number"),
        pytest.param("max-turns-word", True, None, 3, id="bad-maxTurns-is-no-limit"),
    ],
)
def test_what_a_subagent_really_gets(
    tmp_path: Path, agent: str, read_first: bool, tools: list[str] | None, turns: int
) -> None:
    start = build_project(tmp_path / "project")
    sub: list[RecordedRequest] = []
    with FakeMessagesServer(spawner(agent, sub, read_first=read_first)) as fake:
        done = claude_p(start, tmp_path / "home", fake)
    assert done.returncode == 0, done.stderr
    assert sub, f"Claude Code never started {agent}: {done.stdout[-300:]}"
    if tools is not None:
        assert sorted(sub[0].tool_names) == sorted(tools)
    assert len(sub) == turns


def test_a_model_that_is_not_text_is_ignored(tmp_path: Path) -> None:
    start = build_project(tmp_path / "project")
    sub: list[RecordedRequest] = []
    with FakeMessagesServer(spawner("model-number", sub, read_first=False)) as fake:
        done = claude_p(start, tmp_path / "home", fake)
        main_models = {r.model for r in fake.requests if r not in sub and "Agent" in r.tool_names}
    assert done.returncode == 0, done.stderr
    assert sub and sub[0].model in main_models  # inherited from the main conversation
