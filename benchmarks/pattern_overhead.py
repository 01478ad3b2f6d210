"""The tokens each pattern adds over running its children alone.

Each pattern runs once against the package's fake Messages API, whose answers depend only on the agent (so
output is the same however a child is prompted). Then every worker child (the runs that produce an answer:
candidates, stages, proposer and critic, junior and senior) runs again alone, with only the caller's task,
context and files. The overhead is what the pattern spent beyond that: its control calls (router, judge,
grader) and the context it hands its workers (restated task, previous output, critique, feedback, sample
instructions). Prompt tokens include cache reads and writes. Token counts are the fake's (about 4 characters
a token), with the bundled agents' real system prompts.

    python benchmarks/pattern_overhead.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import anyio

from subagents.app import Subagents
from subagents.config import Settings
from subagents.definitions.catalog import Layer, bundled_agents_dir, load_catalog
from subagents.history.sqlite import MEMORY, SQLiteRunStore
from subagents.messages import Usage
from subagents.orchestration import PatternOutcome, run_pattern
from subagents.orchestration.roles import CRITIC, GRADER, PROPOSER
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text

CONTROL = ("router", "judge", "grader")
WORKER_ANSWER = "The handler in app.py passes the q parameter straight into an f-string SQL query. " * 12
REVIEW = {
    "findings": [
        {
            "severity": "high",
            "title": "SQL injection in handler",
            "confidence": "high",
            "location": "app.py:2",
            "code": "db.execute(f\"SELECT * FROM t WHERE q = '{q}'\")",
            "exploit": "q=' OR 1=1 -- returns every row.",
            "fix": 'db.execute("SELECT * FROM t WHERE q = ?", (q,))',
        }
    ],
    "also_noted": [],
    "summary": {"reviewed": "app.py", "result": "0 critical, 1 high", "fix_first": "the query", "not_covered": "-"},
}
VERDICT = {
    "verdict": "A",
    "scores": [{"label": x, "correctness": 4, "evidence": 4, "risk": 4, "cost": 4} for x in "ABC"],
    "decisive_factor": "Only A cites the line that builds the query.",
    "reasoning": "A is verified against app.py:2; the others restate it without evidence. " * 3,
    "claims_checked": ["A: f-string at app.py:2, verified."],
}


def answer(request: RecordedRequest) -> Reply:
    """By agent, told apart by the system prompt; never by what the prompt says about the task."""
    system = request.system_text
    if system.startswith("You are a router."):
        return text(json.dumps({"route": "security-reviewer", "confidence": 0.9, "reason": "A review.", "task": "x"}))
    if system.startswith("You are an impartial judge."):
        return text(json.dumps(VERDICT))
    if system.startswith("You are a strict grader."):
        passed = "Attempt two" in request.last_user_text
        return text(json.dumps({"pass": passed, "score": 8 if passed else 4, "feedback": "Cite the line."}))
    if system.startswith("You are a senior application-security engineer"):
        return text(json.dumps(REVIEW))
    if "<previous-attempt>" in request.last_user_text:
        return text("Attempt two. " + WORKER_ANSWER)
    return text(WORKER_ANSWER)


CASES: list[tuple[str, dict[str, Any]]] = [
    ("route", {"task": "Is app.py safe?", "files": ["app.py"]}),
    ("fan_out", {"task": "Review app.py", "agents": ["security-reviewer", "worker"], "files": ["app.py"]}),
    ("fan_out", {"task": "Review app.py", "agents": ["security-reviewer"], "samples": 3, "judge": True}),
    ("debate", {"question": "Should app.py use a query builder?", "files": ["app.py"]}),
    ("pipeline", {"task": "Harden app.py", "stages": ["security-reviewer", "worker: fix the findings"]}),
    ("escalate", {"task": "Explain app.py", "junior": "worker", "senior": "senior", "attempts": 3}),
    (
        "team",
        {
            "tasks": [
                {"agent": "security-reviewer", "task": "Review app.py"},
                {"agent": "worker", "task": "Explain app.py"},
                {"agent": "worker", "task": "Document handler() in app.py"},
            ],
            "files": ["app.py"],
        },
    ),
]


def prompt_tokens(u: Usage) -> int:
    return u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens


async def alone(app: Subagents, outcome: PatternOutcome, arguments: dict[str, Any]) -> Usage:
    """The worker children run again, each alone with the caller's task only."""
    specs = {s.name: s for s in (PROPOSER, CRITIC, GRADER)}
    total = Usage()
    for child in outcome.children:
        if child.role.startswith(CONTROL):
            continue
        task = arguments.get("task") or arguments.get("question")
        if child.role.startswith("task "):  # a team's: each child has its own task
            task = arguments["tasks"][int(child.role.removeprefix("task ")) - 1]["task"]
        agent = specs.get(child.outcome.agent, child.outcome.agent)
        solo = await app.run(agent, task, context=arguments.get("context"), files=arguments.get("files", ()))
        total += solo.usage
    return total


