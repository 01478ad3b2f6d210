"""The pattern tools over MCP: which are served, small schemas, bounded results, background runs."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from mcp import Client

from subagents.history.store import RunStore
from subagents.mcp.server import build_server
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text
from tests.conftest import make_app
from tests.orchestration.helpers import Models, agent_of, children, plain_agents

pytestmark = pytest.mark.anyio
ALL = ("route", "fan_out", "debate", "pipeline", "escalate", "team")
NAMES = ["alpha", "bravo", "charlie"]


@pytest.mark.parametrize(("patterns", "served"), [(("fan_out",), ["fan_out"]), (ALL, list(ALL)), ((), [])])
async def test_the_served_patterns_are_configurable(
    project: Path, patterns: tuple[str, ...], served: list[str]
) -> None:
    async with make_app(None, project, patterns=patterns) as app, Client(build_server(app), mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert [name for name in ALL if name in tools] == served
    for name in served:
        tool = tools[name]
        assert len(json.dumps(tool.input_schema)) < 900, name  # small: clients pay for every byte
        assert len(tool.description or "") < 1000 and "background" in (tool.description or "")
        assert tool.input_schema["additionalProperties"] is False


def long_answer(request: RecordedRequest) -> Reply:
    return text(f"{agent_of(request)} says: " + "detail " * 2000)


async def test_the_result_is_bounded_and_every_child_has_its_part(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script(Models({name: long_answer for name in NAMES}))
    app = make_app(fake_model, project, agents_dir=plain_agents(tmp_path / "agents", NAMES), max_report_chars=6000)
    async with app, Client(build_server(app)) as client:
        result = await client.call_tool("fan_out", {"task": "x", "agents": NAMES})
    structured = result.structured_content
    assert structured is not None
    assert len(json.dumps(structured)) < 9000  # the whole result, not only the report
    for child in structured["children"]:
        assert child["report"].startswith(f"{child['agent']} says:")
        assert f"subagents://runs/{child['run_id']}" in child["report"]  # the rest is a resource away
        assert child["status"] == "completed" and child["tokens"] > 0
    usage = structured["usage"]
    assert usage["input_tokens"] + usage["output_tokens"] == sum(c["tokens"] for c in structured["children"])


async def test_bad_arguments_and_unknown_agents_are_readable_errors(project: Path) -> None:
    async with make_app(None, project) as app, Client(build_server(app)) as client:
        unknown = await client.call_tool("fan_out", {"task": "x", "agents": ["ghost"]})
        too_many = await client.call_tool("fan_out", {"task": "x", "agents": ["router"], "samples": 99})
    assert unknown.is_error and "No agent named 'ghost'" in unknown.content[0].text  # type: ignore[union-attr]
    assert too_many.is_error and "`samples`" in too_many.content[0].text  # type: ignore[union-attr]


async def test_progress_names_the_pattern_and_the_child(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script(Models({name: text("ok") for name in NAMES[:2]}))
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    app = make_app(fake_model, project, agents_dir=plain_agents(tmp_path / "agents", NAMES[:2]))
    async with app, Client(build_server(app)) as client:
        await client.call_tool("fan_out", {"task": "x", "agents": NAMES[:2]}, progress_callback=on_progress)
    messages = [m for _, _, m in seen if m]
    assert any(m.startswith("fan_out candidate 1 (alpha): turn 1/20") for m in messages), messages
    assert any(m == "fan_out: candidate 2 (bravo) completed, 2/2 done" or "2/2 done" in m for m in messages)
    values = [p for p, _, _ in seen]
    assert values == sorted(values) and {t for _, t, _ in seen} == {2.0}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_pattern_in_the_background_is_polled_and_cancelled(
    mode: str, fake_model: FakeMessagesServer, project: Path, tmp_path: Path, store: RunStore
) -> None:
    fake_model.set_script(
        Models(
            {"alpha": text("fast"), "bravo": lambda r: text("slow", latency=10 if "slow" in r.last_user_text else 0)}
        )
    )
    app = make_app(fake_model, project, agents_dir=plain_agents(tmp_path / "agents", NAMES[:2]), store=store)
    async with app, Client(build_server(app), mode=mode) as client:
        done = await client.call_tool("fan_out", {"task": "quick", "agents": NAMES[:2], "background": True})
        done_id = done.structured_content["run_id"]  # type: ignore[index]
        with anyio.fail_after(20):
            while (await client.call_tool("get_run", {"run_id": done_id})).structured_content["status"] == "running":  # type: ignore[index]
                await anyio.sleep(0.05)
        finished = (await client.call_tool("get_run", {"run_id": done_id})).structured_content
        slow = await client.call_tool("fan_out", {"task": "slow", "agents": NAMES[:2], "background": True})
        slow_id = slow.structured_content["run_id"]  # type: ignore[index]
        with anyio.fail_after(10):
            while len(await children(store, slow_id)) < 2 or not any(
                c.status == "completed" for c in (await children(store, slow_id))
            ):
                await anyio.sleep(0.05)
        running = (await client.call_tool("get_run", {"run_id": slow_id})).structured_content
        cancelled = await client.call_tool("cancel_run", {"run_id": slow_id})
    assert done.structured_content["status"] == "running" and done.structured_content["pattern"] == "fan_out"  # type: ignore[index]
    assert finished is not None and finished["status"] == "completed" and finished["pattern"] == "fan_out"
    assert {c["agent"] for c in finished["children"]} == {"alpha", "bravo"}
    assert finished["result"]["failed"] == [] and finished["usage"]["output_tokens"] > 0
    assert running is not None and running["status"] == "running" and "fan_out" in running["progress"]
    assert cancelled.structured_content["status"] == "cancelled"  # type: ignore[index]
    assert (await store.get(slow_id)).status == "cancelled"
    assert sorted(c.status for c in (await children(store, slow_id))) == ["cancelled", "completed"]


async def test_a_pattern_run_cannot_be_continued_as_a_conversation(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path, store: RunStore
) -> None:
    fake_model.set_script(Models({"alpha": text("ok")}))
    app = make_app(fake_model, project, agents_dir=plain_agents(tmp_path / "agents", ["alpha"]), store=store)
    async with app, Client(build_server(app)) as client:
        ran = await client.call_tool("fan_out", {"task": "x", "agents": ["alpha"]})
        run_id = ran.structured_content["run_id"]  # type: ignore[index]
        follow = await client.call_tool("continue_run", {"run_id": run_id, "message": "more?"})
    assert follow.is_error and "is a fan_out pattern" in follow.content[0].text  # type: ignore[union-attr]
    assert len(fake_model.requests) == 1
