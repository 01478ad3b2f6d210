"""What every pattern shares: its children (real subagent runs), the budget meter they share, progress,
and the shape of its result."""

from __future__ import annotations

import html
import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict

from subagents.app import RunOutcome
from subagents.budget import BudgetMeter, RunBudget
from subagents.definitions.spec import AgentSpec
from subagents.events import EventSink, RunEvent
from subagents.jobs import StartedSink
from subagents.messages import Usage
from subagents.principals import LOCAL, Principal

if TYPE_CHECKING:
    from subagents.app import Subagents

log = logging.getLogger(__name__)

PATTERN_MODEL = "pattern"  # the `model` of a pattern's own run record: it calls no model itself
PatternStatus = Literal["completed", "failed", "cancelled", "budget_exceeded"]


class ChildRun(BaseModel):
    """One child of a pattern: which part it played, and how its run ended."""

    model_config = ConfigDict(frozen=True)

    role: str  # candidate, router, specialist, proposer 1, critic 1, judge, stage 2, junior 1, grader 1, senior
    outcome: RunOutcome


class PatternOutcome(BaseModel):
    """A pattern's whole result: status, the answer, the pattern's own fields, and each child's part."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    pattern: str
    status: PatternStatus
    report: str  # the answer (for route, the specialist's report; for fan_out with a judge, the winner's)
    result: dict[str, Any] = {}  # the pattern's own fields: decision, verdict, labels, answered_by, failed, ...
    children: tuple[ChildRun, ...] = ()
    main_run_id: str | None = None  # the child whose report is `report`, so a result need not repeat it
    error: str | None = None
    error_kind: str | None = None
    warnings: tuple[str, ...] = ()
    parent_id: str | None = None

    @property
    def usage(self) -> Usage:
        total = Usage()
        for child in self.children:
            total += child.outcome.usage
        return total

    @property
    def cost_usd(self) -> float | None:
        costs = [child.outcome.cost_usd for child in self.children]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)


@dataclass
class Body:
    """What a pattern's own logic returns; the runner records it."""

    status: PatternStatus
    report: str
    result: dict[str, Any] = field(default_factory=dict)
    main_run_id: str | None = None
    error: str | None = None
    error_kind: str | None = None
    warnings: list[str] = field(default_factory=list)


