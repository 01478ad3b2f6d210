"""Every frontmatter rule of the agent file format, as Claude Code reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from subagents.definitions.loader import load_agent_file, parse_agent
from subagents.definitions.spec import READ_TOOLS, WRITE_TOOLS
from tests.conftest import write_agent


def load(tmp_path: Path, frontmatter: str, body: str = "Body prompt.") -> tuple:  # type: ignore[type-arg]
    result = load_agent_file(write_agent(tmp_path, "a.md", frontmatter, body))
    return (
        result.spec,
        [p.message for p in result.problems if p.level == "error"],
        [p.message for p in result.problems if p.level == "warning"],
    )


def test_minimal_file_loads_with_body_as_prompt(tmp_path: Path) -> None:
    spec, errors, warnings = load(tmp_path, "name: rev\ndescription: Reviews code.", "\n  You review.\n\n")
    assert errors == [] and warnings == []
    assert (spec.name, spec.description, spec.prompt, spec.model) == ("rev", "Reviews code.", "You review.", "inherit")
    assert spec.tools is None and spec.effective_tools == READ_TOOLS + WRITE_TOOLS  # omitted: inherits every tool
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
        tmp_path, "name: a\ndescription: d\ndisallowedTools: [Write, Edit, MultiEdit, NotebookEdit, Bash]"
    )
    assert spec.effective_tools == READ_TOOLS


def test_permission_rule_syntax_names_the_tool(tmp_path: Path) -> None:
    spec, _, _ = load(tmp_path, "name: a\ndescription: d\ntools: Read, Bash(git diff:*)")
    assert spec.effective_tools == ("Read", "Bash")


def test_unknown_tools_are_warned_about_not_dropped_silently(tmp_path: Path) -> None:
    spec, errors, warnings = load(tmp_path, "name: a\ndescription: d\ntools: Read, WebFetch, mcp__github__*")
    assert errors == [] and spec is not None
    assert any("WebFetch" in w and "mcp__github__*" in w and "not available" in w for w in warnings)


def test_tools_of_wrong_type_is_an_error(tmp_path: Path) -> None:
    spec, errors, _ = load(tmp_path, "name: a\ndescription: d\ntools: {Read: true}")
    assert spec is None and "'tools' must be a comma-separated string or a list" in errors[0]


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
    spec, _, warnings = load(tmp_path, "name: a\ndescription: d\nmodel: gpt-9")
    assert spec.model == "gpt-9" and any("gpt-9" in w for w in warnings)


def test_max_turns(tmp_path: Path) -> None:
    spec, errors, _ = load(tmp_path, "name: a\ndescription: d\nmaxTurns: 7")
    assert errors == [] and spec.max_turns == 7


@pytest.mark.parametrize("bad", ["0", "-3", "'5'", "true", "2.5"])
def test_bad_max_turns_is_an_error_naming_the_field(tmp_path: Path, bad: str) -> None:
    spec, errors, _ = load(tmp_path, f"name: a\ndescription: d\nmaxTurns: {bad}")
    assert spec is None and "'maxTurns' must be a positive whole number" in errors[0]


@pytest.mark.parametrize(
    ("frontmatter", "reason"),
    [
        ("description: d", "missing required field 'name'"),
        ("name: a", "missing required field 'description'"),
        ("name: a\ndescription: ''", "missing required field 'description'"),
        ("name: -bad\ndescription: d", "invalid name '-bad'"),
        ("name: 'plugin:agent'\ndescription: d", "invalid name 'plugin:agent'"),
        ("name: has space\ndescription: d", "invalid name 'has space'"),
        ("name: café\ndescription: d", "invalid name 'café'"),
        ("name: 12\ndescription: d", "'name' must be a string"),
        ("name: get_run\ndescription: d", "taken by one of the server's own tools"),
        ("name: a\ndescription: d\ntools: [Read\nmodel: x", "not valid YAML"),
        ("- just\n- a list", "must be a YAML mapping"),
    ],
)
def test_broken_files_are_reported_with_a_reason(tmp_path: Path, frontmatter: str, reason: str) -> None:
    spec, errors, _ = load(tmp_path, frontmatter)
    assert spec is None
    assert len(errors) == 1 and reason in errors[0]


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    _, errors, _ = load(tmp_path, "name: a\ndescription: d\ntools: [Read\nmodel: x")
    assert "line " in errors[0]


def test_file_without_frontmatter_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Just notes\n", encoding="utf-8")
    result = load_agent_file(path)
    assert result.spec is None and "no YAML frontmatter" in result.problems[0].message
    assert result.problems[0].path == path


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
    spec, errors, _ = load(
        tmp_path, "name: a\ndescription: d\nsubagents:\n  max_tokens: 2048\n  temperature: 0.2\n  timeout: 90"
    )
    assert errors == []
    assert (spec.options.max_tokens, spec.options.temperature, spec.options.timeout) == (2048, 0.2, 90)


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
