"""The glob matcher a model's patterns go through: linear whatever the pattern, and bounded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from subagents.tools.files import LS, Glob, Grep, Read
from subagents.tools.globs import MAX_ALTERNATIVES, GlobError, expand_braces, glob_matcher, name_matcher
from subagents.tools.grep_pattern import expanded_size
from subagents.tools.sandbox import Sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_patterns_that_made_re_backtrack_for_ever_match_at_once() -> None:
    """`*` * 100 + "x" spun for ever in the old regex translation, holding the GIL."""
    name = "a" * 255
    assert glob_matcher("*" * 100 + "x")(name) is False
    assert glob_matcher("*" * 100 + "x")(name + "x") is True
    assert glob_matcher("*a" * 300 + "*x")(name) is False
    assert glob_matcher("**/" * 200 + "*b")("a/" * 100 + "b") is True
    assert glob_matcher("{a,b}" * 6)("ab" * 3) is True


def test_length_and_expansion_are_capped_with_a_reason() -> None:
    with pytest.raises(GlobError, match="1,001 characters, over the 1,000-character limit"):
        glob_matcher("*" * 1001)
    with pytest.raises(GlobError, match=f"more than {MAX_ALTERNATIVES} alternatives"):
        glob_matcher("{a,b}" * 7)
    assert sorted(expand_braces("x{a,{b,c}}y")) == ["xay", "xby", "xcy"]
    assert expand_braces("{a,b") == ["{a,b"] and expand_braces("[{]a,b}") == ["[{]a,b}"]


def test_name_matcher_takes_many_patterns_in_one_regex() -> None:
    ignore = name_matcher(["*.pyc", "build", "*.{log,tmp}"])
    assert [ignore(n) for n in ("a.pyc", "build", "x.tmp", "src", "a.py")] == [True, True, True, False, False]
    assert not name_matcher([])("anything")


async def test_tools_answer_hostile_patterns_quickly_and_clearly(tmp_path: Path) -> None:
    (tmp_path / "box").write_text("demo\n")
    (tmp_path / "a.txt").write_text("demo\n")
    sandbox = Sandbox([tmp_path])
    assert (await Glob(sandbox).run({"pattern": "*" * 100 + "x"})).text == "box"
    grep = await Grep(sandbox).run({"pattern": "demo", "glob": "*" * 60 + "x"})
    assert grep.text == "Found 1 file\nbox"
    long = await Glob(sandbox).run({"pattern": "*" * 5000})
    assert long.is_error and "5,000 characters, over the 1,000-character limit" in long.text
    braces = await Grep(sandbox).run({"pattern": "x", "glob": "{a,b}" * 10})
    assert braces.is_error and "alternatives" in braces.text


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(?:x{1000}){1000}", "expand to about 1,000,000 steps, over the 20,000 limit"),
        ("a" * 1001, "1,001 characters, over the 1,000-character limit"),
    ],
)
async def test_grep_refuses_patterns_that_would_hold_the_interpreter_to_compile(
    tmp_path: Path, pattern: str, message: str
) -> None:
    """`regex` expands counted repeats at compile time, with the GIL held: refused before compiling."""
    out = await Grep(Sandbox([tmp_path])).run({"pattern": pattern})
    assert out.is_error and message in out.text


def test_expanded_size_counts_what_regex_would_build() -> None:
    assert expanded_size(r"\d{4}-\d{2}") == 7
    assert expanded_size("[a-f0-9]{40}") == 40
    assert expanded_size("(?:ab|cd){3}") == 12
    assert expanded_size(r"\p{L}{2}x") == 3


async def test_walks_say_when_their_budget_cut_them_short(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"f{i:02}.txt").write_text("hit\n")
    few = Sandbox([tmp_path], max_walk_entries=10)
    glob = await Glob(few).run({"pattern": "*.txt"})
    assert glob.text.splitlines()[-1] == (
        "[stopped after looking at 10 entries, the limit of one call; narrow pattern or path]"
    )
    assert len(glob.text.splitlines()) == 11
    grep = await Grep(Sandbox([tmp_path], max_call_seconds=0)).run({"pattern": "hit"})
    assert grep.text == (
        "No matches for 'hit' in \".\".\n[stopped after 0 s, the time limit of one call; narrow path or glob]"
    )
    ls = await LS(few).run({"path": "."})
    assert ls.text.splitlines()[0] == "./ (10 entries)" and "stopped after looking at 10 entries" in ls.text


async def test_a_very_deep_tree_is_walked_to_a_limit_and_says_so(tmp_path: Path) -> None:
    deep = tmp_path
    for _ in range(70):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("x\n")
    (tmp_path / "top.txt").write_text("x\n")
    out = await Glob(Sandbox([tmp_path])).run({"pattern": "**/*.txt"})
    assert out.text == "top.txt\n[skipped directories nested more than 64 levels deep; narrow pattern or path]"


async def test_ls_limits_its_ignore_list(tmp_path: Path) -> None:
    args: dict[str, Any] = {"path": ".", "ignore": ["x"] * 101}
    out = await LS(Sandbox([tmp_path])).run(args)
    assert out.is_error and "argument 'ignore' may have at most 100 items, got 101" in out.text


def test_the_matching_work_per_path_is_bounded() -> None:
    with pytest.raises(GlobError, match="more than 256 path segments over all its alternatives"):
        glob_matcher("{a,b}/" * 5 + "**/" * 10 + "x")
    with pytest.raises(GlobError, match="add up to 4,500 characters, over the 4,000-character limit"):
        name_matcher(["*" * 900] * 5)


async def test_read_stops_paging_at_its_deadline(tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_text("line\n" * 10_000)
    out = await Read(Sandbox([tmp_path], max_call_seconds=0)).run({"file_path": "long.txt", "offset": 9_000})
    assert out.is_error and out.text.startswith("Read stopped: skipping to line 9,000 took over 0 s")
