"""Task: a run hands a self-contained job to another loaded agent, which runs as its child.

The child is a run of its own through `Subagents.run`, as a pattern's child is: recorded with `parent_id`,
in a run slot of the parent's principal, one level deeper (depth.py; a run at the depth limit gets no Task
tool), with the parent's meter as its budget's parent, so what it spends counts against the parent's
budgets and every ancestor's and it is never given more than they have left. It works where its parent
works: on the parent's roots, or in the parent's isolated copy, so its changes join the parent's diff. A
read-only parent hands work only to read-only agents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from subagents.budget import BudgetMeter
from subagents.errors import SubagentsError
from subagents.events import EventSink, RunEvent
from subagents.principals import Principal
from subagents.tools.base import ToolOutput
from subagents.tools.task import Task, report_text
from subagents.toolset import Toolset

if TYPE_CHECKING:
    from subagents.app import Subagents
    from subagents.grants import ToolGrant

REPORT_CHARS = 20_000  # a child's report in its parent's context


class Delegation:
    """The Task tool's work for one parent run: which agents it may hand work to, and the child runs."""

    def __init__(
        self,
        app: Subagents,
        *,
        run_id: str,
        depth: int,
        grant: ToolGrant,
        toolset: Toolset,
        meter: BudgetMeter,
        events: EventSink,
        principal: Principal,
        client: str | None,
    ) -> None:
        self._app, self._run_id, self._depth, self._grant, self._toolset = app, run_id, depth, grant, toolset
        self._meter, self._events, self._principal, self._client = meter, events, principal, client
        self._turn, self._max_turns = 0, 0

    def tool(self) -> Task:
        """The Task tool, listing the agents this run may hand work to."""
        agents = []
        for spec in self._app.catalog.agents.values():
            child = self._app.grant(spec, depth=self._depth + 1)
            if not child.refused and (self._grant.writes or not child.writes):
                agents.append((spec.name, spec.description))
        return Task(self._grant.delegation or "Task", agents, self._delegate)

    async def parent_event(self, event: RunEvent) -> None:
        """The parent's own events, passed on; their turn numbers frame the child's progress lines."""
        self._turn, self._max_turns = event.turn, event.max_turns
        await self._events(event)

    async def _delegate(self, agent: str, prompt: str, description: str) -> ToolOutput:
        if reason := self._meter.exceeded():
            return ToolOutput(text=f"Not delegated: {reason}, so a child run cannot start.", is_error=True)

        async def forward(event: RunEvent) -> None:
            message = f"turn {self._turn}/{self._max_turns}: {agent} ({description[:40]}) › {event.message}"
            await self._events(RunEvent(kind=event.kind, turn=self._turn, max_turns=self._max_turns, message=message))

        try:
            outcome = await self._app.run(
                agent,
                prompt,
                events=forward,
                roots=self._toolset.roots,
                client=self._client,
                principal=self._principal,
                parent_id=self._run_id,
                shared_meter=self._meter,
                depth=self._depth + 1,
                workspace=self._toolset.workspace,
            )
        except SubagentsError as exc:  # no such agent, no free run slot
            return ToolOutput(text=f"Not delegated to {agent}: {exc}", is_error=True)
        text = report_text(outcome.agent, outcome.run_id, outcome.status, outcome.report, REPORT_CHARS)
        return ToolOutput(text=text, is_error=outcome.status == "failed")
