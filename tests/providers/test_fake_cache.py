"""The fake's prompt cache follows the API's rules: prefixes up to breakpoints, a 20-block lookback."""

from __future__ import annotations

from typing import Any

from subagents.providers.fake_cache import LOOKBACK_BLOCKS, PromptCache

MARK = {"type": "ephemeral"}


def body(turns: int, *, mark_last: bool = True, model: str = "m") -> dict[str, Any]:
    """A conversation that grows as a real one does: question 0, answer 0, …, question `turns`, the
    newest question marked if asked. Each call's messages start with the previous call's."""
    messages: list[dict[str, Any]] = []
    for n in range(turns + 1):
        if n:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": f"answer {n} " * 20}]})
        messages.append({"role": "user", "content": [{"type": "text", "text": f"question {n} " * 20}]})
    if mark_last:
        messages[-1]["content"][-1]["cache_control"] = MARK
    system = [{"type": "text", "text": "sys " * 50, "cache_control": MARK}]
    return {"model": model, "system": system, "messages": messages}


def test_no_breakpoint_means_no_caching() -> None:
    assert PromptCache().account({"model": "m", "messages": [{"role": "user", "content": "hi"}]}) is None


def test_the_same_prefix_is_written_then_read() -> None:
    cache = PromptCache()
    first, second = cache.account(body(1)), cache.account(body(1))
    assert first is not None and second is not None
    assert (first.read, second.written) == (0, 0)
    assert second.read == first.written > 0


def test_a_growing_conversation_reads_what_the_last_turn_wrote() -> None:
    cache = PromptCache()
    turn1 = cache.account(body(1))
    turn2 = cache.account(body(2))  # two blocks more than turn 1: within the lookback
    assert turn1 is not None and turn2 is not None
    assert turn2.read == turn1.written  # everything up to turn 1's last mark
    assert turn2.written > 0 and turn2.uncached < turn2.read


def test_only_the_system_mark_caches_only_the_system_prompt() -> None:
    cache = PromptCache()
    cache.account(body(1, mark_last=False))
    later = cache.account(body(2, mark_last=False))
    assert later is not None and later.read < later.uncached  # the conversation is paid in full


def test_a_mark_further_back_than_the_lookback_is_not_found() -> None:
    cache = PromptCache()
    cache.account(body(1))
    far = cache.account(body(1 + LOOKBACK_BLOCKS))  # 40 blocks later, with no mark between
    system_only = PromptCache()
    system_only.account(body(0, mark_last=False))
    again = system_only.account(body(0, mark_last=False))
    assert far is not None and again is not None
    assert far.read == again.read  # only the system prompt was found


def test_the_cache_is_per_model() -> None:
    cache = PromptCache()
    cache.account(body(1, model="a"))
    other = cache.account(body(1, model="b"))
    assert other is not None and other.read == 0
