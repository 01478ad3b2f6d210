"""Orchestration patterns run server-side: route, fan_out (with a blind judge), debate, pipeline, escalate, team.

Each pattern is a module with a `DEFINITION` (its arguments, its logic, its planned children); its children
are real subagent runs through `Subagents.run`, recorded as children of the pattern's own run. A new pattern
slots in as one more module and one more entry in `PATTERNS`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from subagents.depth import DelegationDepthError
from subagents.events import EventSink, discard
from subagents.jobs import StartedSink
from subagents.orchestration import debate, escalate, fan_out, pipeline, route, team
from subagents.orchestration.args import PatternArgs, PatternInputError, parse_args
from subagents.orchestration.base import PATTERN_MODEL, PatternOutcome
from subagents.orchestration.runner import PatternDef, execute, recorded_summary
from subagents.principals import LOCAL, Principal

if TYPE_CHECKING:
    from subagents.app import Subagents

__all__ = [
    "PATTERNS",
    "PATTERN_MODEL",
    "DelegationDepthError",
    "PatternInputError",
    "PatternOutcome",
    "recorded_summary",
    "run_pattern",
]

PATTERNS: Mapping[str, PatternDef] = {
    d.name: d
    for d in (
        route.DEFINITION,
        fan_out.DEFINITION,
        debate.DEFINITION,
        pipeline.DEFINITION,
        escalate.DEFINITION,
        team.DEFINITION,
    )
}


def pattern(name: str) -> PatternDef:
    if name not in PATTERNS:
        raise PatternInputError(f"No pattern named {name!r}. Patterns: {', '.join(PATTERNS)}.")
    return PATTERNS[name]


async def run_pattern(
    app: Subagents,
    name: str,
    arguments: Mapping[str, Any] | PatternArgs,
    *,
    events: EventSink = discard,
    roots: Sequence[Path] | None = None,
    started: StartedSink | None = None,
    client: str | None = None,
    rng: random.Random | None = None,
    principal: Principal = LOCAL,
) -> PatternOutcome:
    """Run the pattern `name` on `arguments` (checked here: one clear sentence on what is wrong)."""
    definition = pattern(name)
    args = arguments if isinstance(arguments, PatternArgs) else parse_args(definition.args, dict(arguments), name)
    return await execute(
        app, definition, args, events=events, roots=roots, started=started, client=client, rng=rng, principal=principal
    )
