"""Property: the linear glob matcher agrees with a slow, obviously correct reference, and the
deny-list's fast path agrees with trying every rule."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from subagents.tools.denylist import DEFAULT_DENY, DenyList, is_env_template
from subagents.tools.globs import GlobError, glob_matcher

SEGMENT_CHARS = "ab.*?[]!-"
NAMES = st.text(alphabet="ab.*?[]!-{},", min_size=1, max_size=5)
PATHS = st.lists(NAMES, min_size=1, max_size=4).map("/".join)
CLASS_PATTERNS = st.text(alphabet="ab.*?[]!-/", max_size=10)
BRACE_PATTERNS = st.text(alphabet="ab*?{},/", max_size=10)
NESTED_BRACES = st.recursive(
    st.sampled_from(["a", "b", "*", "?", "", "/", "**/"]),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map("".join),
        st.lists(inner, min_size=1, max_size=3).map(lambda options: "{" + ",".join(options) + "}"),
    ),
    max_leaves=8,
)
DEEP_PATTERNS = st.lists(st.sampled_from(["**", "*", "a*", "*b", "?", "a", "[ab]", "*.a"]), min_size=1, max_size=5)


def reference(pattern: str, rel: str) -> bool:
    """Braces expanded recursively, then backtracking over segments and characters."""
    alternatives = _expand(pattern.removeprefix("./"))
    return any(_path(alt, rel) for alt in alternatives)


def _expand(pattern: str) -> list[str]:
    for start, char in enumerate(pattern):
        if char != "{":
            continue
        depth, begin, options = 0, start + 1, []
        for i in range(start, len(pattern)):
            if pattern[i] == "{":
                depth += 1
            elif pattern[i] == "}":
                depth -= 1
                if depth == 0:
                    options.append(pattern[begin:i])
                    rest = pattern[i + 1 :]
                    return [x for option in options for x in _expand(pattern[:start] + option + rest)]
            elif pattern[i] == "," and depth == 1:
                options.append(pattern[begin:i])
                begin = i + 1
    return [pattern]


def _path(pattern: str, rel: str) -> bool:
    if "/" not in pattern:
        return _segment(pattern, rel.rsplit("/", 1)[-1])
    return _segments(pattern.split("/"), rel.split("/"))


def _segments(segments: list[str], parts: list[str]) -> bool:
    if not segments:
        return not parts
    if segments[0] == "**":
        return _segments(segments[1:], parts) or (bool(parts) and _segments(segments, parts[1:]))
    return bool(parts) and _segment(segments[0], parts[0]) and _segments(segments[1:], parts[1:])


def _segment(pattern: str, name: str) -> bool:
    if not pattern:
        return not name
    char = pattern[0]
    if char == "*":
        return any(_segment(pattern[1:], name[i:]) for i in range(len(name) + 1))
    if char == "[":
        end = _class_end(pattern)
        if end > 0:  # one character against the class, as fnmatch reads classes
            return (
                bool(name)
                and fnmatch.fnmatchcase(name[0], pattern[: end + 1])
                and _segment(pattern[end + 1 :], name[1:])
            )
    if char == "?":
        return bool(name) and _segment(pattern[1:], name[1:])
    return bool(name) and name[0] == char and _segment(pattern[1:], name[1:])


def _class_end(pattern: str) -> int:
    j = 1 + (pattern[1:2] == "!")
    j += pattern[j : j + 1] == "]"
    return pattern.find("]", j)


def check(pattern: str, rel: str) -> None:
    try:
        matcher = glob_matcher(pattern)
    except GlobError:
        assume(False)
        return
    assert matcher(rel) is reference(pattern, rel), (pattern, rel)


@settings(max_examples=400, deadline=None)
@given(pattern=CLASS_PATTERNS, rel=PATHS)
def test_globs_with_classes_match_like_the_reference(pattern: str, rel: str) -> None:
    check(pattern, rel)


@settings(max_examples=400, deadline=None)
@given(pattern=BRACE_PATTERNS, rel=PATHS)
def test_globs_with_braces_match_like_the_reference(pattern: str, rel: str) -> None:
    check(pattern, rel)


@settings(max_examples=300, deadline=None)
@given(pattern=NESTED_BRACES, rel=st.lists(st.sampled_from(["a", "b", "ab", "ba", "?"]), min_size=1, max_size=3))
def test_nested_braces_match_like_the_reference(pattern: str, rel: list[str]) -> None:
    check(pattern, "/".join(rel))


@settings(max_examples=300, deadline=None)
@given(segments=DEEP_PATTERNS, rel=st.lists(st.sampled_from(["a", "b", "ab", "a.a", "[ab]"]), min_size=1, max_size=6))
def test_double_star_segments_match_like_the_reference(segments: list[str], rel: list[str]) -> None:
    check("/".join(segments), "/".join(rel))


@settings(max_examples=300, deadline=None)
@given(pattern=st.text(alphabet="*?[]{},!^-/.\\az\x00é", max_size=20), path=st.text(max_size=20))
def test_any_glob_pattern_compiles_or_is_refused_with_a_reason(pattern: str, path: str) -> None:
    try:
        matcher = glob_matcher(pattern)
    except GlobError as exc:
        assert "alternatives" in str(exc)
        return
    assert matcher(path) in (True, False)


RULE_NAMES = st.one_of(
    st.text(alphabet=".envkeyprsticdjoagh_-*1", min_size=1, max_size=14),
    st.sampled_from([".env", ".ENV", ".env.example", "prod.env", "id_rsa.pub", "a.tfstate.1", "x.jks", "config"]),
)


@pytest.fixture(scope="module")
def deny() -> DenyList:
    return DenyList(DEFAULT_DENY)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(RULE_NAMES, min_size=1, max_size=3))
def test_the_deny_lists_fast_path_agrees_with_trying_every_rule(deny: DenyList, parts: list[str]) -> None:
    folded = [p.casefold() for p in parts]
    expected = None
    if not is_env_template(folded[-1]):
        for rule in DEFAULT_DENY:
            rule_parts = rule.casefold().removesuffix("/**").split("/")
            tail = folded[-len(rule_parts) :]
            if len(tail) == len(rule_parts) and all(map(fnmatch.fnmatchcase, tail, rule_parts)):
                expected = rule
                break
    assert deny.tail_rule(parts) == expected