async def measure(url: str, root: Path, agents: Path) -> list[tuple[str, PatternOutcome, Usage]]:
    layers = [Layer("bundled", bundled_agents_dir()), Layer("agents-dir", agents)]
    provider = AnthropicProvider(AnthropicSettings(api_key="bench", base_url=url, max_retries=0))
    store = SQLiteRunStore(MEMORY)  # the team keeps its queue in the store
    settings = Settings(roots=(root,), project_dir=root)
    app = Subagents(settings, load_catalog(layers), provider, store=store, owns_store=True)
    rows = []
    async with app:
        for name, arguments in CASES:
            outcome = await run_pattern(app, name, arguments)
            assert outcome.status == "completed", (name, outcome.error)
            rows.append((_label(name, arguments), outcome, await alone(app, outcome, arguments)))
    return rows


def _label(name: str, arguments: dict[str, Any]) -> str:
    if name == "fan_out":
        judged = " + judge" if arguments.get("judge") else ""
        return f"fan_out {len(arguments['agents'])}x{arguments.get('samples', 1)}{judged}"
    if name == "escalate":
        return "escalate (passes on attempt 2)"
    if name == "team":
        return f"team, {len(arguments['tasks'])} tasks"
    return name if name != "debate" else "debate, 1 round"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeMessagesServer(answer) as fake:
        root = Path(tmp) / "repo"
        root.mkdir()
        (root / "app.py").write_text(
            "def handler(db, q):\n    return db.execute(f\"SELECT * FROM t WHERE q = '{q}'\")\n"
        )
        agents = Path(tmp) / "agents"
        agents.mkdir()
        for name, model in (("worker", "sonnet"), ("senior", "opus")):
            (agents / f"{name}.md").write_text(
                f"---\nname: {name}\ndescription: Bench {name}.\ntools: Read\nmodel: {model}\n---\n"
                "You are a careful engineer. Answer the task in one paragraph.\n"
            )
        rows = anyio.run(measure, fake.url, root, agents)
    print("Tokens each pattern adds over running its worker children alone (fake model, ~4 chars a token):\n")
    print(
        "| pattern | runs | pattern prompt / output | workers alone prompt / output | added | of which control "
        "calls | of which handoff context | added % |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, outcome, solo in rows:
        u = outcome.usage
        total, base = prompt_tokens(u) + u.output_tokens, prompt_tokens(solo) + solo.output_tokens
        control = sum(
            prompt_tokens(c.outcome.usage) + c.outcome.usage.output_tokens
            for c in outcome.children
            if c.role.startswith(CONTROL)
        )
        added = total - base
        print(
            f"| {label} | {len(outcome.children)} | {prompt_tokens(u):,} / {u.output_tokens:,} | "
            f"{prompt_tokens(solo):,} / {solo.output_tokens:,} | {added:,} | {control:,} | {added - control:,} | "
            f"{100 * added / base:.0f}% |"
        )


if __name__ == "__main__":
    main()
