"""`escalate`: the junior tries, a cheap grader scores each attempt and its feedback goes to the next one; the
senior takes over after the last failure."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from subagents.history.store import RunStore
from subagents.orchestration import run_pattern
from subagents.orchestration.args import PatternInputError
from subagents.providers.testing import FakeMessagesServer, text
from tests.answers import grade_json
from tests.conftest import make_app
from tests.orchestration.helpers import Models, children, plain_agents

pytestmark = pytest.mark.anyio
TASK = "Explain what find() in src/app.py returns."
RUBRIC = "Names the return type and cites src/app.py:4."


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    plain_agents(tmp_path / "agents", ["junior"], model="haiku")
    return plain_agents(tmp_path / "agents", ["senior"], model="opus")


async def test_the_junior_passes_on_its_second_attempt_with_the_feedback(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    models = Models(
        {
            "junior": [text("It returns rows."), text("A cursor, from src/app.py:4.")],
            "rubric-grader": [
                text(grade_json(False, 3, "Name the type and cite the line.")),
                text(grade_json(True, 9)),
            ],
        }
    )
    fake_model.set_script(models)
    arguments = {"task": TASK, "junior": "junior", "senior": "senior", "rubric": RUBRIC}
    async with make_app(fake_model, project, agents_dir=agents, store=store) as app:
        outcome = await run_pattern(app, "escalate", arguments)
    assert outcome.status == "completed" and outcome.report == "A cursor, from src/app.py:4."
    assert outcome.result["answered_by"] == "junior" and "attempt 2 (score 9/10)" in outcome.result["why"]
    first, second = models.requests("junior")
    assert "<previous-attempt>" not in first.last_user_text and RUBRIC in first.last_user_text
    assert "<previous-attempt>\nIt returns rows." in second.last_user_text
    assert "<grader-feedback>\nName the type and cite the line." in second.last_user_text
    graded = models.requests("rubric-grader")[0]
    assert graded.model == "claude-haiku-5-5"  # the cheap judge
    assert f"<rubric>\n{RUBRIC}" in graded.last_user_text and "<answer>\nIt returns rows." in graded.last_user_text
    assert graded.output_schema is not None and graded.output_schema["required"] == ["pass", "score", "feedback"]
    assert models.requests("senior") == []
    assert [a["passed"] for a in outcome.result["attempts"]] == [False, True]


async def test_the_senior_takes_over_after_the_last_failure(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    models = Models(
        {
            "junior": text("Not sure."),
            "rubric-grader": text(grade_json(False, 2, "Cite the line.")),
            "senior": text("A sqlite3 cursor (src/app.py:4)."),
        }
    )
    fake_model.set_script(models)
    arguments = {"task": TASK, "junior": "junior", "senior": "senior", "attempts": 2}
    async with make_app(fake_model, project, agents_dir=agents) as app:
        outcome = await run_pattern(app, "escalate", arguments)
    assert outcome.status == "completed" and outcome.report == "A sqlite3 cursor (src/app.py:4)."
    assert outcome.result["answered_by"] == "senior"
    assert "failed 2 attempt(s); the senior (senior) took over" in outcome.result["why"]
    assert len(models.requests("junior")) == 2 and len(models.requests("rubric-grader")) == 2
    [senior] = models.requests("senior")
    assert senior.model == "claude-opus-5-5" and "Cite the line." in senior.last_user_text


async def test_a_grader_that_cannot_grade_fails_the_attempt(
    fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    models = Models(
        {"junior": text("Answer."), "rubric-grader": text("Looks great!"), "senior": text("Senior answer.")}
    )
    fake_model.set_script(models)
    arguments = {"task": TASK, "junior": "junior", "senior": "senior", "attempts": 1}
    async with make_app(fake_model, project, agents_dir=agents) as app:
        outcome = await run_pattern(app, "escalate", arguments)
    assert outcome.result["answered_by"] == "senior"  # no usable grade: escalation is the safe side
    assert "could not grade" in outcome.result["attempts"][0]["feedback"]
    assert any("rubric-grader" in w and "output schema" in w for w in outcome.warnings)


async def test_cancelling_an_escalation_records_its_steps(
    fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    fake_model.set_script(Models({"junior": text("Answer."), "rubric-grader": text(grade_json(True), latency=10)}))
    ids: list[str] = []

    async def started(run_id: str) -> None:
        ids.append(run_id)

    arguments = {"task": TASK, "junior": "junior", "senior": "senior"}
    async with make_app(fake_model, project, agents_dir=agents, store=store) as app:
        with anyio.move_on_after(1.5):
            await run_pattern(app, "escalate", arguments, started=started)
    [pattern_id] = ids
    assert (await store.get(pattern_id)).status == "cancelled"
    assert [(c.agent, c.status) for c in (await children(store, pattern_id))] == [
        ("junior", "completed"),
        ("rubric-grader", "cancelled"),
    ]


async def test_attempts_have_a_ceiling(project: Path, agents: Path) -> None:
    async with make_app(None, project, agents_dir=agents) as app:
        with pytest.raises(PatternInputError, match="`attempts`: Input should be less than or equal to 5"):
            await run_pattern(app, "escalate", {"task": TASK, "junior": "junior", "senior": "senior", "attempts": 6})
