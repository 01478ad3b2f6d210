"""`debate`: proposer, independent critic, revision, then the blind judge's verdict with scores."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from subagents.history.store import RunStore
from subagents.orchestration import run_pattern
from subagents.orchestration.args import PatternInputError
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, error, text
from tests.conftest import make_app
from tests.orchestration.helpers import Models, children, verdict_json

pytestmark = pytest.mark.anyio
QUESTION = "Should find() use a parameterised query?"


def numbered(prefix: str) -> object:
    count = {"n": 0}

    def answer(_request: RecordedRequest) -> Reply:
        count["n"] += 1
        return text(f"{prefix} {count['n']}: yes, because src/app.py:4 interpolates name.")

    return answer


async def test_a_round_is_critique_then_revision_then_a_blind_verdict(
    fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    models = Models(
        {
            "debate-proposer": numbered("Proposal"),
            "debate-critic": numbered("Critique"),
            "debate-judge": lambda request: text(verdict_json(_label_of("Proposal 2", request), "AB")),
        }
    )
    fake_model.set_script(models)
    async with make_app(fake_model, project, store=store) as app:
        outcome = await run_pattern(app, "debate", {"question": QUESTION, "files": ["src/app.py"]})
    assert outcome.status == "completed"
    assert [c.role for c in outcome.children] == ["proposer 1", "critic 1", "proposer 2", "judge"]
    [critic] = models.requests("debate-critic")
    assert "<proposal>\nProposal 1:" in critic.last_user_text
    assert "a position to test, not an answer to agree with" in critic.last_user_text
    first, revision = models.requests("debate-proposer")
    assert "<critique>" not in first.last_user_text
    assert "<your-previous-position>\nProposal 1:" in revision.last_user_text
    assert "<critique>\nCritique 1:" in revision.last_user_text
    assert QUESTION in revision.last_user_text  # the question restated at every step
    [judged] = models.requests("debate-judge")
    seen = json.dumps(judged.messages)
    assert "Proposal 2" in seen and "Critique 1" in seen and "Proposal 1" not in seen
    for name in ("debate-proposer", "debate-critic", "claude-sonnet-5-5"):
        assert name not in seen
    assert outcome.result["winner"] == "proposer" and outcome.result["verdict"]["decisive_factor"] == "Evidence."
    assert [s["label"] for s in outcome.result["verdict"]["scores"]] == ["A", "B"]
    assert outcome.report.startswith("Verdict: the proposer's position.") and "Proposal 2" in outcome.report


def _label_of(marker: str, request: RecordedRequest) -> str:
    """The label under which the judge was shown the position containing `marker`."""
    body = request.last_user_text
    for label in "AB":
        start = body.index(f'<position label="{label}">')
        if marker in body[start : body.index("</position>", start)]:
            return label
    raise AssertionError(f"{marker!r} not shown")


async def test_rounds_repeat_critique_and_revision(fake_model: FakeMessagesServer, project: Path) -> None:
    models = Models(
        {
            "debate-proposer": numbered("Proposal"),
            "debate-critic": numbered("Critique"),
            "debate-judge": text(verdict_json("NEITHER")),
        }
    )
    fake_model.set_script(models)
    async with make_app(fake_model, project) as app:
        outcome = await run_pattern(app, "debate", {"question": QUESTION, "rounds": 2})
    assert len(models.requests("debate-proposer")) == 3 and len(models.requests("debate-critic")) == 2
    assert "<proposal>\nProposal 2:" in models.requests("debate-critic")[1].last_user_text
    assert outcome.result["winner"] == "NEITHER" and outcome.report.startswith("Verdict: NEITHER")


async def test_a_failing_critic_stops_the_debate_with_the_proposal_kept(
    fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    models = Models({"debate-proposer": numbered("Proposal"), "debate-critic": error(400, message="critic broke")})
    fake_model.set_script(models)
    async with make_app(fake_model, project, store=store) as app:
        outcome = await run_pattern(app, "debate", {"question": QUESTION})
    assert outcome.status == "failed" and "critic in round 1" in (outcome.error or "")
    assert "Proposal 1" in outcome.report and models.requests("debate-judge") == []
    assert (await store.get(outcome.run_id)).status == "failed"


async def test_cancelling_mid_debate_records_every_step(
    fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    fake_model.set_script(Models({"debate-proposer": numbered("Proposal"), "debate-critic": text("never", latency=10)}))
    ids: list[str] = []

    async def started(run_id: str) -> None:
        ids.append(run_id)

    async with make_app(fake_model, project, store=store) as app:
        with anyio.move_on_after(1.5):
            await run_pattern(app, "debate", {"question": QUESTION}, started=started)
    [pattern_id] = ids
    assert (await store.get(pattern_id)).status == "cancelled"
    assert [(c.agent, c.status) for c in (await children(store, pattern_id))] == [
        ("debate-proposer", "completed"),
        ("debate-critic", "cancelled"),
    ]
    summary = json.loads((await store.get(pattern_id)).transcript[-1].text)
    assert summary["result"]["cut_off"][0]["role"] == "critic 1"


async def test_rounds_have_a_ceiling(project: Path) -> None:
    async with make_app(None, project) as app:
        with pytest.raises(PatternInputError, match="`rounds`: Input should be less than or equal to 3"):
            await run_pattern(app, "debate", {"question": QUESTION, "rounds": 4})
