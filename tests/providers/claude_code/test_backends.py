"""Choosing a backend: `--provider`, an agent's own `provider`, `auto`, and who is billed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from subagents.app import Subagents
from subagents.backends import Backends, auto_backend, decide
from subagents.config import Settings
from subagents.definitions.catalog import Layer, load_catalog
from subagents.errors import ModelNotConfiguredError
from subagents.history.store import RunStore
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.claude_code.detect import ClaudeCodeStatus
from subagents.providers.claude_code.options import ClaudeCodeSettings
from subagents.providers.claude_code.runner import ClaudeCodeBackend
from subagents.providers.testing import FakeMessagesServer, text
from tests.conftest import TEST_KEY, write_agent
from tests.helpers import run_cli

KEY = AnthropicSettings(api_key="sk-ant-x")
NO_KEY = AnthropicSettings()
LOGGED_IN = ClaudeCodeStatus(cli="claude", logged_in=True, auth_method="claude.ai", billed_to="a subscription")
LOGGED_OUT = ClaudeCodeStatus(cli="claude", problem="Claude Code is installed but not logged in: run `claude`")


def test_auto_takes_the_api_when_a_key_is_set_else_claude_code_else_nothing() -> None:
    assert decide("auto", KEY, None).backend == "anthropic"
    choice = decide("auto", NO_KEY, LOGGED_IN)
    assert (choice.backend, choice.billed_to) == ("claude-code", "a subscription")
    nothing = decide("auto", NO_KEY, LOGGED_OUT)
    assert nothing.backend is None and "not logged in" in nothing.reason
    with pytest.raises(ModelNotConfiguredError) as raised:
        nothing.require()
    # The configure-a-model error names both ways, and why Claude Code was not used.
    message = str(raised.value)
    assert "ANTHROPIC_API_KEY" in message and "--provider claude-code" in message and "not logged in" in message


def test_an_explicit_provider_is_taken_as_asked() -> None:
    assert decide("anthropic", NO_KEY, None).backend == "anthropic"  # fails at the call, as before
    assert decide("claude-code", KEY, LOGGED_IN).backend == "claude-code"
    refused = decide("claude-code", KEY, LOGGED_OUT)
    assert refused.backend is None and refused.reason.startswith("--provider claude-code, but")


@pytest.mark.anyio
@pytest.mark.claude_code
async def test_auto_asks_the_cli_who_is_logged_in(claude_cli: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    base = {"PATH": os.environ["PATH"], "HOME": str(home), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    logged_out = await auto_backend(base)
    assert logged_out.backend is None and "not logged in" in logged_out.reason
    # A claude.ai login as Claude Code stores it (dummy tokens, never sent anywhere).
    login = {"accessToken": "sk-ant-oat01-dummy", "refreshToken": "sk-ant-ort01-dummy", "expiresAt": 4102444800000}
    login |= {"scopes": ["user:inference"], "subscriptionType": "pro"}
    await anyio.Path(home / ".claude" / ".credentials.json").write_text(json.dumps({"claudeAiOauth": login}))
    subscription = await auto_backend(base)
    assert subscription.backend == "claude-code" and "claude.ai pro subscription" in subscription.billed_to
    with_key = await auto_backend(base | {"ANTHROPIC_API_KEY": "sk-ant-dummy"})
    assert with_key.backend == "anthropic" and "ANTHROPIC_API_KEY" in with_key.billed_to


@pytest.mark.anyio
@pytest.mark.claude_code
async def test_an_agent_may_pick_its_own_backend(
    claude_fake: FakeMessagesServer, project: Path, tmp_path: Path, store: RunStore
) -> None:
    claude_fake.set_script(lambda request: text("REPORT"))
    agents = tmp_path / "agents"
    write_agent(agents, "api.md", "name: api\ndescription: on the API\ntools: Read")
    write_agent(
        agents, "cc.md", "name: cc\ndescription: on Claude Code\ntools: Read\nsubagents: {provider: claude-code}"
    )
    api = AnthropicSettings(api_key=TEST_KEY, base_url=claude_fake.url, max_retries=0)
    claude = ClaudeCodeSettings(warm_sessions=0)
    backends = Backends("anthropic", api, ClaudeCodeBackend(claude, max_retries=0))
    settings = Settings(roots=(project,), project_dir=project, provider="anthropic", claude_code=claude)
    app = Subagents(
        settings, load_catalog([Layer("d", agents)]), AnthropicProvider(api), store=store, backends=backends
    )
    async with app:
        on_api = await app.run("api", "x")
        on_claude = await app.run("cc", "x")
    assert (on_api.status, on_claude.status) == ("completed", "completed"), (on_api.error, on_claude.error)
    assert (await store.get(on_api.run_id)).backend == "anthropic" and "ANTHROPIC_API_KEY" in (on_api.billed_to or "")
    assert (await store.get(on_claude.run_id)).backend == "claude-code"
    # One request came from our own API client, the other from Claude Code (its billing header leads).
    from_claude = ["x-anthropic-billing-header" in r.system_text for r in claude_fake.requests]
    assert sorted(from_claude) == [False, True]


def test_a_subagents_server_inside_a_session_refuses_to_serve(project: Path) -> None:
    result = run_cli("serve", "--root", str(project), env={"SUBAGENTS_SESSION": "1"}, timeout=30)
    assert result.returncode == 2
    assert "refuses to start inside a subagent's Claude Code session" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_the_sdk_is_not_imported_unless_claude_code_runs_an_agent(
    project: Path, fake_model: FakeMessagesServer
) -> None:
    """With a key (auto picks the API), serving, listing tools and running an agent never import the SDK."""
    fake_model.set_script(lambda request: text("done"))
    script = textwrap.dedent(
        f"""
        import sys, anyio
        from mcp import Client
        from subagents.app import Subagents
        from subagents.config import Settings
        from subagents.mcp.server import build_server

        async def main():
            settings = Settings(roots=({str(project)!r},), store_enabled=False)
            async with Subagents.build(settings) as app, Client(build_server(app)) as client:
                await client.list_tools()
                await client.call_tool("router", {{"task": "x"}})
                await anyio.sleep(0.5)  # the warm-up job had its chance
            print("claude_agent_sdk" in sys.modules)

        anyio.run(main)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SUBAGENTS_", "CLAUDE_"))}
    env |= {"ANTHROPIC_API_KEY": TEST_KEY, "ANTHROPIC_BASE_URL": fake_model.url}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
    assert fake_model.requests  # the agent did run, on the API
