"""Task: a run hands a self-contained job to another loaded agent, which runs as its child.

The child is a run of its own (recorded with `parent_id`, in a run slot of its own), one level deeper; a
run at the depth limit gets no Task tool. It works where its parent works: on the parent's roots, or in
the parent's isolated copy, so its changes join the parent's diff. A read-only parent hands work only to
read-only agents, and what the child spends counts against the parent's budgets: delegating never lifts
a limit the operator set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from subagents.budget import BudgetMeter
from subagents.errors import SubagentsError
from subagents.events import EventSink, RunEvent
from subagents.principals import Principal
from subagents.tools.base import ToolOutput
from subagents.tools.task import Task, report_text
from subagents.tools.workspace import Workspace
from subagents.toolset import Toolset

if TYPE_CHECKING:
    from subagents.app import RunOutcome
    from subagents.definitions.catalog import Catalog
    from subagents.grants import ToolGrant

REPORT_CHARS = 20_000  # a child's report in its parent's context


@dataclass(frozen=True)
class Nesting:
    """Where a run sits in a delegation chain. A call from the client is depth 1 with no parent."""

    parent_id: str | None = None
    depth: int = 1
    roots: tuple[Path, ...] | None = None  # the parent's: its roots, or its isolated copy
    workspace: Workspace | None = None  # the parent's isolated copy, shared with the child
    left: tuple[int | None, float | None] = (None, None)  # output tokens and USD the parent has left


RunDelegated = Callable[..., Awaitable["RunOutcome"]]


class Delegation:
    """The Task tool's work for one parent run: which agents it may hand work to, and the child runs."""

    def __init__(
        self,
        *,
        run_id: str,
        nesting: Nesting,
        grant: ToolGrant,
        toolset: Toolset,
        meter: BudgetMeter,
        events: EventSink,
        principal: Principal,
        client: str | None,
        run_delegated: RunDelegated,
    ) -> None:
        self._run_id, self._nesting, self._grant, self._toolset = run_id, nesting, grant, toolset
        self._meter, self._events, self._principal, self._client = meter, events, principal, client
        self._run_delegated = run_delegated
        self._turn, self._max_turns = 0, 0

    def tool(self, catalog: Catalog, grant_for: Callable[..., ToolGrant]) -> Task:
        """The Task tool, listing the agents this run may hand work to."""
        depth = self._nesting.depth + 1
        agents = []
        for spec in catalog.agents.values():
            child = grant_for(spec, depth=depth)
            if not child.refused and (self._grant.writes or not child.writes):
                agents.append((spec.name, spec.description))
        name = self._grant.delegation or "Task"
        return Task(name, agents, self._delegate)

    async def parent_event(self, event: RunEvent) -> None:
        """The parent's own events, passed on; their turn numbers frame the child's progress lines."""
        self._turn, self._max_turns = event.turn, event.max_turns
        await self._events(event)

    async def _delegate(self, agent: str, prompt: str, description: str) -> ToolOutput:
        tokens, cost = self._meter.left()
        if (tokens is not None and tokens <= 0) or (cost is not None and cost <= 0):
            return ToolOutput(
                text="Not delegated: this run's budget is spent, so a child run cannot start.", is_error=True
            )
        nesting = Nesting(
            parent_id=self._run_id,
            depth=self._nesting.depth + 1,
            roots=self._toolset.roots,
            workspace=self._toolset.workspace,
            left=(tokens, cost),
        )

        async def forward(event: RunEvent) -> None:
            message = f"turn {self._turn}/{self._max_turns}: {agent} ({description[:40]}) › {event.message}"
            await self._events(RunEvent(kind=event.kind, turn=self._turn, max_turns=self._max_turns, message=message))

        try:
            outcome = await self._run_delegated(
                agent, prompt, nesting, events=forward, client=self._client, principal=self._principal
            )
        except SubagentsError as exc:  # no such agent, no free run slot
            return ToolOutput(text=f"Not delegated to {agent}: {exc}", is_error=True)
        self._meter.add_delegated(outcome.usage, outcome.cost_usd)
        text = report_text(outcome.agent, outcome.run_id, outcome.status, outcome.report, REPORT_CHARS)
        return ToolOutput(text=text, is_error=outcome.status == "failed")
