"""RunLimiter: per-principal slots, all or nothing, and children counted inside their pattern's reservation."""

from __future__ import annotations

import anyio
import pytest

from subagents.principals import LOCAL, Principal, RunLimiter, TooManyRuns

pytestmark = pytest.mark.anyio
ALICE, BOB = Principal("alice"), Principal("bob")


def test_each_principal_has_its_own_slots_and_a_refusal_says_whose_and_what_to_do() -> None:
    limiter = RunLimiter(cap=1)
    with limiter.reserve(ALICE), limiter.reserve(BOB), limiter.reserve(LOCAL):
        with pytest.raises(TooManyRuns) as refused, limiter.reserve(ALICE):
            pass
        assert (limiter.in_flight(ALICE), limiter.in_flight(BOB)) == (1, 1)
    assert str(refused.value) == (
        "Caller 'alice' already has 1 of its 1 concurrent agent runs going (the server's --max-concurrent-runs), "
        "so this run cannot start: wait for one to finish, or poll your background runs with get_run until they "
        "end, then try again."
    )
    assert limiter.in_flight(ALICE) == 0


def test_a_reservation_of_several_slots_is_all_or_nothing() -> None:
    limiter = RunLimiter(cap=3)
    with limiter.reserve(ALICE):
        with pytest.raises(TooManyRuns, match="so these 3 runs cannot start"), limiter.reserve(ALICE, 3):
            pass
        assert limiter.in_flight(ALICE) == 1  # nothing of the refused three was taken
        with limiter.reserve(ALICE, 2):
            assert limiter.in_flight(ALICE) == 3


def test_a_slot_is_freed_when_the_run_fails() -> None:
    limiter = RunLimiter(cap=1)
    with pytest.raises(RuntimeError), limiter.reserve(ALICE):
        raise RuntimeError("the run broke")
    with limiter.reserve(ALICE):
        assert limiter.in_flight(ALICE) == 1


async def test_children_run_in_their_patterns_slots_and_a_run_inside_a_run_takes_its_own() -> None:
    limiter = RunLimiter(cap=4)
    seen: list[int] = []
    release = anyio.Event()

    async def child() -> None:
        with limiter.reserve(ALICE):
            seen.append(limiter.in_flight(ALICE))
            with limiter.reserve(ALICE):  # a run started from inside a run: a slot of its own
                seen.append(limiter.in_flight(ALICE))
                await release.wait()

    with limiter.reserve(ALICE, 2, for_children=True):  # a fan-out of two reserves both before either starts
        async with anyio.create_task_group() as tg:
            tg.start_soon(child)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(child)
            await anyio.wait_all_tasks_blocked()
            # The pattern's slots are taken and the cap is reached: a third child is refused.
            with pytest.raises(TooManyRuns), limiter.reserve(ALICE):
                pass
            release.set()
    assert seen == [2, 3, 3, 4]  # each child took a pattern slot; each inner run a new one
    assert limiter.in_flight(ALICE) == 0


async def test_a_child_that_outlives_its_pattern_keeps_its_slot() -> None:
    limiter = RunLimiter(cap=1)
    release = anyio.Event()
    async with anyio.create_task_group() as tg:
        with limiter.reserve(ALICE, for_children=True):

            async def child() -> None:
                with limiter.reserve(ALICE):
                    await release.wait()

            tg.start_soon(child)
            await anyio.wait_all_tasks_blocked()
        assert limiter.in_flight(ALICE) == 1  # the pattern ended; its child still runs in its slot
        with pytest.raises(TooManyRuns), limiter.reserve(ALICE):
            pass
        release.set()
    assert limiter.in_flight(ALICE) == 0


async def test_the_default_cap_fits_one_claude_code_turn_with_the_widest_fan_out() -> None:
    """Claude Code runs up to 10 tool calls of a turn at once, each its own request: a fan-out at the widest
    pattern concurrency beside the turn's 9 other calls all start under the default cap, and so do four
    fan-outs of the default width."""
    from subagents.config import Settings

    settings = Settings()
    widest = max(m.le for m in Settings.model_fields["pattern_concurrency"].metadata if hasattr(m, "le"))

    async def turn(widths: list[int]) -> int:
        limiter = RunLimiter(settings.max_concurrent_runs)
        held = anyio.Event()
        started = 0

        async def call(width: int) -> None:  # a task of its own, as each request is
            nonlocal started
            with limiter.reserve(LOCAL, width, for_children=width > 1):
                started += 1
                await held.wait()

        async with anyio.create_task_group() as tg:
            for width in widths:
                tg.start_soon(call, width)
            await anyio.wait_all_tasks_blocked()
            assert limiter.in_flight(LOCAL) == sum(widths)
            held.set()
        return started

    assert await turn([widest] + [1] * 9) == 10
    assert await turn([settings.pattern_concurrency] * 4) == 4
