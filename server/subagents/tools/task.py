"""Task (Claude Code's Agent tool, under either name): hand a self-contained job to another of this server's
agents. The work itself is the caller's (`Delegate`): the child runs as a run of its own, on the same
files, and its report comes back as this tool's result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from subagents.messages import ToolSpec
from subagents.tools.base import ToolOutput
from subagents.tools.text import escape_fence

MAX_PROMPT_CHARS = 100_000
DESCRIPTION_CHARS = 4000  # the agent list, bounded: the model pays for it on every turn
AGENT_LINE_CHARS = 120

# (agent, prompt, description) -> the child's report as a tool output.
Delegate = Callable[[str, str, str], Awaitable[ToolOutput]]

_INTRO = (
    "Hand a self-contained task to another agent. It works on the same files with its own tools and context, "
    "and its final report comes back as this tool's result. It has not seen this conversation: put the goal, "
    "the scope and what a good answer looks like in `prompt`. Use it when a specialist below fits part of "
    "your job better than you do. Agents (`subagent_type`):"
)


class Task:
    def __init__(self, name: str, agents: Sequence[tuple[str, str]], delegate: Delegate) -> None:
        self._delegate = delegate
        self._names = {agent for agent, _ in agents}
        self.spec = ToolSpec(
            name=name,
            description=task_description(agents),
            input_schema={
                "type": "object",
                "properties": {
                    "description": {"type": "string", "description": "The task in three to five words."},
                    "prompt": {"type": "string", "description": "The task, self-contained, for the agent."},
                    "subagent_type": {"type": "string", "description": "The agent to hand it to."},
                },
                "required": ["description", "prompt", "subagent_type"],
                "additionalProperties": False,
            },
        )

    async def run(self, args: dict[str, Any]) -> ToolOutput:
        problem = self._problem(args)
        if problem is not None:
            return ToolOutput(text=f"{self.spec.name}: {problem}", is_error=True)
        return await self._delegate(args["subagent_type"], args["prompt"], args["description"])

    def _problem(self, args: dict[str, Any]) -> str | None:
        unknown = [k for k in args if k not in ("description", "prompt", "subagent_type")]
        if unknown:
            return f"unknown argument {', '.join(map(repr, unknown))}; it takes description, prompt, subagent_type."
        for key in ("description", "prompt", "subagent_type"):
            if not isinstance(args.get(key), str) or not args[key].strip():
                return f"{key} is missing or empty."
        if len(args["prompt"]) > MAX_PROMPT_CHARS:
            return f"prompt is {len(args['prompt'])} characters; keep it under {MAX_PROMPT_CHARS} and name files."
        if args["subagent_type"] not in self._names:
            known = ", ".join(sorted(self._names)[:40]) or "none"
            return f"no agent {args['subagent_type'][:80]!r} to hand work to; choose one of: {known}."
        return None


def task_description(agents: Sequence[tuple[str, str]]) -> str:
    """The tool's description: what it does, then the agents with their first sentence while they fit, then
    names only, then how many more."""
    parts = [_INTRO]
    used = len(_INTRO)
    for index, (name, description) in enumerate(sorted(agents)):
        first = description.strip().split("\n")[0].split(". ")[0][:AGENT_LINE_CHARS]
        line = f"\n- {name}: {first}" if used < DESCRIPTION_CHARS // 2 else f"\n- {name}"
        if used + len(line) > DESCRIPTION_CHARS - 40:
            parts.append(f"\n…and {len(agents) - index} more; ask for one by its exact name.")
            break
        parts.append(line)
        used += len(line)
    return "".join(parts)


def report_text(agent: str, run_id: str, status: str, report: str, max_chars: int) -> str:
    """The child's report, fenced as data from another agent and cut to `max_chars`."""
    body = escape_fence(report, "agent-report")  # a report cannot close its own fence
    if len(body) > max_chars:
        body = body[:max_chars] + f"\n[report cut at {max_chars} of {len(report)} characters; run {run_id} has it all]"
    return f'<agent-report agent="{agent}" run_id="{run_id}" status="{status}">\n{body}\n</agent-report>'
