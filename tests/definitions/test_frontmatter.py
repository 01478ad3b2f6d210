"""The frontmatter block as Claude Code 2.1.330 reads it: where it ends, YAML 1.2 scalars, the one repair.

The repair is Claude Code's own (read from its parser, then checked: claude_code_cases.py lists what it
loaded); here each rule is pinned on the loader, with the warning that names the repaired lines.
"""

from __future__ import annotations

import pytest

from subagents.definitions.frontmatter import InvalidAgentFile, quote_special_values, read_frontmatter


def fields(block: str) -> dict[str, object]:
    result = read_frontmatter(f"---\n{block}\n---\nBody\n")
    assert result is not None
    return result.data


def notes(block: str) -> tuple[str, ...]:
    result = read_frontmatter(f"---\n{block}\n---\nBody\n")
    assert result is not None
    return result.notes


def test_valid_yaml_is_read_without_a_note() -> None:
    assert fields("name: a\ndescription: 'it: is quoted'") == {"name": "a", "description": "it: is quoted"}
    assert notes("name: a\ndescription: d") == ()


def test_an_unquoted_colon_is_repaired_and_the_line_named() -> None:
    block = "name: a\ndescription: Use this agent when: the user asks\ntools: [Read, Grep]"
    assert fields(block) == {
        "name": "a",
        "description": "Use this agent when: the user asks",
        "tools": ["Read", "Grep"],
    }
    [note] = notes(block)
    assert note.startswith("repaired: the frontmatter is not valid YAML (mapping values are not allowed here (line 3))")
    assert "quoting the value on line 3." in note and "Quote such values" in note


def test_several_repaired_lines_are_all_named() -> None:
    [note] = notes("name: a\ndescription: when: x\nexample: user: hi")
    assert "quoting the values on lines 3, 4" in note


def test_the_repaired_value_comes_back_exactly() -> None:
    """Backslashes and double quotes are escaped before the value is put in double quotes."""
    value = 'Use "fix": C:\\temp\\n and `tick` # not a comment'
    assert fields(f"name: a\ndescription: {value}")["description"] == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("[note] use when: x", "'[' that does not close a list"),
        ('"Use when" the user: asks', "a value quoted only in part"),
        ("*alias value", "an undefined alias"),
        ("keep {braces}: here", "braces"),
    ],
)
def test_special_characters_are_quoted_whole(value: str, why: str) -> None:
    assert fields(f"name: a\ndescription: {value}")["description"] == value, why


def test_leading_tabs_become_two_spaces_each() -> None:
    data = fields("name: a\ndescription: tab indented: yes\nsubagents:\n\tmax_tokens: 5")
    assert data["subagents"] == {"max_tokens": 5}
    assert "reading leading tabs as spaces" in notes("name: a\ndescription: d\nsubagents:\n\tmax_tokens: 5")[0]


def test_what_the_repair_leaves_alone() -> None:
    raw = "x1: a: b\n  indented: a: b\nquoted: 'a: b'\nlist: [a, b]\nplain: text"
    fixed, quoted, crlf = quote_special_values(raw)
    assert (fixed, quoted, crlf) == (raw, [], False)  # digit keys, indented lines, quoted values, lists


def test_a_block_the_repair_cannot_fix_is_refused_with_the_first_error() -> None:
    with pytest.raises(InvalidAgentFile, match=r"not valid YAML: mapping values are not allowed here \(line 3\)"):
        fields("name: a\ndescription: foo: bar\n  more: x")


def test_a_crlf_file_is_repaired_and_the_note_says_claude_code_skips_it() -> None:
    """Claude Code's repair regex ends at `$` after `.`, which stops at \\r: its CRLF files stay broken."""
    result = read_frontmatter("---\r\nname: a\r\ndescription: Use when: asked\r\n---\r\nBody\r\n")
    assert result is not None and result.data["description"] == "Use when: asked"
    assert "so it skips this CRLF file" in result.notes[0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", "yes"),
        ("on", "on"),
        ("No", "No"),
        ("2026-03-01", "2026-03-01"),
        ("12:30", "12:30"),
        ("0o17", 15),
        ("0x1F", 31),
        ("012", 12),
        ("1e3", 1000.0),
        ("true", True),
        ("~", None),
    ],
)
def test_scalars_are_yaml_1_2_as_bun_reads_them(value: str, expected: object) -> None:
    """Claude Code listed `description: yes` and `description: 2026-03-01` as text, and refused
    `description: 0o17` for want of a text description."""
    assert fields(f"v: {value}")["v"] == expected


def test_the_block_ends_at_the_first_three_dashes_even_inside_a_line() -> None:
    result = read_frontmatter("---\nname: a\ndescription: a --- b\n---\nBody\n")
    assert result is not None
    assert result.data == {"name": "a", "description": "a"}
    assert result.body == "b\n---\nBody\n"  # `---\s*` takes the space after the dashes too
    assert result.notes[0].startswith("line 3: the frontmatter ends at the '---' inside this line")


@pytest.mark.parametrize("text", ["# notes\n", "", "----\nname: a\n----\n", "text\n---\nname: a\n---\n"])
def test_no_block(text: str) -> None:
    assert read_frontmatter(text) is None


def test_an_opened_block_that_never_closes_is_refused() -> None:
    with pytest.raises(InvalidAgentFile, match="never closed"):
        read_frontmatter("---\nname: a\ndescription: d\n")


def test_a_tab_after_a_colon_is_refused_as_the_pure_parser_refuses_it() -> None:
    """libyaml, which reads agent files where PyYAML has it, takes `key:<tab>value`; the pure parser, the
    reference of these rules, does not, and neither does the loader."""
    with pytest.raises(InvalidAgentFile, match="not valid YAML"):
        read_frontmatter("---\nname:\ta\ndescription: d\n---\nBody\n")
