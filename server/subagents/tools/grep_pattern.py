"""Compiling the model's Grep pattern without letting it hold the interpreter.

`regex` expands counted repeats when it compiles (`(?:x{1000}){1000}` is a million-step program, built
with the GIL held for seconds), so a pattern's expanded size is measured first and refused past a
limit. Matching then runs with `concurrent=True` (the GIL released) under the call's deadline.
`regex` is imported by the first Grep, not at start-up (tens of ms a server that never greps need not pay).
"""

from __future__ import annotations

import re
from typing import Any

MAX_PATTERN_CHARS = 1000
MAX_EXPANDED_SIZE = 20_000
_COUNT = re.compile(r"\{(\d*)(?:,(\d*))?\}")
_ESCAPE_WITH_BRACES = re.compile(r"\\[pPNxug]\{[^}]*\}")
_GROUP_PREFIX = re.compile(r"\?(?:P?<\w+>|<[=!]|[:=!>|]|[aiLmsuxVfbwer0-9-]+:?)")  # (?:  (?P<name>  (?i)


class PatternError(ValueError):
    """A pattern Grep will not compile; the message says why and what to do instead."""


def compile_pattern(pattern: str, ignore_case: bool) -> Any:
    """The compiled `regex` pattern, or PatternError with a sentence for the model."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(
            f"Grep: the pattern is {len(pattern):,} characters, over the {MAX_PATTERN_CHARS:,}-character "
            "limit; search for a shorter, more specific pattern."
        )
    size = expanded_size(pattern)
    if size > MAX_EXPANDED_SIZE:
        raise PatternError(
            f"Grep: the pattern {pattern[:80]!r} repeats too much: its counted repeats ({{m,n}}) expand to "
            f"about {size:,} steps, over the {MAX_EXPANDED_SIZE:,} limit. Use + or * instead of large counts."
        )
    import regex

    try:
        return regex.compile(pattern, regex.V0 | (regex.IGNORECASE if ignore_case else 0))
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        raise PatternError(f"Invalid regular expression {pattern!r}: {exc}") from None


def expanded_size(pattern: str) -> int:
    """About how many steps the compiled pattern has: atoms count 1, alternatives add up, and a
    counted repeat multiplies what it repeats. Escapes and classes are one atom each."""
    stack, last, i = [0], 0, 0
    while i < len(pattern):
        char = pattern[i]
        count = _COUNT.match(pattern, i) if char == "{" else None
        if count is not None and (count.group(1) or count.group(2)):
            times = max(int(count.group(1) or 0), int(count.group(2) or 0), 1)
            stack[-1] += last * (times - 1)
            last *= times
            i = count.end()
            continue
        if char == "(":
            stack.append(0)
            last = 0
            prefix = _GROUP_PREFIX.match(pattern, i + 1)
            i = prefix.end() if prefix else i + 1
            continue
        if char == ")" and len(stack) > 1:
            last = stack.pop()
            stack[-1] += last
            i += 1
            continue
        i = _atom_end(pattern, i)
        if char not in "|*+?":
            last = 1
            stack[-1] += 1
    return sum(stack)


def _atom_end(pattern: str, i: int) -> int:
    """The index after the atom at `i`: an escape (with its braces), a class, or one character."""
    if pattern[i] == "\\":
        braced = _ESCAPE_WITH_BRACES.match(pattern, i)
        return braced.end() if braced else i + 2
    if pattern[i] != "[":
        return i + 1
    j = i + 1
    if pattern[j : j + 1] == "^":
        j += 1
    if pattern[j : j + 1] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1
