"""Runs that survive: retries, breaker, fallback, budgets, history, continuation, background runs,
cancellation and progress, through the MCP surface in both eras."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from mcp import Client

from subagents.budget import Price, PriceTable
from subagents.history.store import RunStore, store_for
from subagents.mcp.server import build_server
from subagents.providers.resilience import RetryPolicy
from subagents.providers.testing import FakeMessagesServer, error, text, tool_use
from tests.answers import review_json, route_json
from tests.conftest import make_app

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(attempts=4, base_delay_s=0.01)
both_eras = pytest.mark.parametrize("mode", ["legacy", "auto"])


@both_eras
async def test_two_rate_limits_then_success(
    mode: str, fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    fake_model.set_script([error(429, retry_after_ms=1), error(429, retry_after_ms=1), text(route_json())])
    async with (
        make_app(fake_model, project, store=store, resilient=FAST) as app,
        Client(build_server(app), mode=mode) as client,
    ):
        result = await client.call_tool("router", {"task": "route"})
    assert result.is_error is False and len(fake_model.requests) == 3
    [run] = await store.list()
    assert (run.status, run.id) == ("completed", result.structured_content["run_id"])  # type: ignore[index]


@both_eras
async def test_persistent_overload_is_a_clear_error_and_the_server_goes_on(
    mode: str, fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    fake_model.set_script(lambda req: error(529) if "first" in req.last_user_text else text("second ok"))
    async with (
        make_app(fake_model, project, store=store, resilient=FAST) as app,
        Client(build_server(app), mode=mode) as client,
    ):
        failed = await client.call_tool("router", {"task": "first"})
        second = await client.call_tool("router", {"task": "second"})
    assert failed.is_error is True
    assert "overloaded" in failed.content[0].text  # type: ignore[union-attr]
    assert "gave up after 4 attempts" in failed.content[0].text  # type: ignore[union-attr]
    assert second.is_error is False
    statuses = {r.task: r.status for r in await store.list()}
    assert statuses == {"first": "failed", "second": "completed"}
    assert (await store.get(failed.structured_content["run_id"])).error  # type: ignore[index]


async def test_circuit_opens_after_repeated_failures_and_answers_at_once(
    fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script(lambda req: error(529))
    policy = RetryPolicy(attempts=2, base_delay_s=0.01)
    async with make_app(fake_model, project, resilient=policy) as app:
        for _ in range(3):  # 6 failed attempts: past the threshold of 5
            await app.run("router", "x")
        calls_before = len(fake_model.requests)
        blocked = await app.run("router", "x")
    assert blocked.status == "failed" and blocked.error_kind == "circuit_open"
    assert len(fake_model.requests) == calls_before  # answered without calling the model
    assert "circuit" in (blocked.error or "")


async def test_fallback_model_is_tried_when_the_model_stays_overloaded(
    fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script(lambda req: error(529) if req.model == "claude-haiku-5-5" else text("from fallback"))
    async with make_app(fake_model, project, resilient=FAST, fallback_model="claude-sonnet-5-5") as app:
        outcome = await app.run("router", "x")
    assert outcome.status == "completed" and outcome.report == "from fallback"
    assert [r.model for r in fake_model.requests][-1] == "claude-sonnet-5-5"


async def test_output_token_budget_stops_the_run_with_a_partial_report(
    fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    fake_model.set_script(
        lambda req: tool_use("Grep", {"pattern": "x"}, preamble="Found a lead.", usage={"output_tokens": 600})
    )
    async with make_app(fake_model, project, store=store, max_output_tokens=1000) as app:
        outcome = await app.run("security-reviewer", "x")
    assert outcome.status == "budget_exceeded" and outcome.turns == 2
    assert outcome.report.startswith("Found a lead.") and "output-token budget reached" in outcome.report
    assert (await store.get(outcome.run_id)).status == "budget_exceeded"


async def test_cost_budget_and_the_daily_budget(fake_model: FakeMessagesServer, project: Path, store: RunStore) -> None:
    prices = PriceTable({"claude-haiku-5-5": Price(input=1000, output=1000, cache_write=0, cache_read=0)})
    fake_model.set_script(lambda req: text(route_json(), usage={"input_tokens": 1000, "output_tokens": 0}))
    async with make_app(fake_model, project, store=store, prices=prices, daily_budget_usd=2.5) as app:
        first = await app.run("router", "a")  # $1 each
        second = await app.run("router", "b")
        third = await app.run("router", "c")  # passes $2.5 during the run
        fourth = await app.run("router", "d")  # refused before calling the model
    assert [o.cost_usd for o in (first, second)] == [1.0, 1.0]
    assert third.status == "budget_exceeded" and "daily cost budget" in third.report
    assert fourth.status == "budget_exceeded" and fourth.report.startswith("Error: Not started")
    assert len(fake_model.requests) == 3


async def test_unknown_model_cost_is_unknown_not_made_up(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script([text("ok")])
    async with make_app(fake_model, project, prices=PriceTable({})) as app:
        outcome = await app.run("router", "x")
    assert outcome.cost_usd is None and outcome.usage.input_tokens > 0


@both_eras
async def test_long_report_is_bounded_and_the_whole_one_is_a_resource(
    mode: str, fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    long_report = review_json("finding\n" * 2000)  # over 16 000 characters
    fake_model.set_script([text(long_report)])
    async with (
        make_app(fake_model, project, store=store, max_report_chars=5000) as app,
        Client(build_server(app), mode=mode) as client,
    ):
        result = await client.call_tool("security-reviewer", {"task": "x"})
        run_id = result.structured_content["run_id"]  # type: ignore[index]
        resource = await client.read_resource(f"subagents://runs/{run_id}")
        recent = await client.read_resource("subagents://runs")
    report = result.structured_content["report"]  # type: ignore[index]
    assert len(report) <= 5000 and f"subagents://runs/{run_id}" in report and "truncated" in report
    assert json.loads(resource.contents[0].text)["report"] == long_report.strip()  # type: ignore[union-attr]
    assert json.loads(recent.contents[0].text)[0]["id"] == run_id  # type: ignore[union-attr]


@both_eras
async def test_continue_run_after_a_restart(
    mode: str, fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    path = tmp_path / "runs.db"
    fake_model.set_script([tool_use("Read", {"file_path": "src/app.py"}), text(review_json("SQL injection in find()"))])
    async with (
        make_app(fake_model, project, store=store_for(path), owns_store=True) as app,
        Client(build_server(app), mode=mode) as client,
    ):
        first = await client.call_tool("security-reviewer", {"task": "Review src/app.py"})
    run_id = first.structured_content["run_id"]  # type: ignore[index]

    fake_model.set_script([text(review_json("Use a parameterised query: db.execute('... WHERE name = ?', (name,))"))])
    async with (
        make_app(fake_model, project, store=store_for(path), owns_store=True) as app,
        Client(build_server(app), mode=mode) as client,
    ):  # a new server on the same store
        follow = await client.call_tool("continue_run", {"run_id": run_id, "message": "How do I fix it?"})
    assert follow.is_error is False
    assert "parameterised" in follow.structured_content["output"]["summary"]["reviewed"]  # type: ignore[index]
    assert follow.structured_content["continued_from"] == run_id  # type: ignore[index]
    sent = fake_model.requests[-1]
    roles = [m["role"] for m in sent.messages]
    assert roles == ["user", "assistant", "user", "assistant", "user"]  # the whole earlier conversation
    assert "SELECT * FROM users" in json.dumps(sent.messages)  # the file it read earlier
    assert "How do I fix it?" in sent.last_user_text
    async with store_for(path) as store:
        again = await store.get(follow.structured_content["run_id"])  # type: ignore[index]
    assert again.continued_from == run_id and again.status == "completed"


async def test_continue_unknown_run_is_a_clear_error(project: Path, store: RunStore) -> None:
    async with make_app(None, project, store=store) as app, Client(build_server(app)) as client:
        result = await client.call_tool("continue_run", {"run_id": "run_nope", "message": "hi"})
    assert result.is_error and "run_nope" in result.content[0].text  # type: ignore[union-attr]


@both_eras
async def test_start_get_and_cancel_a_background_run(
    mode: str, fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    fake_model.set_script(
        lambda req: text("slow answer", latency=10) if "slow" in req.last_user_text else text("quick answer")
    )
    async with make_app(fake_model, project, store=store) as app, Client(build_server(app), mode=mode) as client:
        quick = await client.call_tool("start_agent", {"agent": "router", "task": "quick"})
        slow = await client.call_tool("start_agent", {"agent": "router", "task": "slow"})
        quick_id = quick.structured_content["run_id"]  # type: ignore[index]
        slow_id = slow.structured_content["run_id"]  # type: ignore[index]
        with anyio.fail_after(10):
            while (await client.call_tool("get_run", {"run_id": quick_id})).structured_content["status"] == "running":  # type: ignore[index]
                await anyio.sleep(0.05)
        done = await client.call_tool("get_run", {"run_id": quick_id})
        running = await client.call_tool("get_run", {"run_id": slow_id})
        with anyio.fail_after(3):
            while fake_model.disconnects == 0 and len(fake_model.requests) < 2:
                await anyio.sleep(0.02)
        cancelled = await client.call_tool("cancel_run", {"run_id": slow_id})
        after = await client.call_tool("get_run", {"run_id": slow_id})
    assert done.structured_content["status"] == "completed"  # type: ignore[index]
    assert done.structured_content["report"] == "quick answer"  # type: ignore[index]
    assert running.structured_content["status"] == "running"  # type: ignore[index]
    assert cancelled.structured_content["status"] == "cancelled"  # type: ignore[index]
    assert after.structured_content["status"] == "cancelled"  # type: ignore[index]
    with anyio.fail_after(2):
        while fake_model.disconnects < 1:  # the model call was stopped, not left running
            await anyio.sleep(0.02)
    assert (await store.get(slow_id)).status == "cancelled" and (await store.get(quick_id)).status == "completed"


async def test_start_agent_with_an_unknown_agent(project: Path) -> None:
    async with make_app(None, project) as app, Client(build_server(app)) as client:
        result = await client.call_tool("start_agent", {"agent": "nope", "task": "x"})
    assert result.is_error and "No agent named 'nope'" in result.content[0].text  # type: ignore[union-attr]


@both_eras
async def test_client_cancel_stops_the_model_call_and_is_recorded(
    mode: str, fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    fake_model.set_script(
        lambda req: text("never", latency=10) if "cancel me" in req.last_user_text else text("other run fine")
    )
    async with make_app(fake_model, project, store=store) as app, Client(build_server(app), mode=mode) as client:
        async with anyio.create_task_group() as call:
            call.start_soon(client.call_tool, "router", {"task": "cancel me"})
            with anyio.fail_after(30):  # the model has the request (a loaded machine may take a while to send it)
                while not any("cancel me" in r.last_user_text for r in fake_model.requests):
                    await anyio.sleep(0.02)
            call.cancel_scope.cancel()  # the client gives up on the call
        with anyio.fail_after(2):
            while fake_model.disconnects < 1:
                await anyio.sleep(0.02)
        other = await client.call_tool("router", {"task": "another"})
    assert other.is_error is False
    with anyio.fail_after(3):
        while (statuses := {r.task: r.status for r in await store.list()}).get("cancel me") != "cancelled":
            await anyio.sleep(0.05)
    assert statuses == {"cancel me": "cancelled", "another": "completed"}


@both_eras
async def test_heartbeat_progress_while_the_model_thinks(
    mode: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script([text("done", latency=1.2)])
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with make_app(fake_model, project, heartbeat_s=0.3) as app, Client(build_server(app), mode=mode) as client:
        await client.call_tool("router", {"task": "x"}, progress_callback=on_progress)
    beats = [m for _, m in seen if m and "still working" in m]
    assert len(beats) >= 2, seen
    assert all(len(m) < 200 for _, m in seen if m)
    values = [p for p, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values)
