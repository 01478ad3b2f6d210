"""TodoWrite: the run's own checklist, shown back to the model and kept in the transcript."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from subagents.history.store import RunStore
from subagents.providers.testing import FakeMessagesServer, text, tool_use
from subagents.tools.todo import MAX_TODOS, TodoWrite
from tests.conftest import make_app, run_once, write_agent

pytestmark = pytest.mark.anyio


def todo(content: str, status: str) -> dict[str, str]:
    return {"content": content, "status": status, "activeForm": f"Doing: {content}"}


async def test_the_checklist_comes_back_to_the_model_and_stays_in_the_transcript(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path, store: RunStore
) -> None:
    write_agent(tmp_path / "agents", "planner.md", "name: planner\ndescription: Plans.\ntools: Read, TodoWrite")
    first = [todo("Read src/app.py", "in_progress"), todo("Write the report", "pending")]
    second = [todo("Read src/app.py", "completed"), todo("Write the report", "in_progress")]
    fake_model.set_script(
        [tool_use("TodoWrite", {"todos": first}), tool_use("TodoWrite", {"todos": second}), text("Report.")]
    )
    app = make_app(fake_model, project, agents_dir=tmp_path / "agents", bundled=False, store=store)
    outcome = await run_once(app, "planner", "Plan the review")
    assert fake_model.requests[0].tool_names == ["Read", "TodoWrite"]
    assert fake_model.requests[2].tool_results[0] == {
        "tool_use_id": fake_model.requests[2].tool_results[0]["tool_use_id"],
        "content": "Checklist updated (1 of 2 done):\n[x] Read src/app.py\n[~] Write the report",
        "is_error": False,
    }
    assert outcome.status == "completed"
    transcript = (await store.get(outcome.run_id)).transcript
    calls = [b for m in transcript for b in m.tool_uses if b.name == "TodoWrite"]
    assert [c.input["todos"] for c in calls] == [first, second]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"todos": "do it"}, "todos must be a list"),
        ({"todos": [todo("x", "done")]}, "status must be one of pending, in_progress, completed"),
        ({"todos": [{"content": "x", "status": "pending"}]}, "item 1 needs activeForm"),
        ({"todos": [{**todo("x", "pending"), "priority": "high"}]}, "exactly content, status and activeForm"),
        ({"todos": [todo("x", "pending")] * (MAX_TODOS + 1)}, f"keep it to {MAX_TODOS}"),
        ({"todos": [todo("x" * 501, "pending")]}, "keep it under 500"),
        ({}, "it takes one argument, todos"),
    ],
)
async def test_a_bad_list_is_refused_and_the_last_one_kept(args: dict[str, Any], reason: str) -> None:
    tool = TodoWrite()
    await tool.run({"todos": [todo("keep me", "pending")]})
    out = await tool.run(args)
    assert out.is_error and reason in out.text
    assert tool.todos == [todo("keep me", "pending")]


async def test_several_items_in_progress_get_a_nudge_and_an_empty_list_clears() -> None:
    tool = TodoWrite()
    out = await tool.run({"todos": [todo("a", "in_progress"), todo("b", "in_progress")]})
    assert out.text.endswith("Note: several items are in_progress; finish one before starting the next.")
    assert (await tool.run({"todos": []})).text == "Checklist cleared."
