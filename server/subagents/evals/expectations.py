"""The deterministic checks of one answer: each broken expectation becomes a sentence that says why."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from subagents.evals.cases import Expectations
from subagents.messages import Message
from subagents.structured import parse_output

SNIPPET_CHARS = 60


@dataclass(frozen=True)
class Evidence:
    """What one run left to check: how it ended, its answer, and the tools it called."""

    status: str
    error: str | None
    report: str
    diff: str | None
    output: dict[str, Any] | None
    turns: int
    tools: tuple[str, ...]

    @property
    def text(self) -> str:
        """The answer the text checks read: the report, and the changes of an agent that writes."""
        return "\n".join(filter(None, (self.report, self.diff)))


def tools_called(transcript: Sequence[Message]) -> tuple[str, ...]:
    """The tool names the model called, in order."""
    return tuple(use.name for message in transcript if message.role == "assistant" for use in message.tool_uses)


def failures(expect: Expectations, schema: dict[str, Any] | None, evidence: Evidence) -> list[str]:
    """Every expectation the evidence breaks, one sentence each; empty when the answer passes."""
    found: list[str] = []
    if evidence.status != expect.status:
        why = f": {evidence.error}" if evidence.error else ""
        found.append(f"the run ended {evidence.status}, not {expect.status}{why}")
        if evidence.status != "completed":
            return found  # an answer that is not there cannot be checked further
    text = evidence.text.casefold()
    found += [f"the answer does not mention {m!r}" for m in expect.mentions if m.casefold() not in text]
    for banned in expect.not_contain:
        at = text.find(banned.casefold())
        if at >= 0:
            found.append(f"the answer contains {banned!r}: …{_snippet(evidence.text, at, len(banned))}…")
    if schema is not None and (problem := _schema_problem(schema, evidence)):
        found.append(f"the answer does not match the schema: {problem}")
    if expect.max_turns is not None and evidence.turns > expect.max_turns:
        found.append(f"it took {evidence.turns} turns; at most {expect.max_turns} are allowed")
    called = ", ".join(dict.fromkeys(evidence.tools)) or "no tools"
    found += [f"it never called {t} (it called {called})" for t in expect.tools_used if t not in evidence.tools]
    found += [f"it called {t}, which it must not" for t in expect.tools_not_used if t in evidence.tools]
    return found


def _schema_problem(schema: dict[str, Any], evidence: Evidence) -> str | None:
    text = json.dumps(evidence.output) if evidence.output is not None else evidence.report
    _value, problem = parse_output(schema, text)
    return problem


def _snippet(text: str, at: int, length: int) -> str:
    start = max(0, at - SNIPPET_CHARS // 2)
    return " ".join(text[start : at + length + SNIPPET_CHARS // 2].split())
