"""Every frontmatter rule of the agent file format, as Claude Code reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from subagents.definitions.loader import load_agent_file, parse_agent
from subagents.definitions.spec import ALL_TOOLS, READ_TOOLS
from tests.conftest import write_agent


def load(tmp_path: Path, frontmatter: str, body: str = "Body prompt.") -> tuple:  # type: ignore[type-arg]
    result = load_agent_file(write_agent(tmp_path, "a.md", frontmatter, body))
    return (
        result.spec,
        [p.message for p in result.problems if p.level == "error"],
        [p.message for p in result.problems if p.level == "warning"],
    )


def warned(warnings: list[str], *parts: str) -> bool:
    return any(all(part in w for part in parts) for w in warnings)


def test_minimal_file_loads_with_body_as_prompt(tmp_path: Path) -> None:
    spec, errors, warnings = load(tmp_path, "name: rev\ndescription: Reviews code.", "\n  You review.\n\n")
    assert errors == [] and warnings == []
    assert (spec.name, spec.description, spec.prompt, spec.model) == ("rev", "Reviews code.", "You review.", "inherit")
    assert spec.tools is None and spec.effective_tools == ALL_TOOLS  # omitted: inherits every tool
    assert spec.writes is True


@pytest.mark.parametrize("tools", ["Read, Grep,Glob", "[Read, Grep, Glob]", "\n  - Read\n  - Grep\n  - Glob"])
def test_tools_as_comma_string_or_yaml_list(tmp_path: Path, tools: str) -> None:
    spec, errors, _ = load(tmp_path, f"name: a\ndescription: d\ntools: {tools}")
    assert errors == []
    assert spec.effective_tools == ("Read", "Grep", "Glob")
    assert spec.writes is False


def test_disallowed_tools_applied_before_tools(tmp_path: Path) -> None:
    spec, _, _ = load(tmp_path, "name: a\ndescription: d\ntools: [Read, Grep, Write]\ndisallowedTools: Write")
    assert spec.effective_tools == ("Read", "Grep")
    assert spec.writes is False


def test_disallowed_tools_without_tools_narrows_the_inherited_set(tmp_path: Path) -> None:
    spec, _, _ = load(
        tmp_path, "name: a\ndescription: d\ndisallowedTools: [Write, Edit, MultiEdit, NotebookEdit, Bash, Agent]"
    )
    assert spec.effective_tools == (*READ_TOOLS, "TodoWrite", "WebFetch", "WebSearch")  # Agent denies Task too


def test_permission_rule_syntax_names_the_tool(tmp_path: Path) -> None:
    spec, _, _ = load(tmp_path, "name: a\ndescription: d\ntools: Read, Bash(git diff:*)")
    assert spec.effective_tools == ("Read", "Bash")


def test_tools_this_server_may_lack_are_kept_for_the_server_to_judge(tmp_path: Path) -> None:
    """Whether an agent gets WebFetch depends on the server's flags, so loading keeps every name as written;
    grants.py decides and reports (tests/test_grants.py)."""
    spec, errors, _ = load(tmp_path, "name: a\ndescription: d\ntools: Read, WebFetch, mcp__github__*")
    assert errors == [] and spec.effective_tools == ("Read", "WebFetch", "mcp__github__*")


@pytest.mark.parametrize("tools", ["{Read: true}", "5", "true", "''", ""])
def test_tools_that_name_nothing_give_no_tools_with_a_warning(tmp_path: Path, tools: str) -> None:
    """Claude Code 2.1.330 lists such an agent as `(Tools: All tools)`, but the subagent's own request
    carried no tools at all (observed for `tools:` and `tools: {Read: true}`)."""
    spec, errors, warnings = load(tmp_path, f"name: a\ndescription: d\ntools: {tools}")
    assert errors == [] and spec.tools == () and spec.effective_tools == () and spec.writes is False
    assert warned(warnings, "'tools' names no tool, so the agent gets none")


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        ("Read Grep Glob", ("Read", "Grep", "Glob")),
        ("Read, Bash(git diff:*) Grep", ("Read", "Bash", "Grep")),
        ("[Read Grep, Glob]", ("Read", "Grep", "Glob")),
        ("'Read,,  Grep '", ("Read", "Grep")),
    ],
)
def test_tools_split_at_commas_and_spaces_outside_parentheses(tmp_path: Path, tools: str, expected: tuple) -> None:  # type: ignore[type-arg]
    """Claude Code listed `Read Grep Glob` as `(Tools: Read, Grep, Glob)` and sent exactly those tools."""
    spec, errors, warnings = load(tmp_path, f"name: a\ndescription: d\ntools: {tools}")
    assert errors == [] and warnings == [] and spec.tools == expected


@pytest.mark.parametrize("tools", ['"*"', "[Read, '*']"])
def test_star_means_every_tool(tmp_path: Path, tools: str) -> None:
    spec, errors, warnings = load(tmp_path, f"name: a\ndescription: d\ntools: {tools}")
    assert errors == [] and warnings == [] and spec.tools is None
    assert spec.effective_tools == ALL_TOOLS


def test_star_in_disallowed_tools_denies_nothing(tmp_path: Path) -> None:
    spec, _, warnings = load(tmp_path, "name: a\ndescription: d\ndisallowedTools: '*'")
    assert spec.effective_tools == ALL_TOOLS and warned(warnings, "denies nothing")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sonnet", "sonnet"),
        ("Opus", "opus"),
        ("haiku", "haiku"),
        ("fable", "fable"),
        ("inherit", "inherit"),
        ("claude-opus-5-5", "claude-opus-5-5"),
    ],
)
def test_model_aliases_and_full_ids(tmp_path: Path, value: str, expected: str) -> None:
    spec, errors, warnings = load(tmp_path, f"name: a\ndescription: d\nmodel: {value}")
    assert errors == [] and warnings == [] and spec.model == expected


def test_unusual_model_id_is_kept_with_a_warning(tmp_path: Path) -> None:
    """Claude Code sent `model: gpt-4` to the API as written."""
    spec, _, warnings = load(tmp_path, "name: a\ndescription: d\nmodel: gpt-9")
    assert spec.model == "gpt-9" and any("gpt-9" in w for w in warnings)


@pytest.mark.parametrize("model", ["5", "[opus]", "''", "'  '", "true"])
def test_a_model_that_is_not_text_is_ignored_with_a_warning(tmp_path: Path, model: str) -> None:
    """Claude Code ran a `model: 5` agent on the main conversation's model."""
    spec, errors, warnings = load(tmp_path, f"name: a\ndescription: d\nmodel: {model}")
    assert errors == [] and spec.model == "inherit" and warned(warnings, "'model'", "is ignored")


