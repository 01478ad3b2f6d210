"""Several servers on one run store (replicas on PostgreSQL, local servers on one SQLite file), on both
stores: a run started on one is read, continued and cancelled through another, and a replica that
dies has its runs marked interrupted by the others once its lease expires."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client

from subagents.app import Subagents
from subagents.history.store import RunInput, RunStore, store_for
from subagents.mcp.server import build_server
from subagents.providers.testing import FakeMessagesServer, text
from subagents.recorder import RunRecorder
from tests.conftest import make_app, write_agent
from tests.history.helpers import OTHER_HOST

pytestmark = pytest.mark.anyio


def slow_unless_quick(req: object) -> object:
    return text("quick answer") if "quick" in req.last_user_text else text("slow", latency=20)  # type: ignore[attr-defined]


def replica(fake: FakeMessagesServer, project: Path, store: RunStore) -> Subagents:
    """A server on `store`, with one plain agent (`helper`: prose answers, no output schema)."""
    agents = project.parent / "plain-agents"
    write_agent(agents, "helper.md", "name: helper\ndescription: Answers questions.\ntools: Read")
    return make_app(fake, project, store=store, agents_dir=agents, bundled=False)


async def wait_for(fake: FakeMessagesServer, requests: int) -> None:
    with anyio.fail_after(60):  # the first call imports the anthropic SDK: slow on a busy machine
        while len(fake.requests) < requests:
            await anyio.sleep(0.02)


async def test_a_background_run_on_one_replica_is_cancelled_through_another(
    store_location: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script(slow_unless_quick)
    async with (
        store_for(store_location) as store_a,
        store_for(store_location, owner=OTHER_HOST) as store_b,
        replica(fake_model, project, store_a) as app_a,
        replica(fake_model, project, store_b) as app_b,
        Client(build_server(app_a)) as client_a,
        Client(build_server(app_b)) as client_b,
    ):
        started = await client_a.call_tool("start_agent", {"agent": "helper", "task": "slow"})
        run_id = started.structured_content["run_id"]  # type: ignore[index]
        await wait_for(fake_model, 1)
        seen = await client_b.call_tool("get_run", {"run_id": run_id})
        cancelled = await client_b.call_tool("cancel_run", {"run_id": run_id})
        with anyio.fail_after(5):
            while fake_model.disconnects < 1:  # replica A stopped its model call
                await anyio.sleep(0.02)
        record = await store_b.get(run_id)
        job = app_a.jobs.get(run_id)
    assert seen.structured_content["status"] == "running"  # type: ignore[index]
    assert cancelled.structured_content == {"run_id": run_id, "status": "cancelled"}
    assert (record.status, record.stop_reason, record.error) == ("cancelled", "cancelled", "The run was cancelled.")
    assert job is not None and job.outcome is not None and job.outcome.status == "cancelled"


async def test_a_call_on_one_replica_is_cancelled_through_another_and_its_client_hears_so(
    store_location: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script(slow_unless_quick)
    async with (
        store_for(store_location) as store_a,
        store_for(store_location, owner=OTHER_HOST) as store_b,
        replica(fake_model, project, store_a) as app_a,
        replica(fake_model, project, store_b) as app_b,
        Client(build_server(app_a)) as client_a,
        Client(build_server(app_b)) as client_b,
        anyio.create_task_group() as tg,
    ):
        results = []

        async def call() -> None:
            results.append(await client_a.call_tool("helper", {"task": "slow"}))

        tg.start_soon(call)
        await wait_for(fake_model, 1)
        [running] = await app_b.recorder.list()
        cancelled = await client_b.call_tool("cancel_run", {"run_id": running.id})
    [result] = results
    assert cancelled.structured_content["status"] == "cancelled"  # type: ignore[index]
    assert result.structured_content["status"] == "cancelled"  # type: ignore[index]
    assert result.structured_content["run_id"] == running.id  # type: ignore[index]


async def test_a_run_from_one_replica_is_read_and_continued_on_another(
    store_location: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script([text("first answer"), text("second answer")])
    async with (
        store_for(store_location) as store_a,
        store_for(store_location, owner=OTHER_HOST) as store_b,
        replica(fake_model, project, store_a) as app_a,
        replica(fake_model, project, store_b) as app_b,
        Client(build_server(app_b)) as client_b,
    ):
        first = await app_a.run("helper", "question one")
        shown = await client_b.call_tool("get_run", {"run_id": first.run_id})
        follow = await client_b.call_tool("continue_run", {"run_id": first.run_id, "message": "and then?"})
        resource = await client_b.read_resource(f"subagents://runs/{first.run_id}")
    assert shown.structured_content["report"] == "first answer"  # type: ignore[index]
    assert follow.structured_content["report"] == "second answer"  # type: ignore[index]
    assert follow.structured_content["continued_from"] == first.run_id  # type: ignore[index]
    assert "question one" in resource.contents[0].text  # type: ignore[union-attr]
    assert [m["role"] for m in fake_model.requests[-1].messages] == ["user", "assistant", "user"]


async def test_a_dead_replicas_run_is_marked_interrupted_by_a_live_one(
    store_location: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    async with store_for(store_location, owner=OTHER_HOST, lease_ttl_s=0.3) as dead:
        orphan = await dead.create_run(agent="helper", model="m", input=RunInput(task="lost"))
    async with store_for(store_location) as store:
        app = replica(fake_model, project, store)
        app.recorder = RunRecorder(store, renew_s=0.1)  # reap often, so the test is quick
        async with app:
            with anyio.fail_after(10):
                while (await store.get(orphan)).status == "running":
                    await anyio.sleep(0.05)
            record = await store.get(orphan)
    assert (record.status, record.error) == ("interrupted", "server stopped while the run was in progress")


async def test_cancelling_a_finished_run_through_another_replica_changes_nothing(
    store_location: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script([text("done")])
    async with (
        store_for(store_location) as store_a,
        replica(fake_model, project, store_a) as app_a,
        Client(build_server(app_a)) as client,
    ):
        outcome = await app_a.run("helper", "quick")
        answer = await client.call_tool("cancel_run", {"run_id": outcome.run_id})
        unknown = await client.call_tool("cancel_run", {"run_id": "run_nope"})
    assert answer.structured_content == {
        "run_id": outcome.run_id,
        "status": "completed",
        "note": "Not running; nothing to cancel.",
    }
    assert unknown.is_error and "run_nope" in unknown.content[0].text  # type: ignore[union-attr]


async def test_a_run_still_executing_on_one_replica_cannot_be_continued_through_another(
    store_location: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script(slow_unless_quick)
    async with (
        store_for(store_location) as store_a,
        store_for(store_location, owner=OTHER_HOST) as store_b,
        replica(fake_model, project, store_a) as app_a,
        replica(fake_model, project, store_b) as app_b,
        Client(build_server(app_a)) as client_a,
        Client(build_server(app_b)) as client_b,
    ):
        started = await client_a.call_tool("start_agent", {"agent": "helper", "task": "slow"})
        run_id = started.structured_content["run_id"]  # type: ignore[index]
        await wait_for(fake_model, 1)
        refused = await client_b.call_tool("continue_run", {"run_id": run_id, "message": "quick: and?"})
        await client_b.call_tool("cancel_run", {"run_id": run_id})
    assert refused.is_error
    assert refused.structured_content == {
        "status": "error",
        "error": f"Run {run_id} is still running; wait for it (get_run) or cancel it first.",
    }
    assert len(fake_model.requests) == 1  # the follow-up never reached the model
