"""Agent runs on the Claude Code backend: the real CLI, its own tools, our confinement, our run store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from subagents.events import RunEvent
from subagents.history.store import RunStore
from subagents.messages import ToolUseBlock
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text, tool_use
from tests.conftest import write_agent

from .conftest import all_results, claude_app, tool_calls

pytestmark = [pytest.mark.claude_code, pytest.mark.anyio]

SECRET_OUTSIDE = "TOP-SECRET-OUTSIDE-THE-ROOT"
ENV_SECRET = "ENV-SECRET-VALUE-42"


def quoting_script(*calls: tuple[str, dict[str, object]]) -> object:
    """Claude Code's model: make `calls` one per turn, then answer with every tool result it got, quoted."""

    def script(request: RecordedRequest) -> Reply:
        if "Read" not in request.tool_names:
            return text("ok")  # anything else Claude Code asks on its own
        done = len(tool_calls(request))
        if done < len(calls):
            return tool_use(*calls[done])
        return text("RESULTS " + json.dumps(all_results(request)))

    return script


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET_OUTSIDE + "\n")
    return secret


async def test_security_reviewer_reads_inside_the_root_and_is_refused_outside(
    claude_fake: FakeMessagesServer, project: Path, outside: Path, store: RunStore
) -> None:
    claude_fake.set_script(
        quoting_script(("Read", {"file_path": str(project / "src/app.py")}), ("Read", {"file_path": str(outside)}))
    )
    events: list[RunEvent] = []

    async def sink(event: RunEvent) -> None:
        events.append(event)

    async with claude_app(project, bundled=True, store=store) as app:
        outcome = await app.run("security-reviewer", "Review src/app.py", events=sink)

    assert outcome.status == "completed", outcome.error
    inside, refused = json.loads(outcome.report.removeprefix("RESULTS "))
    # Claude Code's own Read fetched the file inside the root, and the report carries its content.
    assert "SELECT * FROM users WHERE name" in inside["content"] and not inside["is_error"]
    # The Read outside the root was refused by our sandbox, and its content never reached the model.
    assert refused["is_error"] and "outside the allowed roots" in refused["content"]
    assert not any(SECRET_OUTSIDE in json.dumps(r.body) for r in claude_fake.requests)
    # Claude Code ran the agent as written: its prompt, its tools (LS is Glob there), its model.
    first = next(r for r in claude_fake.requests if "Read" in r.tool_names)
    spec = app.agent("security-reviewer")
    assert spec.prompt.strip()[:200] in first.system_text
    assert sorted(first.tool_names) == ["Glob", "Grep", "Read"]
    assert first.model == outcome.model == "claude-sonnet-5-5"
    # Usage, turns, transcript, backend and billing are in the run store like any other run.
    record = await store.get(outcome.run_id)
    assert (record.backend, outcome.backend) == ("claude-code", "claude-code")
    assert record.billed_to == outcome.billed_to and "ANTHROPIC_API_KEY" in (record.billed_to or "")
    assert record.turns == outcome.turns == 3 and record.usage.output_tokens > 0
    assert record.report == outcome.report
    reads = [b for m in record.transcript for b in m.content if isinstance(b, ToolUseBlock)]
    assert [b.input["file_path"] for b in reads] == [str(project / "src/app.py"), str(outside)]
    # Progress, as on the API backend.
    messages = [e.message for e in events]
    assert messages[0] == "turn 1/20: security-reviewer is thinking"
    assert messages[1].startswith('turn 1/20: Read "/') and messages[2] == "turn 2/20: security-reviewer is thinking"


