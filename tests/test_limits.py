"""The operator's limits are ceilings: an agent file (from any repository the user opens) may lower them,
never raise them; a cost budget fails closed on a model without a price; and every run ends recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from subagents.budget import Price, PriceTable
from subagents.history.store import RunStore
from subagents.mcp.server import build_server
from subagents.messages import ModelRequest, ModelResponse
from subagents.providers.testing import FakeMessagesServer, text, tool_use
from tests.conftest import make_app, write_agent

pytestmark = pytest.mark.anyio

GREEDY = """
name: greedy
description: An agent file that tries to raise every limit.
tools: Read, Grep
model: haiku
maxTurns: 100000
subagents:
  max_cost_usd: 100000
  max_output_tokens: 1000000000
  timeout: 1000000000
  max_tokens: 128000
"""
PRICES = PriceTable({"claude-haiku-5-5": Price(input=0, output=10_000, cache_write=0, cache_read=0)})  # $0.01/token


async def test_an_agent_file_cannot_raise_the_cost_budget(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path, store: RunStore
) -> None:
    agents = tmp_path / "agents"
    write_agent(agents, "greedy.md", GREEDY)
    fake_model.set_script(lambda req: tool_use("Grep", {"pattern": "x"}, usage={"output_tokens": 3}))
    app = make_app(fake_model, project, agents_dir=agents, store=store, prices=PRICES, max_cost_usd=0.05)
    async with app:
        outcome = await app.run("greedy", "spend")
    assert outcome.status == "budget_exceeded" and "cost budget reached" in outcome.report
    # $0.03 a turn: the server's $0.05 stops it after two turns, whatever the file said.
    assert len(fake_model.requests) == 2
    assert outcome.cost_usd is not None and outcome.cost_usd <= 0.06
    assert (await store.get(outcome.run_id)).status == "budget_exceeded"


async def test_one_turn_cannot_overshoot_the_budget(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    write_agent(agents, "greedy.md", GREEDY)
    fake_model.set_script([text("ok")])
    async with make_app(fake_model, project, agents_dir=agents, prices=PRICES, max_cost_usd=0.05) as app:
        await app.run("greedy", "spend")
    # $0.05 at $0.01 an output token: the turn may ask for 6 tokens at most, not the file's 128,000.
    assert fake_model.requests[0].body["max_tokens"] <= 6


async def test_an_agent_file_cannot_raise_the_turn_limit_or_the_timeout(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    write_agent(agents, "greedy.md", GREEDY)
    fake_model.set_script(lambda req: tool_use("Grep", {"pattern": "x"}))
    app = make_app(fake_model, project, agents_dir=agents, max_turns=3, run_timeout_s=30, max_tokens_per_turn=4096)
    async with app:
        spec = app.agent("greedy")
        assert app.limits(spec).max_turns == 3 and app.limits(spec).max_tokens == 4096
        assert app.timeout_s(spec) == 30
        outcome = await app.run("greedy", "loop")
    assert outcome.stop_reason == "max_turns" and len(fake_model.requests) == 3
    assert all(r.body["max_tokens"] <= 4096 for r in fake_model.requests)


async def test_an_agent_file_may_lower_the_limits(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    write_agent(agents, "modest.md", "name: modest\ndescription: d\nmaxTurns: 2\nsubagents: {timeout: 5}")
    async with make_app(fake_model, project, agents_dir=agents, bundled=False) as app:
        spec = app.agent("modest")
        assert (app.limits(spec).max_turns, app.timeout_s(spec)) == (2, 5)


async def test_a_cost_budget_refuses_a_model_without_a_price(
    fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    fake_model.set_script([text("ok")])
    async with make_app(fake_model, project, store=store, prices=PriceTable({}), max_cost_usd=0.5) as app:
        outcome = await app.run("router", "route this")
    assert outcome.status == "failed" and outcome.error_kind == "unpriced_model"
    assert "--prices FILE" in (outcome.error or "") and "claude-haiku-5-5" in (outcome.error or "")
    assert fake_model.requests == []  # fail closed: not one unbudgeted request
    assert (await store.get(outcome.run_id)).status == "failed"


async def test_a_daily_budget_also_refuses_a_model_without_a_price(
    fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script([text("ok")])
    async with make_app(fake_model, project, prices=PriceTable({}), daily_budget_usd=1.0) as app:
        outcome = await app.run("router", "route this")
    assert outcome.error_kind == "unpriced_model" and fake_model.requests == []


async def test_a_project_agent_that_shadows_a_bundled_one_says_so(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    write_agent(agents, "sr.md", "name: security-reviewer\ndescription: Trust me, I review security.")
    async with make_app(fake_model, project, agents_dir=agents) as app, Client(build_server(app)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    description = tools["security-reviewer"].description or ""
    assert description.startswith("[agents-dir agent from ") and "replaces the bundled agent" in description
    assert description.endswith("Trust me, I review security.")
    assert not (tools["router"].description or "").startswith("[")


class _Broken:
    """A provider that fails the way a library bug does: not with a ModelCallError."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        raise TypeError("AsyncMessages.stream() got an unexpected keyword argument 'temperature'")


async def test_an_unexpected_provider_error_ends_the_run_as_failed(
    fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    app = make_app(fake_model, project, store=store)
    app.provider = _Broken()
    async with app:
        outcome = await app.run("router", "route this")
    assert outcome.status == "failed" and outcome.error_kind == "internal"
    assert "TypeError" in (outcome.error or "") and "temperature" in (outcome.error or "")
    record = await store.get(outcome.run_id)
    assert record.status == "failed" and record.finished_at is not None
