"""One budget mechanism for every child: a run's meter has its parent's (a pattern's, or a Task caller's) as
`parent`; every turn counts against each ancestor, no child gets more than an ancestor has left, and a
run's own usage stays its own."""

from __future__ import annotations

from subagents.budget import BudgetMeter, Price, PriceTable, RunBudget
from subagents.messages import Usage

PRICES = PriceTable({"m": Price(input=0, output=10, cache_write=0, cache_read=0)})  # $10 per million out


def chain(top: RunBudget, middle: RunBudget, child: RunBudget) -> tuple[BudgetMeter, BudgetMeter, BudgetMeter]:
    pattern = BudgetMeter(top, PRICES, shared_by="the pattern's runs")
    run = BudgetMeter(middle, PRICES, parent=pattern)
    return pattern, run, BudgetMeter(child, PRICES, parent=run)


def test_a_grandchilds_turns_count_against_every_ancestor_but_stay_its_own() -> None:
    pattern, run, child = chain(RunBudget(max_output_tokens=100), RunBudget(), RunBudget())
    run.add("m", Usage(output_tokens=10))
    child.add("m", Usage(output_tokens=50))
    assert (child.usage.output_tokens, run.usage.output_tokens, pattern.usage.output_tokens) == (50, 10, 0)
    assert (child.output_tokens, run.output_tokens, pattern.output_tokens) == (50, 60, 60)
    assert run.cost_usd == 10 * 10 / 1_000_000  # its own turns only: the store sums each turn once


def test_no_child_is_given_more_than_an_ancestor_has_left() -> None:
    pattern, run, child = chain(RunBudget(max_output_tokens=100), RunBudget(max_output_tokens=1000), RunBudget())
    run.add("m", Usage(output_tokens=30))
    assert child.allowance("m", 8192) == 70  # the pattern's 100 - 30, though the run itself has 970 left
    child.add("m", Usage(output_tokens=70))
    assert child.exceeded() == "output-token budget reached (100 of 100), shared by the pattern's runs"
    assert run.exceeded() == child.exceeded() and pattern.exceeded() == "output-token budget reached (100 of 100)"


def test_a_cost_budget_covers_the_chain_and_an_unpriced_child_fails_it_closed() -> None:
    pattern, run, child = chain(RunBudget(), RunBudget(max_cost_usd=0.001), RunBudget())
    child.add("m", Usage(output_tokens=60))  # $0.0006
    assert child.allowance("m", 8192) == 41  # $0.0004 left at $10 a million, plus the last token
    child.add("unpriced", Usage(output_tokens=1))
    reason = child.exceeded()
    assert reason is not None and reason.startswith("the cost budget cannot be enforced")
    assert "shared by the run that delegated this work" in reason
