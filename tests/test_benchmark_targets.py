"""The 64-at-once target: 1.2x of the direct SDK, or the floor's own ratio where the bare MCPServer misses 1.2x
too; either way a row fails when ours adds something of its own, or has an error."""

from __future__ import annotations

from benchmarks.concurrency import SLACK, target


def test_64_at_once_holds_to_1_2x_while_the_floor_meets_it() -> None:
    assert target(64, "subagents, one session", 1.15, 1.01, 0) == ("≤ 1.2×, 0 errors", True)
    assert target(64, "subagents, one session", 1.25, 1.01, 0)[1] is False
    assert target(64, "subagents, one session", 1.10, 1.01, 1)[1] is False


def test_where_the_floor_misses_1_2x_the_row_holds_to_the_floor() -> None:
    goal, met = target(64, "subagents, a session each", 1.35, 1.40, 0)
    assert met is True and "1.40" in goal
    assert target(64, "subagents, a session each", 1.40 + SLACK + 0.01, 1.40, 0)[1] is False
    assert target(64, "subagents, a session each", 1.30, 1.40, 2)[1] is False


def test_other_rows_carry_no_target() -> None:
    assert target(16, "subagents, a session each", 1.5, 1.1, 0) == ("", None)
    assert target(64, "bare forwarding, one session", 1.5, 1.5, 0) == ("", None)