def test_max_turns(tmp_path: Path) -> None:
    spec, errors, _ = load(tmp_path, "name: a\ndescription: d\nmaxTurns: 7")
    assert errors == [] and spec.max_turns == 7


@pytest.mark.parametrize(
    ("value", "turns"),
    [("'5'", 5), ("1 turn", 1), ("' 12 '", 12), ("1.0", 1), ("'1e1'", 10), ("'1,000'", 1000), ("'2.5'", 2)],
)
def test_max_turns_is_read_as_claude_code_reads_it(tmp_path: Path, value: str, turns: int) -> None:
    """Claude Code stopped agents with maxTurns '1', '1 turn' and 1.0 after one turn: text reads like
    JavaScript's parseInt, and a number counts when it is whole."""
    spec, errors, warnings = load(tmp_path, f"name: a\ndescription: d\nmaxTurns: {value}")
    assert errors == [] and warnings == [] and spec.max_turns == turns


@pytest.mark.parametrize("bad", ["0", "-3", "many", "true", "2.5", "[3]", "'1e400'", "'" + "9" * 5000 + "'"])
def test_bad_max_turns_is_ignored_with_a_warning(tmp_path: Path, bad: str) -> None:
    """Claude Code loaded `maxTurns: many` and ran a `maxTurns: 0` agent past three turns: no limit."""
    spec, errors, warnings = load(tmp_path, f"name: a\ndescription: d\nmaxTurns: {bad}")
    assert errors == [] and spec.max_turns is None and warned(warnings, "'maxTurns'", "is ignored")


@pytest.mark.parametrize(
    ("frontmatter", "reason"),
    [
        ("description: d", "missing required field 'name'"),
        ("name: a", "missing required field 'description'"),
        ("name: a\ndescription: ''", "missing required field 'description'"),
        ("name: -bad\ndescription: d", "invalid name '-bad': names must not start with '-'"),
        ("name: 'plugin:agent'\ndescription: d", "invalid name 'plugin:agent': names must not contain ':'"),
        ("name: 'a\uff1ab'\ndescription: d", "must not contain ':'"),
        ("name: " + "b" * 257 + "\ndescription: d", "at most 256 characters"),
        ("name: 12\ndescription: d", "'name' must be text, got int 12"),
        ("name: a\ndescription: [x]", "missing required field 'description'"),
        ("name: a\ndescription: 0o17", "missing required field 'description'"),
        ("name: a\ndescription: '\\n '", "'description' is blank"),
        ("name: a\ndescription: foo: bar\n  more: x", "not valid YAML"),
        ("- just\n- a list", "must be a YAML mapping"),
    ],
)
def test_broken_files_are_reported_with_a_reason(tmp_path: Path, frontmatter: str, reason: str) -> None:
    spec, errors, _ = load(tmp_path, frontmatter)
    assert spec is None
    assert len(errors) == 1 and reason in errors[0]


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    _, errors, _ = load(tmp_path, "name: a\ndescription: foo: bar\n  more: x")
    assert errors == ["the frontmatter is not valid YAML: mapping values are not allowed here (line 3)"]


