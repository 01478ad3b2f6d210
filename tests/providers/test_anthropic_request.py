"""The Messages API request built from a model request: the parts that are the same on every call (the file
tools' specs, an agent's output schema) are built once, and no call's cache mark leaks into another's."""

from __future__ import annotations

from subagents.messages import Message, ModelRequest, TextBlock
from subagents.providers.anthropic import EPHEMERAL, to_api_kwargs
from subagents.tools.grep import Grep
from subagents.tools.read import Read

SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string"}}, "required": ["verdict"]}


def request(*tools: object) -> ModelRequest:
    hello = Message(role="user", content=(TextBlock(text="hi"),))
    return ModelRequest(model="m", system="s", messages=(hello,), tools=tools, output_schema=SCHEMA)  # type: ignore[arg-type]


def test_a_specs_request_form_is_built_once_and_no_call_shares_its_cache_mark() -> None:
    first, second = to_api_kwargs(request(Read.spec, Grep.spec)), to_api_kwargs(request(Read.spec, Grep.spec))
    assert first["tools"][0] is second["tools"][0]  # Read's form, made on the first call
    assert first["output_config"]["format"]["schema"] is second["output_config"]["format"]["schema"]
    assert first["tools"][-1]["cache_control"] == EPHEMERAL
    assert first["tools"][-1] is not second["tools"][-1]  # the marked last tool is each call's own copy

    # Grep was marked last above; first in another request, its shared form carries no mark.
    reordered = to_api_kwargs(request(Grep.spec, Read.spec))
    assert "cache_control" not in reordered["tools"][0]
    assert [t["name"] for t in reordered["tools"]] == ["Grep", "Read"]
    assert reordered["tools"][0] == Grep.spec.model_dump()
