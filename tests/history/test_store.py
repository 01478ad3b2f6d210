"""The run store, against both stores: durable runs and transcripts, queued turns, history queries."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

import anyio
import anyio.lowlevel
import pytest

from subagents.history.store import RunInput, RunNotFoundError, StoreError
from subagents.messages import Message, Usage
from tests.history.helpers import T0, TRANSCRIPT, Clock, finish, new_run, opened, text

pytestmark = pytest.mark.anyio


async def test_a_run_round_trips_through_a_reopened_store(store_location: str) -> None:
    clock = Clock()
    async with opened(store_location, clock) as store:
        parent = await new_run(store, "router", "route")
        run_id = await store.create_run(
            agent="security-reviewer",
            model="claude-x",
            parent_id=parent,
            client="claude-code",
            principal="alice",
            input=RunInput(task="review auth.py", context="ctx", files=("auth.py",)),
        )
        await store.append_messages(run_id, TRANSCRIPT[:1])
        await store.record_turn(run_id, TRANSCRIPT[1:3], turns=1, usage=Usage(input_tokens=10), cost_usd=0.01)
        await store.record_turn(run_id, TRANSCRIPT[3:], turns=2, usage=Usage(input_tokens=90), cost_usd=0.4)
        clock.advance(2.5)
        usage = Usage(input_tokens=100, output_tokens=20, cache_read_input_tokens=5, cache_creation_input_tokens=7)
        await store.finish(
            run_id,
            status="completed",
            report="No SQL injection found.",
            error=None,
            usage=usage,
            cost_usd=0.42,
            turns=2,
            stop_reason="end_turn",
            diff="--- a/x\n+++ b/x\n",
        )

    async with opened(store_location) as store:
        record = await store.get(run_id)
    assert record.transcript == TRANSCRIPT
    assert record.input == RunInput(task="review auth.py", context="ctx", files=("auth.py",))
    assert (record.agent, record.model, record.status, record.report, record.error, record.diff) == (
        "security-reviewer",
        "claude-x",
        "completed",
        "No SQL injection found.",
        None,
        "--- a/x\n+++ b/x\n",
    )
    assert (record.usage, record.cost_usd, record.turns, record.stop_reason) == (usage, 0.42, 2, "end_turn")
    assert (record.parent_id, record.client, record.continued_from, record.principal) == (
        parent,
        "claude-code",
        None,
        "alice",
    )
    assert record.created_at == T0 and record.created_at.utcoffset() == timedelta(0)
    assert record.finished_at == T0 + timedelta(seconds=2.5)
    assert record.duration_s == 2.5 and record.cancel_requested is False


async def test_queued_turns_are_seen_by_the_next_read_and_kept_by_finish(store_location: str) -> None:
    async with opened(store_location) as store:
        run_id = await new_run(store)
        for turn in range(1, 4):
            await store.record_turn(
                run_id, [text("assistant", f"turn {turn}")], turns=turn, usage=Usage(output_tokens=turn), cost_usd=turn
            )
        record = await store.get(run_id)  # no flush: a read sees what this store took before it
        assert ([m.text for m in record.transcript], record.turns, record.cost_usd) == (
            ["turn 1", "turn 2", "turn 3"],
            3,
            3.0,
        )
        await store.record_turn(run_id, [text("assistant", "last")], turns=4, usage=Usage(), cost_usd=4)
        await finish(store, run_id, cost=4)
    async with opened(store_location) as store:  # finish returned: everything before it is durable
        assert [m.text for m in (await store.get(run_id)).transcript] == ["turn 1", "turn 2", "turn 3", "last"]


async def test_a_run_created_with_its_conversation_has_it_first_in_its_transcript(store_location: str) -> None:
    async with opened(store_location) as store:
        run_id = await new_run(store, messages=[text("user", "the task"), text("user", "the files")])
        await store.record_turn(run_id, [text("assistant", "done")], turns=1, usage=Usage(), cost_usd=None)
        await finish(store, run_id)
    async with opened(store_location) as store:
        assert [m.text for m in (await store.get(run_id)).transcript] == ["the task", "the files", "done"]


async def test_many_runs_recording_at_once_keep_each_transcript_whole_and_in_order(store_location: str) -> None:
    runs_n, turns_n = 20, 15
    async with opened(store_location) as store:
        ids = [await new_run(store, task=f"run {i}") for i in range(runs_n)]

        async def run(run_id: str) -> None:
            for turn in range(turns_n):
                await store.record_turn(
                    run_id, [text("assistant", f"{run_id}:{turn}")], turns=turn + 1, usage=Usage(), cost_usd=None
                )
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            for run_id in ids:
                tg.start_soon(run, run_id)
        await store.flush()
        records = [await store.get(run_id) for run_id in ids]
    for run_id, record in zip(ids, records, strict=True):
        assert [m.text for m in record.transcript] == [f"{run_id}:{t}" for t in range(turns_n)]
        assert record.turns == turns_n


async def test_run_ids_are_run_underscore_twelve_hex_and_unique(store_location: str) -> None:
    async with opened(store_location) as store:
        ids = {await new_run(store) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"run_[0-9a-f]{12}", i) for i in ids)


async def test_a_running_run_has_no_finish_time_and_an_empty_transcript(store_location: str) -> None:
    async with opened(store_location) as store:
        record = await store.get(await new_run(store))
    assert (record.status, record.finished_at, record.duration_s, record.transcript) == ("running", None, None, ())


async def test_continued_from_and_parent_must_name_existing_runs(store_location: str) -> None:
    async with opened(store_location) as store:
        first = await new_run(store)
        second = await new_run(store, task="more", continued_from=first)
        assert (await store.get(second)).continued_from == first
        with pytest.raises(RunNotFoundError, match="run_nope"):
            await new_run(store, parent_id="run_nope")
        assert len(await store.list()) == 2


async def test_unknown_run_ids_raise_a_helpful_error(store_location: str) -> None:
    async with opened(store_location) as store:
        with pytest.raises(RunNotFoundError) as caught:
            await store.get("run_0123456789ab")
        message = str(caught.value)
        assert "run_0123456789ab" in message and "subagents runs list" in message
        with pytest.raises(RunNotFoundError):
            await finish(store, "run_missing")
        with pytest.raises(RunNotFoundError):
            await store.request_cancel("run_missing")


async def test_a_queued_write_for_an_unknown_run_is_logged_and_writes_nothing(
    store_location: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with opened(store_location) as store:
        real = await new_run(store)
        await store.record_turn("run_missing", [text("assistant", "x")], turns=1, usage=Usage(), cost_usd=None)
        await store.append_messages("run_missing", [text("user", "x")])
        await store.record_turn(real, [text("assistant", "kept")], turns=1, usage=Usage(), cost_usd=None)
        await store.flush()
        assert [m.text for m in (await store.get(real)).transcript] == ["kept"]
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("record a turn of run run_missing" in m and "No run with id" in m for m in logged), logged
    assert any("append messages to run run_missing" in m for m in logged), logged


async def test_finish_refuses_running_as_a_final_status(store_location: str) -> None:
    async with opened(store_location) as store:
        run_id = await new_run(store)
        with pytest.raises(ValueError, match="final status"):
            await finish(store, run_id, status="running")
        assert (await store.get(run_id)).finished_at is None


async def test_list_is_newest_first_and_filters_pages(store_location: str) -> None:
    clock = Clock()
    async with opened(store_location, clock) as store:
        ids = []
        for i, agent in enumerate(["a", "b", "a", "b", "a"]):
            ids.append(await new_run(store, agent, f"task {i}", principal="bob" if i == 3 else None))
            clock.advance(1)
        child = await new_run(store, "a", "child", parent_id=ids[0])
        await finish(store, ids[0])
        await finish(store, ids[4], status="failed", error="boom")
        assert [s.id for s in await store.list()] == [child, *ids[::-1]]
        assert [s.id for s in await store.list(agent="a")] == [child, ids[4], ids[2], ids[0]]
        assert [s.id for s in await store.list(status="running")] == [child, ids[3], ids[2], ids[1]]
        assert [s.id for s in await store.list(agent="a", status="completed")] == [ids[0]]
        assert [s.id for s in await store.list(limit=2, offset=2)] == [ids[3], ids[2]]
        assert [s.id for s in await store.list(parent_id=ids[0])] == [child]
        assert [s.id for s in await store.list(principal="bob")] == [ids[3]]
        assert [s.task for s in await store.list(limit=1, offset=1)] == ["task 4"]
        assert (await store.list(limit=1, offset=1))[0].error == "boom"
        assert (await store.list(limit=1))[0].parent_id == ids[0]


async def test_list_orders_runs_created_in_the_same_instant_by_insertion(store_location: str) -> None:
    async with opened(store_location, Clock()) as store:
        ids = [await new_run(store) for _ in range(5)]
        assert [s.id for s in await store.list()] == ids[::-1]
        assert [s.id for s in await store.list(agent="a")] == ids[::-1]
        assert [s.id for s in await store.list(status="running", limit=3)] == ids[:1:-1]


async def test_list_cuts_task_and_error_to_200_characters(store_location: str) -> None:
    async with opened(store_location) as store:
        run_id = await new_run(store, task="é" * 500)
        await finish(store, run_id, status="failed", error="x" * 300)
        summary = (await store.list())[0]
    assert summary.task == "é" * 200
    assert summary.error == "x" * 200


async def test_list_rejects_an_unknown_status(store_location: str) -> None:
    async with opened(store_location) as store:
        with pytest.raises(ValueError, match="completed"):
            await store.list(status="complete")


async def test_match_ids_finds_prefixes_without_reading_underscore_as_a_wildcard(store_location: str) -> None:
    async with opened(store_location, Clock()) as store:
        first = await new_run(store, run_id="run_abc111111111")
        second = await new_run(store, run_id="run_abc222222222")
        await new_run(store, run_id="runXabc333333333")
        assert await store.match_ids("run_abc") == [second, first]
        assert await store.match_ids("run_abc1") == [first]
        assert await store.match_ids("run_", limit=1) == [second]
        assert await store.match_ids("nothing") == []


async def test_stats_sum_per_agent_and_model_and_count_unknown_costs(store_location: str) -> None:
    clock = Clock()
    async with opened(store_location, clock) as store:
        old = await store.create_run(agent="a", model="m1", input=RunInput(task="old"))
        await finish(store, old, cost=5.0, usage=Usage(input_tokens=1000))
        clock.advance(3600)
        runs = []
        for agent, model in [("a", "m1"), ("a", "m1"), ("a", "m1"), ("a", "m2"), ("b", "m1")]:
            runs.append(await store.create_run(agent=agent, model=model, input=RunInput(task="t")))
        await finish(store, runs[0], cost=0.5, usage=Usage(input_tokens=10, output_tokens=1, cache_read_input_tokens=3))
        await finish(store, runs[1], status="failed", usage=Usage(input_tokens=20, cache_creation_input_tokens=4))
        await store.record_turn(runs[2], [], turns=1, usage=Usage(output_tokens=2), cost_usd=0.25)
        await finish(store, runs[3], status="budget_exceeded")
        await finish(store, runs[4])

        since = {(s.agent, s.model): s for s in await store.stats(since=T0 + timedelta(minutes=1))}
        everything = {(s.agent, s.model): s for s in await store.stats()}

    a1 = since["a", "m1"]
    assert (a1.calls, a1.completed, a1.failed) == (3, 1, 1)
    assert (a1.input_tokens, a1.output_tokens, a1.cache_read_input_tokens, a1.cache_creation_input_tokens) == (
        30,
        3,
        3,
        4,
    )
    assert (a1.cost_usd, a1.cost_unknown_runs) == (0.75, 1)
    assert (since["a", "m2"].cost_usd, since["a", "m2"].cost_unknown_runs, since["a", "m2"].failed) == (None, 1, 0)
    assert (since["b", "m1"].cost_usd, since["b", "m1"].cost_unknown_runs) == (None, 1)
    assert list(since) == [("a", "m1"), ("a", "m2"), ("b", "m1")]
    assert (everything["a", "m1"].calls, everything["a", "m1"].cost_usd) == (4, 5.75)
    assert everything["a", "m1"].input_tokens == 1030


async def test_cost_since_sums_every_processs_runs_created_since_including_running_ones(store_location: str) -> None:
    clock = Clock()
    async with opened(store_location, clock) as store, opened(store_location, clock) as other:
        assert await store.cost_since(T0) == 0.0
        await finish(store, await new_run(store), cost=1.0)
        clock.advance(60)
        await finish(store, await new_run(store), cost=0.5)
        await finish(other, await new_run(other, "b"), cost=None)
        running = await new_run(other, "b")
        await other.record_turn(running, [], turns=1, usage=Usage(), cost_usd=0.125)
        await other.flush()
        assert await store.cost_since(T0 + timedelta(seconds=30)) == 0.625
        assert await store.cost_since(T0) == 1.625


async def test_cost_since_one_principal_sums_only_that_principals_runs(store_location: str) -> None:
    async with opened(store_location) as store, opened(store_location) as other:
        await finish(store, await new_run(store, principal="alice"), cost=1.0)
        await finish(other, await new_run(other, principal="alice"), cost=0.25)  # another replica's run
        await finish(store, await new_run(store, principal="bob"), cost=2.0)
        await finish(store, await new_run(store), cost=4.0)  # the local user's
        assert await store.cost_since(T0, principal="alice") == 1.25
        assert await store.cost_since(T0, principal="bob") == 2.0
        assert await store.cost_since(T0, principal="carol") == 0.0
        assert await store.cost_since(T0) == 7.25


async def test_naive_datetimes_are_refused(store_location: str) -> None:
    async with opened(store_location) as store:
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.cost_since(datetime(2026, 1, 1))


async def test_runs_of_another_principal_answer_like_unknown_ids(store_location: str) -> None:
    async with opened(store_location) as store:
        alices = await new_run(store, principal="alice")
        nobodys = await new_run(store)
        assert (await store.get(alices, principal="alice")).principal == "alice"
        assert (await store.get(alices)).id == alices  # no principal: the operator sees every run
        with pytest.raises(RunNotFoundError) as hidden:
            await store.get(alices, principal="bob")
        with pytest.raises(RunNotFoundError) as unknown:
            await store.get("run_000000000000", principal="bob")
        with pytest.raises(RunNotFoundError):
            await store.get(nobodys, principal="bob")
        with pytest.raises(RunNotFoundError):
            await store.request_cancel(alices, principal="bob")
        assert str(hidden.value) == str(unknown.value).replace("run_000000000000", alices)
        assert [s.id for s in await store.list(principal="bob")] == []
        assert not (await store.get(alices)).cancel_requested


async def test_nul_characters_do_not_break_recording(store_location: str, backend: str) -> None:
    task, report = "look at\x00this", "found \x00 here"
    async with opened(store_location) as store:
        run_id = await new_run(store, task=task)
        await store.record_turn(run_id, [text("user", "bytes: \x00\x01")], turns=1, usage=Usage(), cost_usd=None)
        await store.finish(
            run_id,
            status="completed",
            report=report,
            error=None,
            usage=Usage(),
            cost_usd=None,
            turns=1,
            stop_reason=None,
        )
        record, [summary] = await store.get(run_id), await store.list()
    assert record.input.task == task and record.transcript[0].text == "bytes: \x00\x01"  # JSON keeps every character
    # PostgreSQL text cannot hold NUL: free text shows it as U+FFFD there.
    shown = report if backend == "sqlite" else report.replace("\x00", "\ufffd")
    assert record.report == shown and summary.task == (task if backend == "sqlite" else "look at\ufffdthis")


async def test_a_closed_store_refuses_work_clearly(store_location: str) -> None:
    store = opened(store_location)
    with pytest.raises(StoreError, match="not open"):
        await store.list()
    async with store:
        pass
    with pytest.raises(StoreError, match="not open"):
        await store.record_turn("run_x", [Message(role="user", content=())], turns=1, usage=Usage(), cost_usd=None)
