"""The frontmatter block of an agent file, read as Claude Code 2.1 reads it.

Three rules, each found in Claude Code's own parser and checked against it (tests/definitions):
- The block opens with `---` on the first line and ends at the first `---` after it, even one inside a
  line (`description: a --- b` ends the block after `a`).
- Scalars follow YAML 1.2 (Bun's parser): `yes`, `on` and `2026-03-01` stay text, `0o17` is a number.
- When the block is not valid YAML, it is read once more after quoting every plain `key: value` line
  whose value holds a YAML-special character (`: `, `#`, `[`, `*`, ...), and after turning leading tabs
  into spaces. Claude Code does this silently; here the repair is reported with its line numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml


class InvalidAgentFile(Exception):
    """One reason the file cannot be loaded."""


class NotAnAgentFile(InvalidAgentFile):
    """A markdown file that does not try to be an agent (a README, notes): skipped, not broken."""


@dataclass(frozen=True)
class Frontmatter:
    data: dict[str, Any]
    body: str
    notes: tuple[str, ...]  # how the block was read, where that differs from plain YAML


# Claude Code: /^---\s*\n([\s\S]*?)---\s*\n?/ on the text without its byte order mark.
_BLOCK = re.compile(r"---\s*\n(.*?)---\s*\n?", re.DOTALL)
_OPENING = re.compile(r"---[ \t]*\r?\n")
# Claude Code's repair, line by line: /^([a-zA-Z_-]+):\s+(\S.*)$/ (JavaScript's `.` stops at \r, \u2028, \u2029).
_PLAIN_LINE = re.compile(r"([a-zA-Z_-]+):\s+(\S[^\n\r\u2028\u2029]*)")
_SPECIAL = re.compile(r"[{}\[\]*&#!|>%@`]|: ")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
# Longer `[...]` values are quoted without first checking whether they read as a list (Claude Code checks
# any length): the check is a second YAML parse, pure Python where PyYAML lacks libyaml, so it is kept cheap.
_MAX_LIST_CHECK = 10_000


def _int12(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    value = str(loader.construct_scalar(node))
    if value.startswith(("0o", "0x")):
        return int(value[2:], 8 if value[1] == "o" else 16)
    return int(value)


def _yaml12(loader: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    """`loader` with YAML 1.2 core-schema scalars, as Bun (Claude Code's runtime) reads them."""
    loader.yaml_implicit_resolvers = {}
    for tag, pattern, first in (
        ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
        ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
        (
            "float",
            r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
            "-+.0123456789",
        ),
        ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
        ("merge", r"<<", "<"),
    ):
        loader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(f"^(?:{pattern})$"), list(first))
    loader.add_constructor("tag:yaml.org,2002:int", _int12)
    return loader


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, YAML 1.2 scalars: the reference reading, and the words of its errors."""


class _FastYaml12Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same reading on libyaml's parser, where PyYAML has it: about ten times faster at start-up."""


_yaml12(_Yaml12Loader)
_yaml12(_FastYaml12Loader)


def split_frontmatter(text: str) -> tuple[str, str, list[str]] | None:
    """Return (yaml, body, notes), or None when the file has no frontmatter block."""
    text = text.removeprefix("\ufeff")
    match = _BLOCK.match(text)
    if match is None:
        if _OPENING.match(text):
            raise InvalidAgentFile("the frontmatter opened with '---' is never closed by a '---' line")
        return None
    raw, body = match.group(1), text[match.end() :]
    notes = []
    if raw and not raw.endswith("\n"):
        line = raw.count("\n") + 2
        notes.append(
            f"line {line}: the frontmatter ends at the '---' inside this line, as in Claude Code; the rest "
            "of the file is the body (quote a value that holds '---')"
        )
    return raw, body, notes


def read_frontmatter(text: str) -> Frontmatter | None:
    """The fields and body of an agent file, or None when it has no frontmatter block."""
    parts = split_frontmatter(text)
    if parts is None:
        return None
    raw, body, notes = parts
    try:
        data = _load(raw)
    except yaml.YAMLError as exc:
        data, note = _repaired(raw, exc)
        notes.append(note)
    if not isinstance(data, dict):
        raise InvalidAgentFile("the frontmatter must be a YAML mapping of fields (name: ..., description: ...)")
    # YAML reads `on:` or `1:` as non-text keys; keep them as names, so they are reported as unknown fields.
    fields = {k if isinstance(k, str) else str(k): v for k, v in data.items()}
    return Frontmatter(fields, body, tuple(notes))