async def test_secrets_inside_the_root_stay_out_of_reads_and_searches(
    claude_fake: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    (project / ".env").write_text(f"TOKEN={ENV_SECRET}\n")
    (project / "config").mkdir()
    (project / "config" / "Prod.PEM").write_text(f"{ENV_SECRET}\n")
    claude_fake.set_script(
        quoting_script(
            ("Read", {"file_path": ".env"}),
            ("Grep", {"pattern": "ENV-SECRET", "output_mode": "content"}),
            ("Glob", {"pattern": "/etc/*"}),
            ("Grep", {"pattern": "root", "path": "/etc"}),
        )
    )
    write_agent(tmp_path / "agents", "reviewer.md", "name: reviewer\ndescription: reads\ntools: Read, Grep, Glob")
    async with claude_app(project, agents_dir=tmp_path / "agents") as app:
        outcome = await app.run("reviewer", "Look around")

    assert outcome.status == "completed", outcome.error
    env, grep, glob, grep_etc = json.loads(outcome.report.removeprefix("RESULTS "))
    # Claude Code's own permission rules (ours, from the deny-list) refuse it before our hook has to.
    assert env["is_error"] and "denied by your permission settings" in env["content"]
    assert ENV_SECRET not in grep["content"]
    assert glob["is_error"] and "reaches outside" in glob["content"]
    assert grep_etc["is_error"] and "outside the allowed roots" in grep_etc["content"]
    assert not any(ENV_SECRET in json.dumps(r.body) for r in claude_fake.requests)


async def test_a_writing_agent_works_in_an_isolated_copy_and_returns_a_diff(
    claude_fake: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    before = files(project)
    claude_fake.set_script(
        quoting_script(
            ("Read", {"file_path": "src/app.py"}),
            ("Edit", {"file_path": "src/app.py", "old_string": "import sqlite3", "new_string": "import sqlite3  # ok"}),
            ("Write", {"file_path": "tests/test_new.py", "content": "def test_x():\n    assert True\n"}),
            ("Write", {"file_path": str(project / "src" / "planted.py"), "content": "print('escaped')\n"}),
        )
    )
    write_agent(tmp_path / "agents", "writer.md", "name: writer\ndescription: writes\ntools: Read, Write, Edit, Bash")
    async with claude_app(project, agents_dir=tmp_path / "agents") as app:
        outcome = await app.run("writer", "Add a test")

    assert outcome.status == "completed", outcome.error
    _read, edit, write, planted = json.loads(outcome.report.removeprefix("RESULTS "))
    assert not edit["is_error"] and not write["is_error"], (edit, write)
    assert planted["is_error"] and "outside the allowed roots" in planted["content"]
    assert outcome.diff is not None
    assert "+import sqlite3  # ok" in outcome.diff and "+++ b/tests/test_new.py" in outcome.diff
    assert "planted" not in outcome.diff
    # The user's tree is untouched, byte for byte.
    assert files(project) == before
    # Bash is not given to a Claude Code session: it would run outside our bubblewrap sandbox.
    first = next(r for r in claude_fake.requests if "Read" in r.tool_names)
    assert sorted(first.tool_names) == ["Edit", "Read", "Write"]


async def test_a_failing_model_ends_the_run_failed_with_the_reason(
    claude_fake: FakeMessagesServer, project: Path, tmp_path: Path, store: RunStore
) -> None:
    from subagents.providers.testing import error

    claude_fake.set_script(lambda request: error(401, message="invalid x-api-key"))
    write_agent(tmp_path / "agents", "reviewer.md", "name: reviewer\ndescription: reads\ntools: Read")
    async with claude_app(project, agents_dir=tmp_path / "agents", store=store) as app:
        outcome = await app.run("reviewer", "Look around")

    assert outcome.status == "failed" and outcome.error_kind == "auth", outcome
    assert (await store.get(outcome.run_id)).status == "failed"


async def test_a_run_over_its_budget_is_stopped_with_its_partial_report(
    claude_fake: FakeMessagesServer, project: Path, tmp_path: Path, store: RunStore
) -> None:
    usage = {"input_tokens": 10, "output_tokens": 500}

    def script(request: RecordedRequest) -> Reply:
        if "Read" not in request.tool_names:
            return text("ok")
        return tool_use("Read", {"file_path": "README.md"}, preamble="Looking at the readme.", usage=usage)

    claude_fake.set_script(script)
    write_agent(tmp_path / "agents", "reviewer.md", "name: reviewer\ndescription: reads\ntools: Read")
    async with claude_app(project, agents_dir=tmp_path / "agents", store=store, max_output_tokens=1000) as app:
        outcome = await app.run("reviewer", "Read forever")

    assert outcome.status == "budget_exceeded", outcome
    assert outcome.report.startswith("Looking at the readme.") and "partial" in outcome.report
    assert 1000 <= outcome.usage.output_tokens < 2000  # stopped at the turn that crossed the budget
    assert (await store.get(outcome.run_id)).status == "budget_exceeded"
