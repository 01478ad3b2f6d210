"""WebFetch and WebSearch: the Messages API's own tools. Off by default (and said so); on, the request carries
their definitions, their blocks are kept and sent back as the API sent them, and their cost counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from subagents.budget import PriceTable
from subagents.history.store import RunStore
from subagents.mcp.server import build_server
from subagents.providers.testing import FakeMessagesServer, Reply, text
from subagents.tools.web import WebPolicy
from tests.conftest import make_app, run_once, write_agent

pytestmark = pytest.mark.anyio

RESEARCHER = "name: researcher\ndescription: Looks things up on the web.\ntools: Read, WebFetch, WebSearch"
SEARCH_RESULT = [
    {
        "type": "web_search_result",
        "url": "https://docs.example.com/x",
        "title": "X",
        "encrypted_content": "opaque-bytes",
        "page_age": None,  # the SDK's dump fills absent fields with null; only what the API sent goes back
    }
]
FETCH_RESULT = {
    "type": "web_fetch_result",
    "url": "https://docs.example.com/x",
    "content": {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "X is 42."}},
}


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    write_agent(tmp_path / "agents", "researcher.md", RESEARCHER, body="You research.")
    return tmp_path / "agents"


def searched_and_fetched(*, stop_reason: str = "end_turn") -> Reply:
    """One turn in which the API ran a search and a fetch itself, then answered."""
    return Reply(
        content=(
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "what is x"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": SEARCH_RESULT},
            {"type": "server_tool_use", "id": "srvtoolu_2", "name": "web_fetch", "input": {"url": FETCH_RESULT["url"]}},
            {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_2", "content": FETCH_RESULT},
            {"type": "text", "text": "X is 42 (docs.example.com)."},
        ),
        stop_reason=stop_reason,
        usage={"server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 1}},
    )


async def test_with_web_tools_on_the_request_carries_the_server_tools(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    fake_model.set_script([searched_and_fetched()])
    web = WebPolicy(enabled=True, allowed_domains=("docs.example.com",), max_uses=3)
    app = make_app(fake_model, project, agents_dir=agents, bundled=False, web=web)
    outcome = await run_once(app, "researcher", "What is x?")
    [request] = fake_model.requests
    assert request.tool_names == ["Read", "web_fetch", "web_search"]
    fetch, search = request.tools[1], request.tools[2]
    assert fetch["type"] == "web_fetch_20260318" and search["type"] == "web_search_20260318"
    assert fetch["allowed_domains"] == search["allowed_domains"] == ["docs.example.com"]
    assert fetch["max_uses"] == search["max_uses"] == 3
    # A URL in a file the agent read is not fetchable: files cannot steer fetches.
    assert fetch["url_sources"]["client_tool_results"] == {"type": "none"}
    assert fetch["max_content_tokens"] == 20_000
    assert search["cache_control"] == {"type": "ephemeral"}  # the tool list's cache breakpoint, on its last tool
    assert outcome.status == "completed" and outcome.report == "X is 42 (docs.example.com)."
    assert outcome.usage.web_search_requests == 1 and outcome.usage.web_fetch_requests == 1
    assert outcome.unavailable_tools == ()


async def test_server_tool_blocks_are_not_run_here_and_go_back_as_sent(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    """A turn the API paused (pause_turn) is sent back as it came, so the API can go on; nothing is run here."""
    fake_model.set_script([searched_and_fetched(stop_reason="pause_turn"), text("Done: X is 42.")])
    app = make_app(fake_model, project, agents_dir=agents, bundled=False, web=WebPolicy(enabled=True), store=store)
    outcome = await run_once(app, "researcher", "What is x?")
    first, second = fake_model.requests
    assert outcome.report == "Done: X is 42." and outcome.turns == 2
    sent_back = second.messages[-1]
    assert sent_back["role"] == "assistant" and second.messages[-2]["role"] == "user"  # no tool results invented
    blocks = [{k: v for k, v in b.items() if k != "cache_control"} for b in sent_back["content"]]
    expected = [dict(b) for b in searched_and_fetched().content]
    expected[1] = {**expected[1], "content": [{k: v for k, v in SEARCH_RESULT[0].items() if v is not None}]}
    assert blocks == expected
    assert not first.tool_results and not second.tool_results
    stored = [b.type for m in (await store.get(outcome.run_id)).transcript for b in m.content]
    assert stored.count("server_tool_use") == 2 and "web_fetch_tool_result" in stored


async def test_web_searches_count_in_the_cost(fake_model: FakeMessagesServer, project: Path, agents: Path) -> None:
    fake_model.set_script([searched_and_fetched()])
    app = make_app(fake_model, project, agents_dir=agents, bundled=False, web=WebPolicy(enabled=True))
    outcome = await run_once(app, "researcher", "What is x?")
    tokens_only = PriceTable().cost("claude-sonnet-5-5", outcome.usage.model_copy(update={"web_search_requests": 0}))
    assert tokens_only is not None and outcome.cost_usd is not None
    assert outcome.cost_usd == pytest.approx(tokens_only + 0.01)  # $10 per 1,000 searches; fetches cost tokens


async def test_with_web_tools_off_the_agent_is_told_and_so_is_the_client(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    fake_model.set_script([text("From the files: nothing on x.")])
    async with (
        make_app(fake_model, project, agents_dir=agents, bundled=False) as app,
        Client(build_server(app)) as client,
    ):
        [tool] = [t for t in (await client.list_tools()).tools if t.name == "researcher"]
        result = await client.call_tool("researcher", {"task": "What is x?"})
    assert tool.description is not None
    assert tool.description.endswith("Unavailable here: WebFetch (web tools are off), WebSearch (web tools are off).")
    assert fake_model.requests[0].tool_names == ["Read"]  # nothing sent out
    assert result.structured_content is not None
    assert result.structured_content["unavailable_tools"] == ["WebFetch", "WebSearch"]
    assert result.structured_content["status"] == "completed"


def test_web_policy_refuses_what_is_not_a_domain() -> None:
    for bad in ("https://example.com", "exa mple.com", "", "-x.com"):
        with pytest.raises(ValueError, match="is not a domain"):
            WebPolicy(enabled=True, allowed_domains=(bad,))
    assert WebPolicy(enabled=True, allowed_domains=("example.com", "docs.example.com/api")).allowed_domains


def test_a_request_with_only_server_tools_still_marks_the_cache() -> None:
    from subagents.messages import Message, ModelRequest, ServerToolSpec, TextBlock
    from subagents.providers.anthropic import to_api_kwargs

    request = ModelRequest(
        model="m",
        system="s",
        messages=(Message(role="user", content=(TextBlock(text="hi"),)),),
        server_tools=(ServerToolSpec(type="web_search_20260318", name="web_search", options={"max_uses": 2}),),
    )
    tools = to_api_kwargs(request)["tools"]
    assert tools == [
        {"type": "web_search_20260318", "name": "web_search", "max_uses": 2, "cache_control": {"type": "ephemeral"}}
    ]
    assert json.dumps(tools)  # plain JSON, as the SDK sends it
