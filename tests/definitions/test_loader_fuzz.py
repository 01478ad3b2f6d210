"""Fuzzing the frontmatter loader: whatever a file holds, it loads or says why not, and never raises.

The contract: `load_agent_file` returns a `LoadResult` with a spec (and only warnings) or with exactly
one `Problem` that has a message: an error, or an info line for a file that is not an agent; `parse_agent`
returns a spec or raises the loader's `_Invalid`. The YAML repair retry runs at most once a file.
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from subagents.definitions.frontmatter import _FastYaml12Loader, _parse, _Yaml12Loader
from subagents.definitions.loader import _Invalid, load_agent_file, parse_agent
from subagents.definitions.spec import ALL_TOOLS, NAME_PATTERN, RESERVED_NAMES, AgentSpec


class DUMPER(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # libyaml: faster inputs
    """Quotes text that YAML 1.1 or 1.2 would read as something else (`0o17`, `1e5`, `yes`)."""


for _first, _resolvers in _Yaml12Loader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        DUMPER.add_implicit_resolver(_tag, _regexp, [_first])
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies ---

# Pieces that steer random text into the loader's interesting corners.
FRAGMENTS = (
    "---\n", "---", " --- \n", "\n", "\r\n", "\ufeff", "\x00", "\t", "name: a\n", "name: get_run\n",
    "description: d\n", "description: |\n  multi\n  line\n", "tools: Read, Grep\n", "tools: [Read, Bash(git:*)]\n",
    "disallowedTools: Write\n", "model: opus\n", "model: claude-x\n", "maxTurns: 3\n", "maxTurns: ",
    "subagents: {max_tokens: 5}\n", "subagents: ", "&a ", "*a", "<<: *a\n", "? ", ": ", "- ", "[", "]", "{", "}",
    ",", "'", '"', "#", "|", ">", "!", "!!python/object/apply:os.system [id]", "!!binary", "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n", "...\n", "~", "null", "yes", "on", "1e400", ".nan", "-.inf", "0x1F", "0o17", "1_000",
    "12:30:45", "2026-03-01", "9" * 60, "é", "\u2028", "\x85", "\U0001f600", "\\u0000", "@", "`", "%",
)  # fmt: skip
text_pieces = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12))
random_text = st.lists(text_pieces, max_size=40).map("".join)
agent_text = st.one_of(
    random_text,
    random_text.map(lambda t: "---\n" + t),
    st.tuples(random_text, random_text).map(lambda p: f"---\n{p[0]}\n---\n{p[1]}"),
)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10), st.dates())
yaml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=5,
)
ALNUM = string.ascii_letters + string.digits
# NAME_PATTERN's language, built directly: st.from_regex is several times slower to draw from.
valid_names = (
    st.tuples(st.sampled_from(ALNUM), st.text(alphabet=ALNUM + "_-", max_size=63))
    .map("".join)
    .filter(lambda n: n not in RESERVED_NAMES)
)
tool_names = st.sampled_from((*ALL_TOOLS, "WebFetch", "Bash(git diff:*)", "mcp__x__y", "", " Read "))
tool_values = st.one_of(st.lists(tool_names, max_size=6), st.lists(tool_names, max_size=6).map(", ".join), yaml_values)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(valid_names, st.sampled_from(sorted(RESERVED_NAMES)), st.text(max_size=70), yaml_values),
    "description": st.one_of(st.text(max_size=40), yaml_values),
    "tools": tool_values,
    "disallowedTools": tool_values,
    "model": st.one_of(st.sampled_from(("inherit", "Sonnet", "opus", "claude-opus-5-5", "gpt-9", " ")), yaml_values),
    "maxTurns": st.one_of(st.integers(), yaml_values),
    "subagents": st.one_of(
        st.fixed_dictionaries(
            {}, optional={"max_tokens": st.integers(), "temperature": st.floats(), "timeout": yaml_values}
        ),
        yaml_values,
    ),
}
# Keys YAML gives back as something other than a string (1:, true:, null:, 2026-03-01:) are in here too.
extra_keys = st.dictionaries(
    st.one_of(
        st.text(max_size=10),
        st.sampled_from(("hooks", "color", "mcpServers")),
        st.integers(),
        st.booleans(),
        st.none(),
        st.dates(),
    ),
    yaml_values,
    max_size=3,
)
# Half the time a valid name and description, so the fuzzing reaches past the first two checks.
valid_core = st.fixed_dictionaries({"name": valid_names, "description": st.sampled_from(("d", "Reviews code."))})
field_sets = st.one_of(
    st.fixed_dictionaries({}, optional=FIELDS),
    st.tuples(valid_core, st.fixed_dictionaries({}, optional=FIELDS)).map(lambda p: {**p[1], **p[0]}),
)
frontmatters = st.tuples(extra_keys, field_sets).map(lambda p: {**p[0], **p[1]})


def as_file(frontmatter: dict[Any, Any], body: str = "You are a test agent.") -> str:
    dumped = yaml.dump(frontmatter, Dumper=DUMPER, allow_unicode=True, sort_keys=False)
    return f"---\n{dumped}---\n{body}\n"


# --- checks ---


def check_spec(spec: AgentSpec) -> None:
    assert NAME_PATTERN.fullmatch(spec.name) and spec.name not in RESERVED_NAMES
    assert spec.description and spec.description == spec.description.strip()
    allowed = set(spec.tools if spec.tools is not None else ALL_TOOLS) - set(spec.disallowed_tools)
    assert set(spec.effective_tools) <= allowed
    assert spec.max_turns is None or (type(spec.max_turns) is int and spec.max_turns >= 1)
    assert spec.model and spec.model == spec.model.strip()


def parse_or_invalid(text: str) -> AgentSpec | None:
    """The spec, or None when the loader raised its own error; anything else propagates and fails."""
    try:
        spec, warnings = parse_agent(text)
    except _Invalid as exc:
        assert str(exc)
        return None
    assert all(isinstance(w, str) and w for w in warnings)
    check_spec(spec)
    return spec


def load_checked(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    result = load_agent_file(path)  # must not raise
    errors = [p for p in result.problems if p.level == "error"]
    if result.spec is None:
        [problem] = result.problems
        assert problem.level in ("error", "info") and problem.message.strip() and problem.path == path
    else:
        assert errors == []
        check_spec(result.spec)


# --- properties ---


@FUZZ
@given(text=agent_text)
def test_any_text_loads_or_reports_one_error(tmp_path: Path, text: str) -> None:
    load_checked(tmp_path / "agent.md", text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(frontmatter=frontmatters)
def test_any_frontmatter_fields_load_or_report_one_error(tmp_path: Path, frontmatter: dict[Any, Any]) -> None:
    load_checked(tmp_path / "agent.md", as_file(frontmatter).encode("utf-8", "surrogatepass"))


# Lines the repair looks at: a plain key, then a value full of YAML-special characters.
SPECIALS = (": ", "#", " #", "[", "]", "{", "}", "*", "&", "!", "|", ">", "%", "@", "`", '"', "'", "\\", "\t", "\r")
special_values = st.lists(st.one_of(st.sampled_from(SPECIALS), st.text(max_size=4)), max_size=12).map("".join)
repair_lines = st.tuples(st.sampled_from(("name", "description", "tools", "model", "x", "maxTurns")), special_values)
repair_blocks = st.lists(repair_lines.map(lambda kv: f"{kv[0]}: {kv[1]}"), min_size=1, max_size=8).map("\n".join)


@FUZZ
@given(block=repair_blocks)
def test_frontmatter_that_needs_the_repair_loads_or_reports_one_error(tmp_path: Path, block: str) -> None:
    load_checked(tmp_path / "agent.md", f"---\n{block}\n---\nBody.\n".encode("utf-8", "surrogatepass"))


@FUZZ
@given(
    name=valid_names,
    description=st.text(min_size=1).filter(str.strip),
    tools=st.none() | st.lists(st.sampled_from(ALL_TOOLS), unique=True),
    denied=st.lists(st.sampled_from(ALL_TOOLS), unique=True),
)
def test_valid_fields_come_back_as_written(
    name: str, description: str, tools: list[str] | None, denied: list[str]
) -> None:
    fields: dict[str, Any] = {"name": name, "description": description, "disallowedTools": denied}
    if tools is not None:
        fields["tools"] = tools
    text = as_file(fields)
    # Any '---' closes the frontmatter early (as in Claude Code); not a bug here.
    assume("---" not in text.split("\n", 1)[1].rsplit("---", 1)[0])
    written = description.replace("\\n", "\n").strip()  # Claude Code turns a written \n into a line break
    assume(written)
    spec = parse_or_invalid(text)
    assert spec is not None
    assert (spec.name, spec.description) == (name, written)
    wanted = tools if tools is not None else ALL_TOOLS
    assert spec.effective_tools == tuple(t for t in wanted if t not in denied)


def _reading(parse: Callable[[str], Any], text: str) -> tuple[str, str]:
    try:
        return "read", repr(parse(text))
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return "refused", type(exc).__name__


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")
@FUZZ
@given(text=st.one_of(random_text, repair_blocks, frontmatters.map(as_file)))
def test_libyaml_reads_a_block_as_the_pure_parser_does(text: str) -> None:
    """Agent files are parsed with libyaml at start-up; what that reads (or refuses) must be what the pure
    parser, the reference the rules above were checked against, reads."""
    assert issubclass(_FastYaml12Loader, yaml.CSafeLoader)
    fast = _reading(_parse, text)
    pure = _reading(lambda t: yaml.load(t, Loader=_Yaml12Loader), text)
    assume("nan" not in fast[1])  # nan != nan
    assert fast == pure


# --- explicit cases ---

GOOD = "name: a\ndescription: d\n"


@pytest.mark.parametrize(
    "frontmatter",
    [
        pytest.param(GOOD + "x: " + "1" * 5000, id="int-over-4300-digits"),
        pytest.param(GOOD + "x: " + "[" * 600 + "]" * 600, id="nested-lists-600-deep"),
        pytest.param(GOOD + "x: " + "{a: " * 1000 + "1" + "}" * 1000, id="nested-maps-1000-deep"),
        pytest.param(GOOD + "1: x", id="int-key"),
        pytest.param(GOOD + "on: x", id="yaml-1.1-bool-key"),
        pytest.param(GOOD + "null: x", id="null-key"),
        pytest.param(GOOD + "2026-03-01: x", id="date-key"),
        pytest.param(GOOD + "? [a, b]\n: x", id="list-key"),
        pytest.param("name: a\x00\ndescription: d", id="nul"),
        pytest.param(GOOD + "x: !!python/object/apply:os.system [echo pwned]", id="python-tag"),
        pytest.param("base: &b {name: a, description: d}\n<<: *b", id="merge-key"),
        pytest.param(GOOD + "maxTurns: 1e400", id="huge-float"),
        pytest.param(GOOD + "maxTurns: " + "9" * 400, id="huge-int"),
        # The repair retry: each forces it (the first line is invalid) and then stresses it.
        pytest.param("bad: a: b\n" + GOOD + "x: " + "[" * 600 + "]" * 600, id="repair-deep-list-value"),
        pytest.param("bad: a: b\n" + GOOD + "x: [" + "a, " * 50_000 + "]", id="repair-long-list-value"),
        pytest.param(GOOD + "k: a: b\n" * 5_000, id="repair-5000-lines"),
        pytest.param("name: a\ndescription: " + ": " * 50_000, id="repair-long-line"),
        pytest.param("name: a\ndescription: " + "\\" * 1000 + '"' * 1000 + ": x", id="repair-escapes"),
        pytest.param("name: a\ndescription: a: b\r\n\t\tx: [", id="repair-that-fails"),
        pytest.param("name: a\ndescription: x: *a &a", id="repair-alias-anchor"),
        pytest.param("\t" * 10_000 + "name: a\ndescription: x: y", id="repair-many-tabs"),
    ],
)
def test_hostile_frontmatter_loads_or_reports_one_error(tmp_path: Path, frontmatter: str) -> None:
    load_checked(tmp_path / "agent.md", f"---\n{frontmatter}\n---\nBody.\n".encode())


# Ten aliases per level, nine levels: 10**9 leaves if anything expands the aliases.
BOMB = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)
)
BOMB_PLACES = {
    "unknown-field": "",
    "maxTurns": "maxTurns: *l8\n",
    "tools": "tools: *l8\n",
    "disallowedTools": "disallowedTools: *l8\n",
    "model": "model: *l8\n",
    "description": "description: *l8\n",
    "subagents-value": "subagents: {max_tokens: *l8}\n",
    "subagents-field": "subagents: {boom: *l8}\n",
    "not-honoured-field": "hooks: *l8\n",
    "repaired": "bad: a: b\n",  # the retry reads the bomb a second time
}
# One child process imports the loader once, then forks a grandchild per case with a memory cap and a
# time limit, so a case that hangs or eats memory is named and cannot take the test run down with it.
BOMB_CHILD = """
import json, multiprocessing, resource, sys, time
from pathlib import Path
from subagents.definitions.loader import load_agent_file

