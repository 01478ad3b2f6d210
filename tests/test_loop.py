"""The agent loop, driven through the real anthropic SDK against the fake Messages API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from subagents.events import RunEvent
from subagents.loop import LAST_TURN_NOTE
from subagents.providers.testing import FakeMessagesServer, error, text, tool_use
from tests.answers import review_json
from tests.conftest import make_app, run_once, write_agent

pytestmark = pytest.mark.anyio


def all_bodies(fake: FakeMessagesServer) -> str:
    return "\n".join(json.dumps(r.body) for r in fake.requests)


async def test_text_answer_ends_the_run(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script([text(review_json("No findings."))])
    outcome = await run_once(make_app(fake_model, project), "security-reviewer", "Review src/app.py")
    assert (outcome.status, outcome.report, outcome.turns, outcome.stop_reason) == (
        "completed",
        review_json("No findings."),
        1,
        "end_turn",
    )
    assert outcome.output is not None and outcome.output["summary"]["reviewed"] == "No findings."
    request = fake_model.requests[0]
    assert request.model == "claude-sonnet-5-5"  # model: sonnet in the bundled file, resolved by the alias table
    assert "<task>\nReview src/app.py\n</task>" in request.last_user_text


async def test_read_tool_round_trip(fake_model: FakeMessagesServer, project: Path) -> None:
    answer = review_json("SQL injection at src/app.py:4")
    fake_model.set_script([tool_use("Read", {"file_path": "src/app.py"}), text(answer)])
    outcome = await run_once(make_app(fake_model, project), "security-reviewer", "Review", files=["src/app.py"])
    assert outcome.report == answer and outcome.turns == 2
    second = fake_model.requests[1]
    [result] = second.tool_results
    assert result["is_error"] is False and "SELECT * FROM users" in result["content"]
    assert "Start from these files" in fake_model.requests[0].last_user_text


async def test_system_prompt_and_tools_carry_cache_breakpoints(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script([text("ok")])
    await run_once(make_app(fake_model, project), "security-reviewer", "x")
    body = fake_model.requests[0].body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "You are" in body["system"][0]["text"]
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert [t["name"] for t in body["tools"]] == ["Read", "Grep", "Glob", "LS"]


async def test_turn_limit_cuts_the_run_and_says_so(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    write_agent(agents, "loop.md", "name: looper\ndescription: d\ntools: Read\nmaxTurns: 3")
    fake_model.set_script(lambda req: tool_use("Read", {"file_path": "README.md"}, preamble="Still looking."))
    outcome = await run_once(make_app(fake_model, project, agents_dir=agents, bundled=False), "looper", "go")
    assert outcome.status == "completed" and outcome.stop_reason == "max_turns" and outcome.turns == 3
    assert len(fake_model.requests) == 3
    assert "stopped at its 3-turn limit" in outcome.report and outcome.report.startswith("Still looking.")
    assert LAST_TURN_NOTE in fake_model.requests[2].last_user_text
    assert LAST_TURN_NOTE not in fake_model.requests[1].last_user_text


async def test_tool_errors_go_back_to_the_model(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script(
        [
            tool_use("Read", {"file_path": "src/missing.py"}),
            tool_use("Bash", {"command": "ls"}),
            tool_use("Read", {"path": "wrong-arg"}),
            text(review_json("done")),
        ]
    )
    outcome = await run_once(make_app(fake_model, project), "security-reviewer", "x")
    assert outcome.status == "completed" and outcome.turns == 4
    errors = [r.tool_results[0] for r in fake_model.requests[1:]]
    assert all(e["is_error"] for e in errors)
    assert "src/missing.py" in errors[0]["content"]
    assert "Bash" in errors[1]["content"] and "not available" in errors[1]["content"]
    assert "file_path" in errors[2]["content"]


async def test_paths_outside_the_roots_are_refused_and_never_read(
    fake_model: FakeMessagesServer, tmp_path: Path, project: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    fake_model.set_script(
        [
            tool_use("Read", {"file_path": "../secret.txt"}),
            tool_use("Read", {"file_path": str(secret)}),
            tool_use("Grep", {"pattern": "TOP-SECRET", "path": str(tmp_path)}),
            text(review_json("done")),
        ]
    )
    outcome = await run_once(make_app(fake_model, project), "security-reviewer", "x")
    assert outcome.status == "completed"
    for request in fake_model.requests[1:]:
        [result] = request.tool_results
        assert result["is_error"] and "outside" in result["content"]
    assert "TOP-SECRET-VALUE" not in all_bodies(fake_model)


async def test_only_the_tools_the_agent_allows_are_offered(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    write_agent(agents, "r.md", "name: reader\ndescription: d\ntools: Read, Grep, Bash\ndisallowedTools: Grep")
    fake_model.set_script([tool_use("Grep", {"pattern": "x"}), text("ok")])
    await run_once(make_app(fake_model, project, agents_dir=agents, bundled=False), "reader", "x")
    assert fake_model.requests[0].tool_names == ["Read"]  # Grep denied; Bash is off unless the server enables it
    [result] = fake_model.requests[1].tool_results
    assert result["is_error"] and "Grep" in result["content"]


async def test_progress_events_name_the_turn_and_the_tool(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script([tool_use("Grep", {"pattern": "password", "path": "src"}), text("ok")])
    events: list[RunEvent] = []

    async def sink(event: RunEvent) -> None:
        events.append(event)

    await run_once(make_app(fake_model, project), "security-reviewer", "x", events=sink)
    messages = [e.message for e in events]
    assert 'turn 1/20: Grep "password" in src' in messages
    assert all(len(m) < 200 for m in messages)


async def test_model_errors_become_a_failed_outcome(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script([error(401)])
    outcome = await run_once(make_app(fake_model, project), "security-reviewer", "x")
    assert outcome.status == "failed" and outcome.error_kind == "auth"
    assert "ANTHROPIC_API_KEY" in (outcome.error or "")


async def test_no_credentials_says_how_to_configure(project: Path) -> None:
    outcome = await run_once(make_app(None, project), "security-reviewer", "x")
    assert outcome.status == "failed" and outcome.error_kind == "not_configured"
    assert "ANTHROPIC_API_KEY" in (outcome.error or "") and "claude mcp add" in (outcome.error or "")


async def test_model_field_inherit_uses_the_server_default(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    write_agent(agents, "i.md", "name: inh\ndescription: d\ntools: Read")
    fake_model.set_script([text("ok"), text("ok")])
    await run_once(make_app(fake_model, project, agents_dir=agents, bundled=False, default_model="haiku"), "inh", "x")
    await run_once(
        make_app(
            fake_model,
            project,
            agents_dir=agents,
            bundled=False,
            default_model="opus",
            model_aliases={"opus": "my-opus"},
        ),
        "inh",
        "x",
    )
    assert [r.model for r in fake_model.requests] == ["claude-haiku-5-5", "my-opus"]


async def test_the_conversation_is_cached_up_to_the_newest_turn(fake_model: FakeMessagesServer, project: Path) -> None:
    reads = [tool_use("Read", {"file_path": "src/app.py"}), tool_use("Read", {"file_path": "README.md"})]
    fake_model.set_script([*reads, text(review_json("done"))])
    await run_once(make_app(fake_model, project), "security-reviewer", "Review")
    third = fake_model.requests[2].body
    users = [m for m in third["messages"] if m["role"] == "user"]
    assert users[-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}  # the newest turn
    assert users[-2]["content"][-1]["cache_control"] == {"type": "ephemeral"}  # and the one before
    assert sum("cache_control" in b for m in third["messages"] for b in m["content"]) == 2
    first, second, last = fake_model.usages
    # Each turn reads everything the turn before it wrote: turn 3 reads turns 1 and 2 from the cache.
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert last["cache_read_input_tokens"] == second["cache_read_input_tokens"] + second["cache_creation_input_tokens"]
    assert last["input_tokens"] < last["cache_read_input_tokens"] / 10