class PatternRun:
    """One pattern in flight. Its children are real runs, recorded as children of the pattern's run, each
    with its own context; they share one budget meter and one concurrency limit."""

    def __init__(
        self,
        app: Subagents,
        pattern: str,
        run_id: str,
        *,
        events: EventSink,
        roots: Sequence[Path] | None,
        client: str | None,
        depth: int,
        planned: int,
        rng: random.Random,
        parent_meter: BudgetMeter | None = None,
        principal: Principal = LOCAL,
    ) -> None:
        s = app.settings
        self.principal = principal
        self.app = app
        self.pattern = pattern
        self.run_id = run_id
        self.depth = depth
        self.rng = rng
        self.roots = roots
        self.client = client
        # The operator's per-run budget covers the whole pattern: every child's turns count against it.
        budget = RunBudget(max_output_tokens=s.max_output_tokens, max_cost_usd=s.max_cost_usd)
        self.meter = BudgetMeter(budget, app.prices, parent=parent_meter, shared_by="the pattern's runs")
        self.limiter = anyio.CapacityLimiter(s.pattern_concurrency)
        self.children: list[ChildRun] = []
        self.started: dict[str, tuple[str, str]] = {}  # run_id -> (role, agent), for children in flight
        self.planned = planned
        self.headline: Callable[[], str] | None = None  # a pattern's own progress line, put before its children's
        self._events = events

    @property
    def done(self) -> int:
        return len(self.children)

    async def child(
        self,
        agent: str | AgentSpec,
        role: str,
        task: str,
        *,
        context: str | None = None,
        files: Sequence[str] = (),
        on_start: StartedSink | None = None,
    ) -> RunOutcome:
        """Run one child to its end (`on_start` hears its run id). It never raises but for cancellation: a child
        that breaks in an unexpected way comes back as a failed outcome, so it cannot sink its siblings."""
        spec = agent if isinstance(agent, AgentSpec) else self.app.agent(agent)

        async def started(run_id: str) -> None:
            self.started[run_id] = (role, spec.name)
            if on_start is not None:
                await on_start(run_id)

        async def relay(event: RunEvent) -> None:
            message = f"{self.pattern} {role} ({spec.name}): {event.message}"
            if self.headline is not None:  # the pattern's own state first: `team: 7/12 done, 3 running · …`
                message = f"{self.pattern}: {self.headline()} · {role} ({spec.name}): {event.message}"
            await self._events(RunEvent(kind=event.kind, turn=self.done, max_turns=self.planned, message=message))

        async with self.limiter:
            try:
                outcome = await self.app.run(
                    spec,
                    task,
                    context=context,
                    files=files,
                    events=relay,
                    roots=self.roots,
                    started=started,
                    client=self.client,
                    parent_id=self.run_id,
                    shared_meter=self.meter,
                    principal=self.principal,
                    depth=self.depth + 1,
                )
            except Exception as exc:
                log.exception("%s: child %s (%s) broke", self.pattern, role, spec.name)
                outcome = _broken(spec.name, self.run_id, exc)
        self.children.append(ChildRun(role=role, outcome=outcome))
        if self.headline is None:
            done = f"{self.pattern}: {role} ({spec.name}) {outcome.status}, {self.done}/{self.planned} done"
            await self.say(done)
        return outcome

    async def say(self, message: str) -> None:
        """A progress message of the pattern's own (`team: 7/12 done, 3 running`)."""
        await self._events(RunEvent(kind="finished", turn=self.done, max_turns=self.planned, message=message))

    def in_flight(self) -> list[tuple[str, str, str]]:
        """(run_id, role, agent) of children started but not finished: on cancellation, these were cut off."""
        finished = {c.outcome.run_id for c in self.children}
        return [(run_id, role, agent) for run_id, (role, agent) in self.started.items() if run_id not in finished]


def _broken(agent: str, parent_id: str, exc: Exception) -> RunOutcome:
    message = f"The run could not be carried out: {type(exc).__name__}: {exc}"
    return RunOutcome(
        run_id="",
        agent=agent,
        model="",
        status="failed",
        report=f"Error: {message}",
        error=message,
        error_kind="internal",
        parent_id=parent_id,
    )


def failed_children(children: Sequence[ChildRun]) -> list[dict[str, Any]]:
    """What failed and why, for a result: role, agent, run id, status, error."""
    return [
        {
            "role": c.role,
            "agent": c.outcome.agent,
            "run_id": c.outcome.run_id,
            "status": c.outcome.status,
            "error": c.outcome.error,
        }
        for c in children
        if c.outcome.status != "completed"
    ]


def fenced(tag: str, text: str, **attrs: str | int) -> str:
    """`text` as data inside <tag>…</tag>. What one agent wrote is hostile input to the next: any such tag
    inside it is defused, so it can neither close its own fence nor open a block that poses as ours."""
    body = re.sub(rf"<(\s*/?\s*{re.escape(tag)})", r"&lt;\1", text.strip(), flags=re.IGNORECASE)
    shown = "".join(f' {k.replace("_", "-")}="{html.escape(str(v))}"' for k, v in attrs.items())
    return f"<{tag}{shown}>\n{body}\n</{tag}>"


def restated(task: str, heading: str = "original-task") -> str:
    """The caller's task, restated word for word beside a rewritten or partial one (no telephone game)."""
    return fenced(heading, task)


def joined(*parts: str | None) -> str | None:
    """Context parts joined by blank lines; None when every part is empty."""
    kept = [p.strip() for p in parts if p and p.strip()]
    return "\n\n".join(kept) or None