def load(path, conn):
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))
    try:
        result = load_agent_file(path)
        conn.send("spec" if result.spec else "error: " + result.problems[0].message[:200])
    except BaseException as exc:
        conn.send(f"raised {type(exc).__name__}")

cases, directory, limit = json.loads(sys.stdin.read()), Path(sys.argv[1]), float(sys.argv[2])
fork = multiprocessing.get_context("fork")
for place, text in cases.items():
    path = directory / f"{place}.md"
    path.write_text(text, encoding="utf-8")
    ours, theirs = fork.Pipe()
    start = time.monotonic()
    proc = fork.Process(target=load, args=(path, theirs))
    proc.start()
    outcome = ours.recv() if ours.poll(limit) else f"still running after {limit} s"
    proc.kill()
    proc.join()
    print(json.dumps([place, round(time.monotonic() - start, 3), outcome]), flush=True)
"""
BOMB_SECONDS = 2.0


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork and resource limits")
def test_billion_laughs_alias_bomb_is_cheap_wherever_it_lands(tmp_path: Path) -> None:
    """PyYAML shares aliased nodes instead of copying them; nothing after it may expand them either."""
    cases = {place: f"---\n{GOOD}{BOMB}{extra}---\nBody.\n" for place, extra in BOMB_PLACES.items()}
    child = subprocess.run(
        [sys.executable, "-c", BOMB_CHILD, str(tmp_path), str(BOMB_SECONDS)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    done = {place: outcome for place, _, outcome in map(json.loads, child.stdout.splitlines())}
    assert done.keys() == cases.keys()
    bad = {place: outcome for place, outcome in done.items() if outcome.startswith(("still running", "raised"))}
    assert not bad, f"the alias bomb hangs, eats memory or raises: {bad}"
    assert done["unknown-field"] == done["maxTurns"] == done["repaired"] == "spec"  # a bad maxTurns is ignored
