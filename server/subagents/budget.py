"""Usage and cost arithmetic, and the budgets that stop a run.

Prices are USD per million tokens, per model id, as Anthropic published them in October 2026. They are
configurable; a model missing from the table has an unknown cost (None), never a made-up number.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from subagents.errors import ConfigError
from subagents.messages import Usage


class Price(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float = Field(ge=0)  # 5-minute cache writes, the kind this server asks for
    cache_read: float = Field(ge=0)
    # Some models bill a whole request at a higher band once its prompt passes a size.
    long_prompt_tokens: int | None = None
    long_prompt_factor: float = 1.0
    web_search: float = Field(default=10.0, ge=0)  # USD per 1,000 searches; web fetch costs only its tokens

    def cost(self, usage: Usage) -> float:
        prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        factor = self.long_prompt_factor if self.long_prompt_tokens and prompt > self.long_prompt_tokens else 1.0
        total = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_creation_input_tokens * self.cache_write
            + usage.cache_read_input_tokens * self.cache_read
        )
        return total * factor / 1_000_000 + usage.web_search_requests * self.web_search / 1000


DEFAULT_PRICES: Mapping[str, Price] = {
    "claude-fable-5-1": Price(input=10, output=50, cache_write=12.5, cache_read=0.25),
    "claude-opus-5-5": Price(input=4, output=20, cache_write=5, cache_read=0.20),
    "claude-opus-5": Price(input=5, output=25, cache_write=6.25, cache_read=0.50),
    "claude-sonnet-5-5": Price(input=2, output=10, cache_write=2.5, cache_read=0.10),
    "claude-sonnet-5": Price(input=2, output=10, cache_write=2.5, cache_read=0.20),
    "claude-haiku-5-5": Price(
        input=0.10, output=0.50, cache_write=0.125, cache_read=0.01, long_prompt_tokens=100_000, long_prompt_factor=5.0
    ),
    "claude-haiku-4-5": Price(input=1, output=5, cache_write=1.25, cache_read=0.10),
}


class PriceTable:
    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)

    def price(self, model: str) -> Price | None:
        # Dated snapshots (claude-haiku-4-5-20251001) price like their family id.
        if model in self.prices:
            return self.prices[model]
        base = model.rsplit("-", 1)[0]
        return (
            self.prices.get(base) if model.rsplit("-", 1)[-1].isdigit() and len(model.rsplit("-", 1)[-1]) == 8 else None
        )

    def cost(self, model: str, usage: Usage) -> float | None:
        price = self.price(model)
        return None if price is None else price.cost(usage)

    @classmethod
    def from_file(cls, path: Path) -> PriceTable:
        """A JSON object of model id → {input, output, cache_write, cache_read}, merged over the defaults."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            extra = {model: Price.model_validate(p) for model, p in raw.items()}
        except (OSError, json.JSONDecodeError, AttributeError, ValidationError) as exc:
            raise ConfigError(
                f"price file {str(path)!r} is not usable: {exc}. Expected JSON like "
                '{"my-model": {"input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3}}'
            ) from None
        return cls({**DEFAULT_PRICES, **extra})


class RunBudget(BaseModel):
    """Limits for one run. None means no limit."""

    model_config = ConfigDict(frozen=True)

    max_output_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    daily_cost_usd: float | None = Field(default=None, gt=0)
    spent_today_usd: float = 0.0  # known cost of earlier runs today, when a daily budget is set
    # The same for the caller's own runs, on every replica: one budget per authenticated caller.
    caller: str | None = None
    caller_daily_cost_usd: float | None = Field(default=None, gt=0)
    caller_spent_today_usd: float = 0.0


SpentToday = Callable[[str | None], Awaitable[float]]  # today's known cost in the store: all, or one principal's


