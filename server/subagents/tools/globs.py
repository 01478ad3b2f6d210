"""Glob patterns matched in bounded time, because the model picks them.

A pattern is matched segment by segment (segments are the parts between slashes). A segment that is
exactly `**` matches any number of path segments, decided by a small DP over segments; any other
segment is an fnmatch pattern (`*`, `?`, `[...]`, `[!...]`), which Python (3.11+) translates into a
regex without backtracking: the fixed-width pieces between stars are found leftmost-first inside
atomic groups, the classic linear greedy wildcard match. `{a,b}` expands first, into at most
MAX_ALTERNATIVES patterns, and a pattern is at most MAX_GLOB_CHARS long.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence

MAX_GLOB_CHARS = 1000
MAX_ALTERNATIVES = 64
MAX_SEGMENTS = 256  # path segments over all alternatives: bounds the matching work per path
MAX_NAME_PATTERN_CHARS = 4000  # all of one name_matcher's patterns together

_DEEP = None  # a `**` segment
_Segment = re.Pattern[str] | None


class GlobError(ValueError):
    """A pattern this matcher will not take; the message says why and what to do instead."""


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """A test for relative POSIX paths. Without a slash the pattern matches the file name (like
    ripgrep's --glob); with one it matches the whole path. Raises GlobError for a pattern that is
    too long or expands to too many alternatives."""
    check_length(pattern)
    alternatives = expand_braces(pattern.removeprefix("./"))
    if sum(alt.count("/") + 1 for alt in alternatives) > MAX_SEGMENTS:
        raise GlobError(
            f"Glob pattern {pattern[:80]!r} has more than {MAX_SEGMENTS} path segments over all its "
            "alternatives; use a shorter pattern."
        )
    tests = [_alternative(alt) for alt in alternatives]
    if len(tests) == 1:
        return tests[0]
    return lambda rel: any(test(rel) for test in tests)


def name_matcher(patterns: Sequence[str], *, ignore_case: bool = False) -> Callable[[str], bool]:
    """One test for a file name against many slash-free globs, compiled into a single regex."""
    for pattern in patterns:
        check_length(pattern)
    if sum(map(len, patterns)) > MAX_NAME_PATTERN_CHARS:
        raise GlobError(
            f"The name patterns add up to {sum(map(len, patterns)):,} characters, over the "
            f"{MAX_NAME_PATTERN_CHARS:,}-character limit; give fewer or shorter patterns."
        )
    alternatives = [alt for pattern in patterns for alt in expand_braces(pattern)]
    if not alternatives:
        return lambda name: False
    rx = re.compile("|".join(f"(?:{segment_regex(a)})" for a in alternatives), re.IGNORECASE if ignore_case else 0)
    return lambda name: rx.match(name) is not None


def segment_regex(segment: str) -> str:
    """The regex for one fnmatch segment: anchored at its end, linear to match (atomic groups)."""
    return fnmatch.translate(segment)


def check_length(pattern: str) -> None:
    if len(pattern) > MAX_GLOB_CHARS:
        raise GlobError(
            f"Glob pattern is {len(pattern):,} characters, over the {MAX_GLOB_CHARS:,}-character limit; "
            "use a shorter pattern."
        )


def expand_braces(pattern: str) -> list[str]:
    """`a{b,c}d` as [`abd`, `acd`], nested braces too; a brace without a partner is literal."""
    out: list[str] = []
    pending = [pattern]
    while pending:
        current = pending.pop()
        group = _first_group(current)
        if group is None:
            out.append(current)
            continue
        start, end, options = group
        pending.extend(current[:start] + option + current[end + 1 :] for option in reversed(options))
        if len(out) + len(pending) > MAX_ALTERNATIVES:
            raise GlobError(
                f"Glob pattern {pattern[:80]!r} expands to more than {MAX_ALTERNATIVES} alternatives "
                "({a,b} groups multiply); use fewer or smaller brace groups."
            )
    return out


def _first_group(pattern: str) -> tuple[int, int, list[str]] | None:
    """The first `{...}` with a matching `}`: its start, end and top-level options."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "[" and class_end(pattern, i) > 0:
            i = class_end(pattern, i) + 1
            continue
        if pattern[i] == "{":
            found = _group_at(pattern, i)
            if found is not None:
                return i, found[0], found[1]
        i += 1
    return None


def _group_at(pattern: str, start: int) -> tuple[int, list[str]] | None:
    options: list[str] = []
    depth, begin, i = 0, start + 1, start
    while i < len(pattern):
        char = pattern[i]
        if char == "[":
            end = class_end(pattern, i)
            if end > 0:
                i = end + 1
                continue
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i, [*options, pattern[begin:i]]
        elif char == "," and depth == 1:
            options.append(pattern[begin:i])
            begin = i + 1
        i += 1
    return None


def class_end(pattern: str, start: int) -> int:
    """Index of the `]` closing the class that opens at `start`, as fnmatch reads it; -1 if none
    (then the `[` is literal). A class never spans a slash: segments are split first."""
    j = start + 1
    if j < len(pattern) and pattern[j] == "!":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    end = pattern.find("]", j)
    return end if end != -1 and "/" not in pattern[start:end] else -1


def _alternative(pattern: str) -> Callable[[str], bool]:
    if "/" not in pattern:
        rx = re.compile(segment_regex(pattern))
        return lambda rel: rx.match(rel.rpartition("/")[2]) is not None
    segments = _segments(pattern.split("/"))
    deep = [i for i, segment in enumerate(segments) if segment is _DEEP]
    if len(deep) > 1:
        return lambda rel: match_segments(segments, rel.split("/"))
    # No `**`, or one: the segments before it match the path's first parts and those after it its last.
    split = deep[0] if deep else len(segments)
    head, tail = segments[:split], segments[split + 1 :] if deep else ()
    fixed = not deep

    def test(rel: str) -> bool:
        parts = rel.split("/")
        if len(parts) < len(head) + len(tail) or (fixed and len(parts) != len(head)):
            return False
        ends = zip(tail, parts[len(parts) - len(tail) :], strict=True)
        pairs = (*zip(head, parts, strict=False), *ends)
        return all(segment is not None and segment.match(part) is not None for segment, part in pairs)

    return test


def _segments(parts: Iterable[str]) -> tuple[_Segment, ...]:
    out: list[_Segment] = []
    for part in parts:
        if part == "**":
            if not out or out[-1] is not _DEEP:  # `**/**` is `**`
                out.append(_DEEP)
        else:
            out.append(re.compile(segment_regex(part)))
    return tuple(out)


def match_segments(segments: Sequence[_Segment], parts: Sequence[str]) -> bool:
    """True if `parts` (path segments) match: the set of pattern positions reachable so far, advanced
    one path segment at a time, so the work is segments x parts whatever the pattern."""
    states = _closure(segments, {0})
    for part in parts:
        following = set()
        for i in states:
            if i == len(segments):
                continue
            segment = segments[i]
            if segment is _DEEP:
                following.add(i)  # `**` takes this segment and may take more
            elif segment.match(part) is not None:
                following.add(i + 1)
        if not following:
            return False
        states = _closure(segments, following)
    return len(segments) in states


def _closure(segments: Sequence[_Segment], states: set[int]) -> set[int]:
    """Add the positions reachable by letting each `**` match no segment."""
    out = set(states)
    for i in sorted(states):
        while i < len(segments) and segments[i] is _DEEP:
            i += 1
            out.add(i)
    return out
