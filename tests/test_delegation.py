"""Task: a run hands work to another loaded agent, which runs as its recorded child, one level deeper, on the
parent's files, within the parent's budget and run slots; its report comes back as the tool result."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from subagents.events import RunEvent
from subagents.history.store import RunStore
from subagents.principals import LOCAL
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text, tool_use
from tests.conftest import make_app, run_once, write_agent
from tests.helpers import tree_hashes

pytestmark = pytest.mark.anyio

REPORT = re.compile(r'^<agent-report agent="(?P<agent>[\w-]+)" run_id="(?P<run>run_\w+)" status="(?P<status>\w+)">\n')


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    folder = tmp_path / "agents"
    write_agent(folder, "lead.md", "name: lead\ndescription: Leads reviews.\ntools: Read, Task", body="LEAD")
    write_agent(folder, "reviewer.md", "name: reviewer\ndescription: Reviews code.\ntools: Read, Grep", body="REVIEWER")
    write_agent(folder, "fixer.md", "name: fixer\ndescription: Fixes code.\ntools: Read, Edit", body="FIXER")
    write_agent(folder, "builder.md", "name: builder\ndescription: Builds.\ntools: Read, Write, Task", body="BUILDER")
    write_agent(folder, "relay.md", "name: relay\ndescription: Passes work on.\ntools: Read, Agent", body="RELAY")
    return folder


def delegated(request: RecordedRequest) -> bool:
    return bool(request.tool_results)


def task(agent: str, prompt: str = "Review src/app.py for injection.") -> Reply:
    return tool_use("Task", {"description": "review the app", "prompt": prompt, "subagent_type": agent})


async def test_the_child_runs_as_a_recorded_child_and_its_report_comes_back(
    fake_model: FakeMessagesServer, project: Path, agents: Path, tmp_path: Path
) -> None:
    def script(request: RecordedRequest) -> Reply:
        if request.system_text == "REVIEWER":
            return text("SQL injection at src/app.py:4.")
        return text("The reviewer found one issue.") if delegated(request) else task("reviewer")

    fake_model.set_script(script)
    store = RunStore(tmp_path / "runs.db")
    events: list[RunEvent] = []

    async def listen(event: RunEvent) -> None:
        events.append(event)

    app = make_app(fake_model, project, agents_dir=agents, bundled=False, store=store)
    outcome = await run_once(app, "lead", "Review the app", events=listen)
    lead, child, lead_again = fake_model.requests
    assert lead.tool_names == ["Read", "Task"]
    listed = lead.tools[1]["description"]
    assert "- reviewer: Reviews code" in listed and "- relay: Passes work on" in listed
    assert "fixer" not in listed and "builder" not in listed  # a read-only lead hands work to readers only
    assert child.system_text == "REVIEWER" and child.tool_names == ["Read", "Grep"]
    assert "Review src/app.py for injection." in child.last_user_text
    [result] = lead_again.tool_results
    match = REPORT.match(result["content"])
    assert match and match["agent"] == "reviewer" and match["status"] == "completed"
    assert result["content"].endswith("SQL injection at src/app.py:4.\n</agent-report>") and not result["is_error"]
    record = store.get(match["run"])
    assert record.parent_id == outcome.run_id and record.agent == "reviewer" and record.status == "completed"
    assert store.get(outcome.run_id).parent_id is None and outcome.report == "The reviewer found one issue."
    assert any(e.message.startswith("turn 1/20: reviewer (review the app) › turn 1/20:") for e in events)


async def test_a_chain_stops_at_depth_three(
    fake_model: FakeMessagesServer, project: Path, agents: Path, tmp_path: Path
) -> None:
    def script(request: RecordedRequest) -> Reply:
        if "Agent" in request.tool_names and not delegated(request):
            return tool_use("Agent", {"description": "pass it on", "prompt": "Go on.", "subagent_type": "relay"})
        return text(f"done with {len(request.tool_names)} tools")

    fake_model.set_script(script)
    store = RunStore(tmp_path / "runs.db")
    outcome = await run_once(make_app(fake_model, project, agents_dir=agents, bundled=False, store=store), "relay", "x")
    offered = [r.tool_names for r in fake_model.requests if not delegated(r)]
    assert offered == [["Read", "Agent"], ["Read", "Agent"], ["Read"]]  # the third run may not delegate
    parents = {r.id: store.get(r.id).parent_id for r in store.list(limit=10)}
    chain = [outcome.run_id]
    while child := next((run for run, parent in parents.items() if parent == chain[-1]), None):
        chain.append(child)
    assert len(chain) == 3 and len(parents) == 3


async def test_a_read_only_run_cannot_hand_work_to_a_writer(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    fake_model.set_script(lambda r: text("ok") if delegated(r) else task("fixer"))
    outcome = await run_once(make_app(fake_model, project, agents_dir=agents, bundled=False), "lead", "Fix it")
    [refused] = fake_model.requests[1].tool_results
    assert refused["is_error"] and "no agent 'fixer' to hand work to" in refused["content"]
    assert len(fake_model.requests) == 2 and outcome.status == "completed"


async def test_a_writing_childs_changes_join_its_parents_diff(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    def script(request: RecordedRequest) -> Reply:
        if request.system_text == "FIXER":
            if delegated(request):
                return text("Fixed.")
            return tool_use("Edit", {"file_path": "notes.txt", "old_string": "draft", "new_string": "final"})
        if not delegated(request):
            return tool_use("Write", {"file_path": "notes.txt", "content": "draft\n"})
        if len([m for m in request.messages if m["role"] == "user"]) == 2:
            return task("fixer", "Make notes.txt final.")
        return text("Built and fixed.")

    fake_model.set_script(script)
    before = tree_hashes(project)
    outcome = await run_once(make_app(fake_model, project, agents_dir=agents, bundled=False), "builder", "Build")
    assert outcome.status == "completed", outcome.error
    assert outcome.diff is not None and "+final" in outcome.diff and "draft" not in outcome.diff
    assert tree_hashes(project) == before  # the user's tree is untouched; the changes are the diff


async def test_what_the_child_spends_counts_against_the_parents_budget(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    def script(request: RecordedRequest) -> Reply:
        if request.system_text == "REVIEWER":
            return text("Long review.", usage={"output_tokens": 95})
        if delegated(request):
            return text("Summary.", usage={"output_tokens": 1})
        return Reply(content=task("reviewer").content, stop_reason="tool_use", usage={"output_tokens": 10})

    fake_model.set_script(script)
    app = make_app(fake_model, project, agents_dir=agents, bundled=False, max_output_tokens=100)
    outcome = await run_once(app, "lead", "Review")
    child = fake_model.requests[1]
    assert child.system_text == "REVIEWER" and child.body["max_tokens"] == 90  # what the lead had left
    assert outcome.status == "budget_exceeded" and "output-token budget reached (106 of 100)" in outcome.report


async def test_a_child_takes_a_run_slot_of_its_own(fake_model: FakeMessagesServer, project: Path, agents: Path) -> None:
    fake_model.set_script(lambda r: text("ok") if delegated(r) else task("reviewer"))
    app = make_app(fake_model, project, agents_dir=agents, bundled=False, max_concurrent_runs=1)
    outcome = await run_once(app, "lead", "Review")
    [refused] = fake_model.requests[1].tool_results
    assert refused["is_error"] and refused["content"].startswith("Not delegated to reviewer: Caller 'local'")
    assert outcome.status == "completed" and app.limiter.in_flight(LOCAL) == 0
