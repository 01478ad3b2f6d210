"""Runs carry their principal, on both stores and across replicas: patterns and their children, continued
runs; the daily budgets (the whole store's, and each caller's) are sums over every replica's runs, read
again between turns, so runs going at once on two replicas share them."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from subagents.app import RunOutcome, Subagents
from subagents.budget import Price, PriceTable
from subagents.history.store import RunNotFoundError, RunStore, store_for
from subagents.orchestration import run_pattern
from subagents.principals import LOCAL, Principal
from subagents.providers.testing import FakeMessagesServer, text, tool_use
from tests.answers import route_json
from tests.conftest import make_app
from tests.history.helpers import OTHER_HOST
from tests.orchestration.helpers import children, plain_agents

pytestmark = pytest.mark.anyio
ALICE, BOB = Principal("alice"), Principal("bob")
# $1 per 1000 input tokens: each turn's price is set by the tokens the fake model reports.
PRICES = PriceTable({"claude-haiku-5-5": Price(input=1000, output=0, cache_write=0, cache_read=0)})


def replica(fake: FakeMessagesServer, project: Path, store: RunStore, **settings: object) -> Subagents:
    return make_app(fake, project, store=store, prices=PRICES, **settings)


async def test_a_pattern_and_its_children_carry_the_callers_principal(
    store_location: str, fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script(lambda request: text("fine"))
    agents = plain_agents(tmp_path / "agents", ["alpha", "bravo"])
    async with store_for(store_location) as store, make_app(fake_model, project, agents_dir=agents, store=store) as app:
        outcome = await run_pattern(app, "fan_out", {"task": "check", "agents": ["alpha", "bravo"]}, principal=ALICE)
        kids = await children(store, outcome.run_id)
        own = [r.principal for r in await store.list(principal="alice")]
        with pytest.raises(RunNotFoundError):
            await store.get(outcome.run_id, principal="bob")
        local = await app.run("alpha", "check", principal=LOCAL)
        local_record = await store.get(local.run_id)
    assert outcome.status == "completed"
    assert [k.principal for k in kids] == ["alice", "alice"]
    assert own == ["alice"] * 3  # the pattern's own run and both children
    assert local_record.principal is None  # the local user's runs are nobody's in particular: it sees all


async def test_a_continued_run_is_the_callers_and_another_principal_cannot_continue_it(
    store_location: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script([text(route_json()), text(route_json())])
    async with store_for(store_location) as store, replica(fake_model, project, store) as app:
        first = await app.run("router", "one", principal=ALICE)
        with pytest.raises(RunNotFoundError) as refused:
            await app.continue_run(first.run_id, "two", principal=BOB)
        with pytest.raises(RunNotFoundError) as unknown:
            await app.continue_run("run_0123456789ab", "two", principal=BOB)
        second = await app.continue_run(first.run_id, "two", principal=ALICE)
        record = await store.get(second.run_id)
    assert str(refused.value).replace(first.run_id, "<id>") == str(unknown.value).replace("run_0123456789ab", "<id>")
    assert (record.principal, record.continued_from) == ("alice", first.run_id)
    assert len(fake_model.requests) == 2


async def test_a_callers_daily_budget_is_summed_over_every_replica_and_binds_only_that_caller(
    store_location: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script(lambda req: text(route_json(), usage={"input_tokens": 1000, "output_tokens": 0}))
    async with (
        store_for(store_location) as store_a,
        store_for(store_location, owner=OTHER_HOST) as store_b,
        replica(fake_model, project, store_a, caller_daily_budget_usd=1.5) as app_a,
        replica(fake_model, project, store_b, caller_daily_budget_usd=1.5) as app_b,
    ):
        first = await app_a.run("router", "a", principal=ALICE)  # $1
        second = await app_b.run("router", "b", principal=ALICE)  # passes $1.5 during the run, on the other replica
        third = await app_a.run("router", "c", principal=ALICE)  # refused before calling the model
        bobs = await app_b.run("router", "d", principal=BOB)
        local = await app_b.run("router", "e", principal=LOCAL)  # the local user is held to --daily-budget only
    assert first.status == "completed" and first.cost_usd == 1.0
    assert second.status == "budget_exceeded"
    assert "caller 'alice''s daily cost budget is reached ($1.50)" in second.report
    assert third.status == "budget_exceeded" and third.report.startswith("Error: Not started: caller 'alice'")
    assert (bobs.status, local.status) == ("completed", "completed")
    assert len(fake_model.requests) == 4


async def test_runs_going_at_once_on_two_replicas_share_the_daily_budget(
    store_location: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    # Every turn costs $0.40 and asks for another, up to the router's 4 turns: $1.60 a run, under the $2 budget
    # alone, $3.20 together.
    fake_model.set_script(
        lambda req: tool_use("Grep", {"pattern": "x"}, usage={"input_tokens": 400, "output_tokens": 0}, latency=0.05)
    )
    outcomes: list[RunOutcome] = []
    async with (
        store_for(store_location) as store_a,
        store_for(store_location, owner=OTHER_HOST) as store_b,
        replica(fake_model, project, store_a, daily_budget_usd=2.0) as app_a,
        replica(fake_model, project, store_b, daily_budget_usd=2.0) as app_b,
        anyio.create_task_group() as tg,
    ):
        for app in (app_a, app_b):

            async def one(app: Subagents = app) -> None:
                outcomes.append(await app.run("router", "go on", principal=ALICE))

            tg.start_soon(one)
    spent = sum(o.cost_usd or 0.0 for o in outcomes)
    assert [o.status for o in outcomes] == ["budget_exceeded"] * 2
    assert all(o.turns >= 2 for o in outcomes)  # both really ran at once
    # Each run stops once the two together reach $2, at most one turn ($0.40) each past it; runs that read the
    # spend only at their start would both complete, $3.20 in all.
    assert 2.0 <= spent <= 2.0 + 2 * 0.4 + 1e-9
