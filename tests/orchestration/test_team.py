"""`team`: independent tasks in a queue in the run store, claimed once each by up to `workers` agents at once,
a failed task that does not sink the rest, cancellation that leaves nothing queued, and the ceilings."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path

import anyio
import pytest
from mcp import Client

from subagents.cli.pattern_tree import load_tree, tree_rows
from subagents.events import RunEvent
from subagents.history.store import RunInput, RunStore, TaskSpec
from subagents.mcp.server import build_server
from subagents.messages import Message, TextBlock
from subagents.orchestration import PATTERN_MODEL, run_pattern
from subagents.orchestration.args import PatternInputError
from subagents.orchestration.resume import resume_teams
from subagents.orchestration.team import CANCELLED_QUEUED
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, error, text
from tests.conftest import make_app
from tests.history.helpers import finish
from tests.orchestration.helpers import Models, children, plain_agents

pytestmark = pytest.mark.anyio
TASKS = [f"task number {n:02d}" for n in range(8)]


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    return plain_agents(tmp_path / "agents", ["reviewer", "tester"])


def tasks(n: int = 8) -> list[dict[str, str]]:
    return [{"agent": "reviewer" if i % 2 else "tester", "task": TASKS[i]} for i in range(n)]


def asked(fake: FakeMessagesServer) -> Counter[str]:
    """How many model calls each task got."""
    return Counter(next(t for t in TASKS if t in r.last_user_text) for r in fake.requests)


async def test_eight_tasks_on_three_workers_each_run_once(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def counted(request: RecordedRequest) -> Reply:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        threading.Event().wait(0.2)
        with lock:
            state["now"] -= 1
        return text(f"done: {next(t for t in TASKS if t in request.last_user_text)}")

    fake_model.set_script(Models({"*": counted}))
    app = make_app(fake_model, project, agents_dir=agents, store=store, patterns=("team",))
    async with app, Client(build_server(app)) as client:
        result = await client.call_tool("team", {"tasks": tasks(), "workers": 3, "context": "Python 3.11"})
    structured = result.structured_content
    assert structured is not None and result.is_error is False and structured["status"] == "completed"
    assert asked(fake_model) == Counter(dict.fromkeys(TASKS, 1))  # every task once, none twice
    assert state["most"] == 3  # three workers at once, no more
    assert all("Python 3.11" in r.last_user_text for r in fake_model.requests)  # the shared context
    assert [(t["task"], t["status"], t["attempts"]) for t in structured["result"]["tasks"]] == [
        (n, "completed", 1) for n in range(1, 9)
    ]
    assert structured["result"]["failed"] == []
    assert structured["report"].startswith("8 of 8 tasks completed")
    reports = {c["role"]: c["report"] for c in structured["children"]}
    assert reports["task 3"] == f"done: {TASKS[2]}"
    run_id = structured["run_id"]
    queue = await store.list_tasks(run_id)
    assert [t.status for t in queue] == ["completed"] * 8
    assert {t.run_id for t in queue} == {c.id for c in await children(store, run_id)}
    rows = tree_rows(await load_tree(store, await store.get(run_id)))  # `subagents runs show`
    assert sorted(r[0] for r in rows) == sorted(f"task {n}" for n in range(1, 9))
    assert {r[2] for r in rows} == {"completed"}


async def test_progress_reads_done_and_running(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    fake_model.set_script(Models({"*": text("ok", latency=0.1)}))
    said: list[str] = []

    async def events(event: RunEvent) -> None:
        said.append(event.message)

    async with make_app(fake_model, project, agents_dir=agents, store=store) as app:
        outcome = await run_pattern(app, "team", {"tasks": tasks(4), "workers": 2}, events=events)
    assert outcome.status == "completed"
    progress = [m for m in said if re.match(r"team: [0-4]/4 done, [0-2] running \(task [1-4], (tester|reviewer)", m)]
    assert len(progress) == 4  # one a finished task
    assert progress[-1].startswith("team: 4/4 done, 0 running")


async def test_a_failing_task_does_not_sink_the_rest(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    fake_model.set_script(Models({"tester": text("tested"), "reviewer": error(400, message="reviewer broke")}))
    async with make_app(fake_model, project, agents_dir=agents, store=store) as app:
        outcome = await run_pattern(app, "team", {"tasks": tasks(4)})
    assert outcome.status == "completed"
    statuses = {t["task"]: t["status"] for t in outcome.result["tasks"]}
    assert statuses == {1: "completed", 2: "failed", 3: "completed", 4: "failed"}
    assert [(f["task"], f["agent"]) for f in outcome.result["failed"]] == [(2, "reviewer"), (4, "reviewer")]
    assert all("reviewer broke" in f["error"] for f in outcome.result["failed"])
    assert outcome.report.startswith("2 of 4 tasks completed")


async def test_every_task_failing_fails_the_team(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    fake_model.set_script(Models({"*": error(400, message="down")}))
    async with make_app(fake_model, project, agents_dir=agents, store=store) as app:
        outcome = await run_pattern(app, "team", {"tasks": tasks(2)})
    assert outcome.status == "failed" and outcome.error == "Every task failed."
    assert (await store.get(outcome.run_id)).status == "failed"


async def test_cancelling_cancels_every_child_and_leaves_nothing_queued(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    fake_model.set_script(Models({"*": text("never", latency=10)}))
    ids: list[str] = []

    async def started(run_id: str) -> None:
        ids.append(run_id)

    async with make_app(fake_model, project, agents_dir=agents, store=store) as app:
        with anyio.move_on_after(2):
            await run_pattern(app, "team", {"tasks": tasks(6), "workers": 2}, started=started)
    [team_id] = ids
    assert (await store.get(team_id)).status == "cancelled"
    assert [c.status for c in await children(store, team_id)] == ["cancelled"] * 2  # partial work kept
    queue = await store.list_tasks(team_id)
    assert [t.status for t in queue] == ["failed"] * 6
    assert [t.error for t in queue[2:]] == [CANCELLED_QUEUED] * 4 and {t.attempts for t in queue[2:]} == {1}
    assert await store.parents_with_queued_tasks() == []  # no later server will pick it up


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tasks": [{"agent": "reviewer", "task": "x"}] * 33}, "`tasks`: Tuple should have at most 32 items"),
        ({"tasks": tasks(2), "workers": 9}, "`workers`: Input should be less than or equal to 8"),
        ({"tasks": []}, "`tasks`: Tuple should have at least 1 item"),
        ({"tasks": [{"agent": "reviewer"}]}, "`tasks.0.task` is required"),
        ({"tasks": [{"agent": "reviewer", "task": "x", "model": "opus"}]}, "`tasks.0.model` is not an argument"),
        ({}, "`tasks` is required"),
    ],
)
async def test_the_ceilings_cannot_be_raised(
    project: Path, agents: Path, store: RunStore, arguments: dict[str, object], message: str
) -> None:
    async with make_app(None, project, agents_dir=agents, store=store) as app:
        with pytest.raises(PatternInputError, match=message.replace("(", r"\(")):
            await run_pattern(app, "team", arguments)
    assert await store.list() == []


async def test_unknown_agents_and_no_store_are_refused_before_anything_runs(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    ghost = [*tasks(2), {"agent": "ghost", "task": "haunt"}]
    async with make_app(fake_model, project, agents_dir=agents, store=store) as app:
        with pytest.raises(Exception, match="No agent named 'ghost'"):
            await run_pattern(app, "team", {"tasks": ghost})
    async with make_app(fake_model, project, agents_dir=agents, store_enabled=False) as app:
        with pytest.raises(PatternInputError, match=r"keeps its tasks in the run store, which is off \(--no-store\)"):
            await run_pattern(app, "team", {"tasks": tasks(2)})
    assert fake_model.requests == [] and await store.list() == []


async def test_a_team_in_the_background_reports_progress_and_is_cancelled_whole(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    fake_model.set_script(Models({"tester": text("tested"), "reviewer": text("never", latency=10)}))
    app = make_app(fake_model, project, agents_dir=agents, store=store, patterns=("team",))
    async with app, Client(build_server(app)) as client:
        started = await client.call_tool("team", {"tasks": tasks(6), "workers": 3, "background": True})
        run_id = started.structured_content["run_id"]  # type: ignore[index]
        with anyio.fail_after(60):
            while (await store.task_counts(run_id)).completed < 3:
                await anyio.sleep(0.05)
            while not re.match(r"team: 3/6 done, 3 running", (running := await get_run(client, run_id))["progress"]):
                await anyio.sleep(0.05)
        cancelled = await client.call_tool("cancel_run", {"run_id": run_id})
        ended = await get_run(client, run_id)
    assert running["status"] == "running" and running["agent"] == "team"
    assert cancelled.structured_content == {"run_id": run_id, "status": "cancelled"}
    assert ended["status"] == "cancelled" and ended["pattern"] == "team"
    assert sorted(c.status for c in await children(store, run_id)) == ["cancelled"] * 3 + ["completed"] * 3
    assert [t.status for t in await store.list_tasks(run_id)] == ["completed", "failed"] * 3


async def get_run(client: Client, run_id: str) -> dict[str, object]:
    result = (await client.call_tool("get_run", {"run_id": run_id})).structured_content
    assert result is not None
    return result


async def interrupted_team(
    store: RunStore, agent: str, principal: str | None = None, roots: list[Path] | None = None
) -> str:
    """A team a stopped server left: its run interrupted, its arguments recorded, its tasks queued."""
    run_id = await store.create_run(
        agent="team", model=PATTERN_MODEL, input=RunInput(task="A team of 2 tasks."), principal=principal
    )
    arguments: dict[str, object] = {
        "pattern": "team",
        "arguments": {"tasks": [{"agent": agent, "task": t} for t in TASKS[:2]]},
    }
    if roots is not None:
        arguments["roots"] = [str(root) for root in roots]
    await store.append_messages(run_id, [Message(role="user", content=(TextBlock(text=json.dumps(arguments)),))])
    await store.enqueue_tasks(run_id, [TaskSpec(agent=agent, input=RunInput(task=t)) for t in TASKS[:2]])
    await finish(store, run_id, "interrupted", error="stopped")
    return run_id


async def test_a_left_team_is_resumed_once_in_its_principals_name(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    fake_model.set_script(Models({"*": text("done")}))
    run_id = await interrupted_team(store, "tester", principal="alice")
    async with make_app(fake_model, project, agents_dir=agents, store=store) as app:
        assert await resume_teams(app) == [run_id]
        assert await resume_teams(app) == []  # adopted: running here now
        with anyio.fail_after(60):
            while (record := await store.get(run_id)).status == "running":
                await anyio.sleep(0.05)
    assert record.status == "completed" and record.error is None
    assert [(c.status, c.principal) for c in await children(store, run_id)] == [("completed", "alice")] * 2
    assert asked(fake_model) == Counter(dict.fromkeys(TASKS[:2], 1))


async def test_a_left_team_whose_agent_is_gone_ends_failed_with_the_reason(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    run_id = await interrupted_team(store, "ghost")
    async with make_app(fake_model, project, agents_dir=agents, store=store) as app:
        assert await resume_teams(app) == []
    record = await store.get(run_id)
    assert record.status == "failed" and "could not be resumed: No agent named 'ghost'" in (record.error or "")
    assert fake_model.requests == []


async def test_a_left_team_is_resumed_only_where_it_may_read_what_it_read(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore, tmp_path: Path
) -> None:
    fake_model.set_script(Models({"*": text("done")}))
    elsewhere = await interrupted_team(store, "tester", roots=[tmp_path / "elsewhere"])
    here = await interrupted_team(store, "tester", roots=[project / "src"])
    async with make_app(fake_model, project, agents_dir=agents, store=store) as app:  # --root project
        assert await resume_teams(app) == [here]
        with anyio.fail_after(60):
            while (await store.get(here)).status == "running":
                await anyio.sleep(0.05)
    assert (await store.get(here)).status == "completed"
    assert (await store.get(elsewhere)).status == "interrupted"  # left for a server that may read there
