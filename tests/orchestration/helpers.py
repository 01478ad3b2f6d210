"""Scripting the fake model for patterns: answers chosen by which agent is asking (its system prompt)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from subagents.history.store import RunStore, RunSummary
from subagents.providers.testing import RecordedRequest, Reply, error, text
from tests.answers import review_json, route_json, verdict_json
from tests.conftest import write_agent

Answer = Reply | Callable[[RecordedRequest], Reply]

# How each agent's system prompt begins: the fake tells agents apart by it.
PROMPTS = {
    "router": "You are a router.",
    "debate-judge": "You are an impartial judge.",
    "security-reviewer": "You are a senior application-security engineer",
    "test-writer": "You are a senior engineer who writes small",
    "debate-proposer": "You are the proposer",
    "debate-critic": "You are the critic",
    "rubric-grader": "You are a strict grader.",
}


def agent_of(request: RecordedRequest) -> str:
    system = request.system_text
    for name, start in PROMPTS.items():
        if system.startswith(start):
            return name
    if system.startswith("You are agent ") and "." in system:
        return system.removeprefix("You are agent ").split(".", 1)[0]
    return "unknown"


class Models:
    """A script that answers each agent from its own list (in order, the last one repeating) or function,
    and keeps which agent asked what, in order."""

    def __init__(self, answers: dict[str, Answer | Sequence[Answer]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, RecordedRequest]] = []
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}

    def __call__(self, request: RecordedRequest) -> Reply:
        agent = agent_of(request)
        with self._lock:
            self.calls.append((agent, request))
            index = self._count.get(agent, 0)
            self._count[agent] = index + 1
        answer = self.answers.get(agent, self.answers.get("*"))
        if answer is None:
            return error(500, message=f"no answer scripted for {agent}", should_retry=False)
        if isinstance(answer, Sequence) and not isinstance(answer, Reply):
            answer = answer[min(index, len(answer) - 1)]
        return answer(request) if callable(answer) else answer

    def requests(self, agent: str) -> list[RecordedRequest]:
        return [r for a, r in self.calls if a == agent]


def plain_agents(directory: Path, names: Sequence[str], *, model: str = "sonnet", extra: str = "") -> Path:
    """Read-only test agents without an output schema; each prompt names the agent, so the fake knows it."""
    for name in names:
        frontmatter = f"name: {name}\ndescription: The {name} test agent.\ntools: Read, Grep\nmodel: {model}\n{extra}"
        write_agent(directory, f"{name}.md", frontmatter, body=f"You are agent {name}.")
    return directory


__all__ = ["Models", "agent_of", "plain_agents", "review_json", "route_json", "text", "verdict_json"]


async def children(store: RunStore, run_id: str) -> list[RunSummary]:
    """A pattern run's children, oldest first."""
    return list(reversed(await store.list(parent_id=run_id, limit=1000)))