class BudgetMeter:
    """Adds up what a run spends, turn by turn, and says when a budget is passed.

    A run started for another run (a pattern's child, or a Task child of an agent run) gets the other's
    meter as `parent`. Every turn it takes then counts against the parent's budgets, and so against every
    ancestor's; its allowance and its budget check are its ancestors' too, so no child is ever given more
    than any ancestor has left, and delegating never multiplies a ceiling. `usage` and `cost_usd` stay the
    run's own (what its record keeps, so sums over the store count each turn once); what the runs below it
    spend is kept apart and counts only against its budgets.
    """

    def __init__(
        self, budget: RunBudget, prices: PriceTable, *, parent: BudgetMeter | None = None, shared_by: str = ""
    ) -> None:
        """`shared_by` names who shares this meter's budget, for a child's budget message: "the pattern's runs"."""
        self.budget = budget
        self.prices = prices
        self.parent = parent
        self.shared_by = shared_by or "the run that delegated this work, and the runs it delegates to"
        self.usage = Usage()
        self.cost_usd: float | None = 0.0
        self._below_output_tokens = 0  # what the runs below this one spent
        self._below_cost_usd: float | None = 0.0

    async def refresh(self, spent_today: SpentToday) -> None:
        """Read today's spend of every other run again (at start, and between turns), so the daily budgets
        hold across the runs going at once on every replica: each is one sum in the shared store, which
        holds this run's turns and those of the runs below it too, so what this meter counts is taken off."""
        b, own = self.budget, self.spent_usd or 0.0
        update: dict[str, float] = {}
        if b.daily_cost_usd is not None:
            update["spent_today_usd"] = max(0.0, await spent_today(None) - own)
        if b.caller_daily_cost_usd is not None:
            update["caller_spent_today_usd"] = max(0.0, await spent_today(b.caller) - own)
        if update:
            self.budget = b.model_copy(update=update)

    def add(self, model: str, usage: Usage) -> None:
        self.usage += usage
        cost = self.prices.cost(model, usage)
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost
        if self.parent is not None:
            self.parent._add_below(usage.output_tokens, cost)

    def _add_below(self, output_tokens: int, cost: float | None) -> None:
        self._below_output_tokens += output_tokens
        self._below_cost_usd = None if cost is None or self._below_cost_usd is None else self._below_cost_usd + cost
        if self.parent is not None:
            self.parent._add_below(output_tokens, cost)

    @property
    def output_tokens(self) -> int:
        """Output tokens counted against this meter's budget: its run's and those of the runs below it."""
        return self.usage.output_tokens + self._below_output_tokens

    @property
    def spent_usd(self) -> float | None:
        """USD counted against this meter's budget (None when a model on the way had no price)."""
        if self.cost_usd is None or self._below_cost_usd is None:
            return None
        return self.cost_usd + self._below_cost_usd

    def allowance(self, model: str, wanted: int) -> int:
        """Output tokens the next turn may use: `wanted`, cut so one turn cannot overshoot the output-token
        or cost budget, this meter's or an ancestor's, by more than its last token."""
        allowed = wanted if self.parent is None else self.parent.allowance(model, wanted)
        b = self.budget
        if b.max_output_tokens is not None:
            allowed = min(allowed, b.max_output_tokens - self.output_tokens)
        price = self.prices.price(model)
        left = self._cost_left()
        if price is not None and price.output > 0 and left is not None:
            allowed = min(allowed, int(left / (price.output / 1_000_000)) + 1)
        return max(allowed, 1)

    def _cost_left(self) -> float | None:
        b, spent = self.budget, self.spent_usd
        if spent is None:
            return None
        lefts = []
        if b.max_cost_usd is not None:
            lefts.append(b.max_cost_usd - spent)
        if b.daily_cost_usd is not None:
            lefts.append(b.daily_cost_usd - b.spent_today_usd - spent)
        if b.caller_daily_cost_usd is not None:
            lefts.append(b.caller_daily_cost_usd - b.caller_spent_today_usd - spent)
        return min(lefts) if lefts else None

    def exceeded(self) -> str | None:
        """Why this run may not go on (its budget, or an ancestor's, is spent), or None."""
        for meter in self._ancestors():
            if reason := meter._own_exceeded():
                return f"{reason}, shared by {meter.shared_by}"
        return self._own_exceeded()

    def _ancestors(self) -> list[BudgetMeter]:
        """The meters above this one, the farthest first."""
        chain: list[BudgetMeter] = []
        meter = self.parent
        while meter is not None:
            chain.append(meter)
            meter = meter.parent
        return chain[::-1]

    def _own_exceeded(self) -> str | None:
        b, spent, tokens = self.budget, self.spent_usd, self.output_tokens
        cost_budgets = (b.max_cost_usd, b.daily_cost_usd, b.caller_daily_cost_usd)
        if spent is None and any(limit is not None for limit in cost_budgets):
            # Fail closed: a budget we cannot measure is treated as spent.
            return "the cost budget cannot be enforced: a model of this run has no price in the price table"
        if b.max_output_tokens is not None and tokens >= b.max_output_tokens:
            return f"output-token budget reached ({tokens} of {b.max_output_tokens})"
        if spent is not None and b.max_cost_usd is not None and spent >= b.max_cost_usd:
            return f"cost budget reached (${spent:.4f} of ${b.max_cost_usd:.4f})"
        if spent is not None and b.daily_cost_usd is not None and b.spent_today_usd + spent >= b.daily_cost_usd:
            return f"the server's daily cost budget is reached (${b.daily_cost_usd:.2f})"
        if (
            spent is not None
            and b.caller_daily_cost_usd is not None
            and b.caller_spent_today_usd + spent >= b.caller_daily_cost_usd
        ):
            return f"caller {b.caller!r}'s daily cost budget is reached (${b.caller_daily_cost_usd:.2f})"
        return None