def _load(raw: str) -> Any:
    try:
        return _parse(raw) if raw.strip() else {}
    except RecursionError:
        raise InvalidAgentFile("the frontmatter is nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InvalidAgentFile(f"the frontmatter holds a value that cannot be read: {exc}") from None


# Where libyaml reads a block otherwise than the pure parser (the differential test in test_loader_fuzz
# found these): a tab after `key:`, a byte order mark inside the block, an empty `!` tag (text, not null),
# and `|#` or `>#` (a comment without a space). Such blocks are read by the pure parser only.
_PURE_ONLY = re.compile(r"[\t\ufeff]|(?:^|[\s\[\]{},])!|[|>][-+0-9]*#", re.MULTILINE)


def _parse(raw: str) -> Any:
    """The block as the pure parser reads it, by libyaml where the two agree; a block libyaml refuses is
    read again by the pure parser, so its answer and the words of its error are the same as before."""
    if _PURE_ONLY.search(raw) is None:
        try:
            return yaml.load(raw, Loader=_FastYaml12Loader)
        except (yaml.YAMLError, RecursionError, ValueError):
            pass
    return yaml.load(raw, Loader=_Yaml12Loader)


def _repaired(raw: str, error: yaml.YAMLError) -> tuple[Any, str]:
    """Claude Code's one retry: the data read from the repaired block, and a note naming the lines."""
    reason = yaml_reason(error)
    fixed, quoted, crlf = quote_special_values(raw)
    if fixed == raw:
        raise InvalidAgentFile(f"the frontmatter is not valid YAML: {reason}")
    try:
        data = _load(fixed)
    except yaml.YAMLError:
        raise InvalidAgentFile(f"the frontmatter is not valid YAML: {reason}") from None
    done = [_quoting(quoted)] if quoted else []
    done += ["reading leading tabs as spaces"] if _LEADING_TABS.search(raw) else []
    note = (
        f"repaired: the frontmatter is not valid YAML ({reason}); it was read as Claude Code reads it, after "
        f"{' and '.join(done)}. Quote such values in the file to make it valid YAML"
    )
    if crlf:
        note += " (Claude Code repairs only lines that end in LF, so it skips this CRLF file)"
    return data, note


def _quoting(quoted: list[int]) -> str:
    lines = ", ".join(str(n + 1) for n in quoted)  # +1: the opening '---' is line 1 of the file
    return f"quoting the value on line {lines}" if len(quoted) == 1 else f"quoting the values on lines {lines}"


def quote_special_values(raw: str) -> tuple[str, list[int], bool]:
    """Claude Code's repair: quote plain values that hold YAML-special characters, tabs become spaces.
    Returns the new text, the frontmatter line numbers (from 1) it quoted, and whether one ended in CR."""
    out: list[str] = []
    quoted: list[int] = []
    crlf = False
    for number, line in enumerate(raw.split("\n"), start=1):
        bare = line.removesuffix("\r")
        match = _PLAIN_LINE.fullmatch(bare)
        if match is not None and _needs_quotes(match.group(2)):
            key, value = match.groups()
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'{key}: "{escaped}"')
            quoted.append(number)
            crlf = crlf or bare != line
            continue
        out.append(line)
    fixed = _LEADING_TABS.sub(lambda m: "  " * len(m.group()), "\n".join(out))
    return fixed, quoted, crlf


def _needs_quotes(value: str) -> bool:
    if len(value) >= 1 and value[0] == value[-1] and value[0] in "\"'":
        return False
    if value.startswith("[") and value.endswith("]") and len(value) <= _MAX_LIST_CHECK:
        try:
            if isinstance(_parse(value), list):
                return False
        except (yaml.YAMLError, RecursionError, ValueError):
            pass
    return _SPECIAL.search(value) is not None


def yaml_reason(exc: yaml.YAMLError) -> str:
    """The parser's complaint and the file line it points at."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    # +2: the opening '---' line, and YAML counts from zero.
    return f"{problem} (line {mark.line + 2})" if mark is not None else str(problem)
