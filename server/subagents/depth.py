"""How deep a run is in a delegation chain: one count for pattern children, Task children and nested servers.

A client's call is depth `delegation_depth + 1`: 1 on a server at the top, deeper on a server a delegating
process started (it says how deep it is in SUBAGENTS_DELEGATION_DEPTH, as our Claude Code sessions do).
A pattern's children and a run's Task children are one deeper than their parent, and no run may be deeper
than `max_depth` (`--max-depth`): a pattern whose children would be is refused, and a run at the limit
gets no Task tool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from subagents.errors import SubagentsError

if TYPE_CHECKING:
    from subagents.config import Settings

DEPTH_ENV = "SUBAGENTS_DELEGATION_DEPTH"  # how deep the process that started a server already is
DEPTH_FIX = "--max-depth N"


class DelegationDepthError(SubagentsError):
    """A pattern would delegate deeper than the server's depth limit."""


def run_depth(settings: Settings, depth: int | None = None) -> int:
    """A run's depth: `depth` when it is a child (its parent's plus one), else a client's call here."""
    return settings.delegation_depth + 1 if depth is None else depth


def may_delegate(settings: Settings, depth: int) -> bool:
    """True when a run at `depth` may start children (they would be `depth + 1` deep)."""
    return depth + 1 <= settings.max_depth


def limit_reached(settings: Settings) -> str:
    """Why a run may not delegate, in a few words: for a Task tool it does not get."""
    return f"the delegation depth limit of {settings.max_depth} is reached"


def check_pattern_depth(settings: Settings, depth: int) -> None:
    """A pattern at `depth` delegates to children at `depth + 1`: refuse past the server's limit."""
    if not may_delegate(settings, depth):
        raise DelegationDepthError(
            f"Not started: this pattern's children would be {depth + 1} delegations deep, past this server's "
            f"delegation depth limit of {settings.max_depth} (a chain this long is usually a loop). Do the work "
            f"with a single agent call, or raise the limit with {DEPTH_FIX} if the chain is intended."
        )
