"""`route`: one router run picks a specialist (or none), then the specialist runs on the rewritten task with the
caller's own task beside it. Anything unusable from the router ends as `none`, never a loop."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from subagents.history.store import RunStore
from subagents.orchestration import DelegationDepthError, run_pattern
from subagents.orchestration.args import PatternInputError
from subagents.providers.testing import FakeMessagesServer, error, text
from tests.conftest import make_app
from tests.orchestration.helpers import Models, children, review_json, route_json

pytestmark = pytest.mark.anyio
REWRITTEN = "Review src/app.py for SQL injection in find()."


async def test_the_router_picks_and_the_specialist_runs(
    fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    models = Models(
        {
            "router": text(route_json("security-reviewer", 0.86, "It asks about injection.", REWRITTEN)),
            "security-reviewer": text(review_json("One injection.")),
        }
    )
    fake_model.set_script(models)
    async with make_app(fake_model, project, store=store) as app:
        outcome = await run_pattern(app, "route", {"task": "is the db code ok?", "files": ["src/app.py"]})
    assert outcome.status == "completed" and outcome.report == review_json("One injection.")
    assert outcome.result["decision"] == {
        "route": "security-reviewer",
        "confidence": 0.86,
        "reason": "It asks about injection.",
        "task": REWRITTEN,
    }
    [router] = models.requests("router")
    assert "- security-reviewer - Read-only security review" in router.last_user_text
    assert "- router -" not in router.last_user_text  # never a candidate for itself
    [specialist] = models.requests("security-reviewer")
    assert f"<task>\n{REWRITTEN}\n</task>" in specialist.last_user_text
    assert "<original-task>\nis the db code ok?\n</original-task>" in specialist.last_user_text
    assert "src/app.py" in specialist.last_user_text
    # Both are real runs, recorded as children of the pattern's own run.
    kids = await children(store, outcome.run_id)
    assert [(c.agent, c.status) for c in kids] == [("router", "completed"), ("security-reviewer", "completed")]
    own = await store.get(outcome.run_id)
    assert own.model == "pattern" and own.status == "completed"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (route_json("router", 0.9), "named itself"),
        (route_json("deploy-bot", 0.9), "'deploy-bot', which is not a candidate"),
        (route_json("none", 0.7, "Too small for a specialist."), "Too small for a specialist."),
        (route_json("security-reviewer", 0.3, "Maybe."), "below 0.5"),
    ],
)
async def test_an_unusable_route_ends_as_none_in_one_router_call(
    fake_model: FakeMessagesServer, project: Path, store: RunStore, answer: str, why: str
) -> None:
    models = Models({"router": text(answer)})
    fake_model.set_script(models)
    async with make_app(fake_model, project, store=store) as app:
        outcome = await run_pattern(app, "route", {"task": "do the thing"})
    assert outcome.status == "completed" and outcome.result["decision"]["route"] == "none"
    assert why in outcome.result["decision"]["reason"] and why in outcome.report
    assert len(fake_model.requests) == 1  # one router call, no specialist, no second try
    assert [c.agent for c in (await children(store, outcome.run_id))] == ["router"]


async def test_prose_from_the_router_ends_as_none(
    fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    fake_model.set_script(Models({"router": text("I think the security reviewer should do it.")}))
    async with make_app(fake_model, project, store=store) as app:
        outcome = await run_pattern(app, "route", {"task": "do the thing"})
    decision = outcome.result["decision"]
    assert decision["route"] == "none" and "not its JSON decision" in decision["reason"]
    # One router run: its one schema retry is the loop's, and then the pattern stops.
    assert [c.agent for c in (await children(store, outcome.run_id))] == ["router"]
    assert len(fake_model.requests) == 2


async def test_candidates_narrow_the_choice(fake_model: FakeMessagesServer, project: Path) -> None:
    models = Models({"router": text(route_json("security-reviewer", 0.9))})
    fake_model.set_script(models)
    async with make_app(fake_model, project) as app:
        outcome = await run_pattern(app, "route", {"task": "x", "candidates": ["test-writer"]})
    assert outcome.result["decision"]["route"] == "none"  # a real agent, but not one the caller offered
    assert "- test-writer -" in models.requests("router")[0].last_user_text
    assert "- security-reviewer -" not in models.requests("router")[0].last_user_text


async def test_a_failing_specialist_fails_the_pattern_with_the_decision_kept(
    fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    fake_model.set_script(
        Models(
            {
                "router": text(route_json("security-reviewer", 0.9)),
                "security-reviewer": error(400, message="prompt is too long"),
            }
        )
    )
    async with make_app(fake_model, project, store=store) as app:
        outcome = await run_pattern(app, "route", {"task": "x"})
    assert outcome.status == "failed" and "prompt is too long" in (outcome.error or "")
    assert outcome.result["decision"]["route"] == "security-reviewer"
    assert (await store.get(outcome.run_id)).status == "failed"


async def test_cancelling_the_pattern_cancels_the_specialist_and_keeps_its_work(
    fake_model: FakeMessagesServer, project: Path, store: RunStore
) -> None:
    fake_model.set_script(
        Models(
            {
                "router": text(route_json("security-reviewer", 0.9)),
                "security-reviewer": text(review_json(), latency=10),
            }
        )
    )
    ids: list[str] = []

    async def started(run_id: str) -> None:
        ids.append(run_id)

    async with make_app(fake_model, project, store=store) as app:
        with anyio.move_on_after(1.5):
            await run_pattern(app, "route", {"task": "x"}, started=started)
    [pattern_id] = ids
    assert (await store.get(pattern_id)).status == "cancelled"
    statuses = {c.agent: c.status for c in (await children(store, pattern_id))}
    assert statuses == {"router": "completed", "security-reviewer": "cancelled"}
    with anyio.fail_after(3):
        while fake_model.disconnects < 1:  # the specialist's model call was stopped, not left running
            await anyio.sleep(0.02)


async def test_the_depth_guard_refuses_before_any_call(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script(Models({"router": text(route_json("security-reviewer", 0.9))}))
    async with make_app(fake_model, project, delegation_depth=2) as app:  # we are already 2 delegations deep
        with pytest.raises(DelegationDepthError, match="limit of 3"):
            await run_pattern(app, "route", {"task": "x"})
    assert fake_model.requests == []


async def test_unknown_candidates_and_arguments_are_clear_errors(project: Path) -> None:
    async with make_app(None, project) as app:
        with pytest.raises(Exception, match="No agent named 'nope'"):
            await run_pattern(app, "route", {"task": "x", "candidates": ["nope"]})
        with pytest.raises(PatternInputError, match="`colour` is not an argument"):
            await run_pattern(app, "route", {"task": "x", "colour": "red"})
        with pytest.raises(PatternInputError, match="`task` is required"):
            await run_pattern(app, "route", {})