@pytest.mark.parametrize(
    "text", ["# Just notes\n", "", "---\n---\nNotes.\n", "---\ntitle: Notes\n---\n", "----\nname: a\n----\n"]
)
def test_a_file_that_is_not_an_agent_is_an_info_line_not_an_error(tmp_path: Path, text: str) -> None:
    """Claude Code skips a README (no frontmatter, or frontmatter without a name) without a word."""
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    result = load_agent_file(path)
    assert result.spec is None and [(p.level, p.path) for p in result.problems] == [("info", path)]
    assert result.problems[0].message.startswith("not an agent file")


def test_a_name_without_a_description_is_still_an_error(tmp_path: Path) -> None:
    spec, errors, _ = load(tmp_path, "description: d\ncolor: red")
    assert spec is None and errors == ["missing required field 'name' (e.g. name: my-agent)"]


def test_a_file_over_one_mebibyte_is_refused_as_in_claude_code(tmp_path: Path) -> None:
    path = write_agent(tmp_path, "big.md", "name: big\ndescription: d", "x" * (1024 * 1024))
    result = load_agent_file(path)
    assert result.spec is None and "larger than 1 MiB" in result.problems[0].message


def test_a_written_backslash_n_in_the_description_is_a_line_break(tmp_path: Path) -> None:
    spec, _, _ = load(tmp_path, "name: a\ndescription: one\\ntwo")
    assert spec.description == "one\ntwo"


def test_names_claude_code_takes_load_under_an_mcp_tool_name(tmp_path: Path) -> None:
    spec, errors, warnings = load(tmp_path, "name: powershell-5.1-expert\ndescription: d")
    assert errors == [] and warnings == []
    assert (spec.agent_name, spec.name, spec.renamed) == ("powershell-5.1-expert", "powershell-5-1-expert", True)


def test_unclosed_frontmatter_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "open.md"
    path.write_text("---\nname: a\ndescription: d\nbody without end\n", encoding="utf-8")
    assert "never closed" in load_agent_file(path).problems[0].message


def test_byte_order_mark_and_crlf_are_accepted() -> None:
    spec, _ = parse_agent("\ufeff---\r\nname: a\r\ndescription: d\r\n---\r\nPrompt\r\n")
    assert spec.name == "a" and spec.prompt == "Prompt"


def test_every_claude_code_field_is_accepted(tmp_path: Path) -> None:
    spec, errors, warnings = load(
        tmp_path,
        """
name: full
description: d
tools: Read
model: haiku
maxTurns: 3
color: purple
isolation: worktree
initialPrompt: go
omitClaudeMd: true
autoCompactWindow: 50000
""",
    )
    assert errors == [] and warnings == [] and spec.fields["color"] == "purple"


@pytest.mark.parametrize(
    "field",
    [
        "mcpServers: [github]",
        "hooks: {}",
        "skills: [x]",
        "memory: project",
        "permissionMode: plan",
        "effort: high",
        "background: true",
    ],
)
def test_fields_we_cannot_honour_are_warned_about(tmp_path: Path, field: str) -> None:
    spec, errors, warnings = load(tmp_path, f"name: a\ndescription: d\n{field}")
    key = field.split(":")[0]
    assert spec is not None and errors == []
    assert any(f"'{key}' is not honoured" in w for w in warnings)


def test_unknown_fields_are_warned_about(tmp_path: Path) -> None:
    _, _, warnings = load(tmp_path, "name: a\ndescription: d\nmaxturns: 3")
    assert any("unknown fields ignored: maxturns" in w for w in warnings)


def test_subagents_options(tmp_path: Path) -> None:
    spec, errors, _ = load(tmp_path, "name: a\ndescription: d\nsubagents:\n  max_tokens: 2048\n  timeout: 90")
    assert errors == []
    assert (spec.options.max_tokens, spec.options.timeout) == (2048, 90)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ("{max_tokens: 0}", "subagents.max_tokens"),
        ("{temprature: 0.2}", "subagents.temprature"),
        ("5", "'subagents' must be a mapping"),
    ],
)
def test_bad_subagents_options_are_errors(tmp_path: Path, options: str, reason: str) -> None:
    spec, errors, _ = load(tmp_path, f"name: a\ndescription: d\nsubagents: {options}")
    assert spec is None and reason in errors[0]


def test_empty_body_is_warned_about(tmp_path: Path) -> None:
    _, _, warnings = load(tmp_path, "name: a\ndescription: d", body="")
    assert any("no system prompt" in w for w in warnings)


@pytest.mark.parametrize("setting", ["temperature: 0.2", "temperature: 1.7", "top_p: 0.9", "top_k: many"])
def test_sampling_parameters_are_dropped_with_a_warning_whatever_their_value(setting: str) -> None:
    """The API refuses them, so a file that sets one still loads (even out of range), and never sends it."""
    spec, warnings = parse_agent(f"---\nname: a\ndescription: d\nsubagents:\n  {setting}\n  timeout: 9\n---\nbody")
    name = setting.split(":")[0]
    assert spec.options.temperature is None and spec.options.timeout == 9
    assert [w for w in warnings if name in w] == [
        f"'subagents.{name}' is not honoured and is dropped: the Messages API version this server speaks "
        "(2026-10-21) refuses sampling parameters on every model; remove it from the file"
    ]
