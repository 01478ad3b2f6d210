"""Structured handoffs: an agent's declared output schema reaches the API as structured output, the answer is
validated, a non-conforming one is retried once with the validation error, then returned with a warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from subagents.definitions.loader import load_agent_file
from subagents.mcp.server import build_server
from subagents.providers.testing import FakeMessagesServer, text
from subagents.structured import parse_output
from tests.answers import route_json
from tests.conftest import make_app, run_once, write_agent

pytestmark = pytest.mark.anyio

SCHEMA_AGENT = """
name: tagger
description: Tags a file.
tools: Read
model: haiku
maxTurns: 3
subagents:
  output:
    type: object
    additionalProperties: false
    required: [tag, score]
    properties:
      tag: {type: string, enum: [good, bad]}
      score: {type: integer, minimum: 0, maximum: 10}
"""


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    write_agent(tmp_path / "agents", "tagger.md", SCHEMA_AGENT, body="You tag files.")
    return tmp_path / "agents"


async def test_the_schema_is_sent_as_structured_output(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    fake_model.set_script([text('{"tag": "good", "score": 7}')])
    outcome = await run_once(make_app(fake_model, project, agents_dir=agents), "tagger", "Tag README.md")
    fmt = fake_model.requests[0].body["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    schema = fake_model.requests[0].output_schema
    assert schema is not None and schema["required"] == ["tag", "score"] and schema["additionalProperties"] is False
    # The SDK's transform moves what the API does not take (minimum/maximum) into the description ...
    assert "minimum" not in schema["properties"]["score"] and "maximum" in schema["properties"]["score"]["description"]
    assert (outcome.status, outcome.output, outcome.warning, outcome.turns) == (
        "completed",
        {"tag": "good", "score": 7},
        None,
        1,
    )


async def test_an_invalid_answer_is_retried_once_with_the_validation_error(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    fake_model.set_script([text('{"tag": "good", "score": 11}'), text('{"tag": "bad", "score": 2}')])
    outcome = await run_once(make_app(fake_model, project, agents_dir=agents), "tagger", "Tag README.md")
    assert len(fake_model.requests) == 2
    retry = fake_model.requests[1].last_user_text
    # ... and our own validator still enforces it: 11 is over the maximum, and the model is told so.
    assert "does not match the output format" in retry and "at score: 11 is greater than the maximum of 10" in retry
    assert '"required":["tag","score"]' in retry  # the schema itself, for a model that did not see it
    assert outcome.output == {"tag": "bad", "score": 2} and outcome.warning is None and outcome.turns == 2


async def test_a_second_invalid_answer_is_returned_as_it_is_with_a_warning(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    fake_model.set_script([text("Looks good to me."), text("Still prose, sorry.")])
    app = make_app(fake_model, project, agents_dir=agents)
    async with app, Client(build_server(app)) as client:
        result = await client.call_tool("tagger", {"task": "Tag README.md"})
    assert len(fake_model.requests) == 2  # one retry, no more
    structured = result.structured_content
    assert structured is not None and result.is_error is False
    assert structured["report"] == "Still prose, sorry." and "output" not in structured
    assert "does not match the agent's output schema" in structured["warning"]
    assert "not a JSON object" in structured["warning"]


async def test_a_matching_answer_comes_as_the_object_itself(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    fake_model.set_script([text('```json\n{"tag": "good", "score": 3}\n```')])  # a fenced answer is accepted
    app = make_app(fake_model, project, agents_dir=agents)
    async with app, Client(build_server(app)) as client:
        result = await client.call_tool("tagger", {"task": "Tag README.md"})
    structured = result.structured_content
    assert structured is not None and structured["output"] == {"tag": "good", "score": 3} and "report" not in structured


async def test_no_retry_past_the_turn_limit(
    fake_model: FakeMessagesServer, project: Path, agents: Path, tmp_path: Path
) -> None:
    write_agent(agents, "tagger.md", SCHEMA_AGENT.replace("maxTurns: 3", "maxTurns: 1"), body="You tag files.")
    fake_model.set_script([text("prose")])
    outcome = await run_once(make_app(fake_model, project, agents_dir=agents), "tagger", "Tag it")
    assert len(fake_model.requests) == 1 and outcome.output is None  # the operator's turn limit is a ceiling
    assert outcome.warning and "not a JSON object" in outcome.warning


async def test_a_bundled_router_answer_is_read_as_fields(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script([text(route_json("security-reviewer", 0.8, "A review."))])
    outcome = await run_once(make_app(fake_model, project), "router", "Is app.py safe?")
    assert outcome.output == {"route": "security-reviewer", "confidence": 0.8, "reason": "A review.", "task": "Do it."}


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("[1, 2]", "must be a JSON schema object"),
        ("{type: array, items: {type: string}}", "root must be `type: object`"),
    ],
)
def test_an_unusable_schema_is_refused_with_the_reason(tmp_path: Path, output: str, reason: str) -> None:
    path = write_agent(tmp_path, "bad.md", f"name: bad\ndescription: d\nsubagents:\n  output: {output}")
    result = load_agent_file(path)
    assert result.spec is None
    [problem] = result.problems
    assert problem.level == "error" and "subagents.output" in problem.message and reason in problem.message


def test_the_bundled_agents_examples_match_their_own_schemas() -> None:
    """The JSON example in each schema agent's prompt is an answer its schema accepts."""
    agents = Path(__file__).resolve().parents[1] / "agents"
    for name in ("router", "debate-judge", "security-reviewer"):
        spec = load_agent_file(agents / f"{name}.md", layer="bundled").spec
        assert spec is not None and spec.options.output is not None, name
        example = next(line for line in spec.prompt.splitlines() if line.startswith('{"'))
        value, problem = parse_output(spec.options.output, example)
        assert problem is None and value == json.loads(example), (name, problem)
