"""Read one agent file the way Claude Code reads it, and say exactly what is wrong with it.

A file is markdown with YAML frontmatter between `---` lines; the body is the system prompt.
Problems come back as `Problem`s (error: the file is not loaded; warning: loaded, but something in
it is not honoured here; info: what a reader should know, such as a file that is not an agent),
never as a silent skip. Where Claude Code ignores a bad value (`maxTurns: many`, `model: 5`), so do we,
with a warning; where it refuses a file, so do we, with the reason.
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from subagents.definitions.frontmatter import InvalidAgentFile, NotAnAgentFile, read_frontmatter
from subagents.definitions.names import assign_tool_names, name_problem
from subagents.definitions.spec import RESERVED_NAMES, AgentSpec, SubagentsOptions

MAX_FILE_BYTES = 1024 * 1024  # Claude Code skips larger files

# Claude Code fields we accept but cannot honour, with what happens instead.
NOT_HONOURED = {
    "mcpServers": "subagents cannot connect a subagent to other MCP servers; the field is ignored",
    "hooks": "hooks are a Claude Code feature; they do not run here",
    "skills": "skills are not preloaded here",
    "memory": "persistent agent memory is not supported here",
    "permissionMode": "tools are always sandboxed here; writes happen in an isolated copy",
    "effort": "effort is not sent to the model here",
    "background": "every run here can be started in the background with start_agent",
}
# Claude Code fields that need nothing from us.
ACCEPTED = frozenset(
    {
        "name",
        "description",
        "tools",
        "disallowedTools",
        "model",
        "maxTurns",
        "color",
        "isolation",
        "initialPrompt",
        "autoCompactWindow",
        "omitClaudeMd",
        "observer",
        "observerMessage",
        "observeSubagents",
        "observeToolResults",
        "criticalSystemReminder_EXPERIMENTAL",
        "subagents",
    }
)
MODEL_ALIASES = ("inherit", "sonnet", "opus", "haiku", "fable")
# Settings under `subagents:` that the model API no longer takes: dropped with a warning, whatever their
# value, so a file written for an older server still loads (and never sends them).
RETIRED_OPTIONS = {
    name: "the Messages API version this server speaks (2026-10-21) refuses sampling parameters on every model"
    for name in ("temperature", "top_p", "top_k")
}


@dataclass(frozen=True)
class Problem:
    path: Path
    level: Literal["error", "warning", "info"]
    message: str

    def __str__(self) -> str:
        return f"{self.level.upper()} {self.path}: {self.message}"


@dataclass(frozen=True)
class LoadResult:
    spec: AgentSpec | None
    problems: tuple[Problem, ...]


_Invalid = InvalidAgentFile  # the name the loader's callers and tests know


def load_agent_file(path: Path, *, layer: str = "project") -> LoadResult:
    """One file: its agent and warnings, or the one reason it is not loaded (never an exception)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            reason = "the file is larger than 1 MiB; Claude Code skips it too"
            return LoadResult(None, (Problem(path, "error", reason),))
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return LoadResult(None, (Problem(path, "error", f"cannot read the file ({exc})"),))
    try:
        spec, warnings = parse_agent(text, path=path, layer=layer)
    except NotAnAgentFile as exc:
        return LoadResult(None, (Problem(path, "info", f"not an agent file, skipped: {exc}"),))
    except _Invalid as exc:
        return LoadResult(None, (Problem(path, "error", str(exc)),))
    return LoadResult(spec, tuple(Problem(path, "warning", w) for w in warnings))


def parse_agent(text: str, *, path: Path | None = None, layer: str = "inline") -> tuple[AgentSpec, list[str]]:
    """One agent from its file's text, with what a reader should be warned of; raises when it cannot load."""
    frontmatter = read_frontmatter(text)
    if frontmatter is None:
        raise NotAnAgentFile("no frontmatter (an agent file starts with a '---' line, then name: and description:)")
    data = frontmatter.data
    warnings = list(frontmatter.notes)
    name = _name(data)
    tools, tool_notes = parse_tool_list(data.get("tools"), "tools", absent="tools" not in data)
    denied, denied_notes = parse_tool_list(data.get("disallowedTools"), "disallowedTools")
    spec = AgentSpec(
        name=assign_tool_names([name], RESERVED_NAMES)[name],
        declared_name=name,
        description=_description(data),
        prompt=frontmatter.body.strip(),
        tools=tools,
        disallowed_tools=denied or (),
        model=_model(data, warnings),
        max_turns=_max_turns(data, warnings),
        options=_options(data, warnings),
        source=path,
        layer=layer,
        fields=data,
    )
    warnings += tool_notes + denied_notes + _field_warnings(data)
    if not spec.prompt:
        warnings.append("the body is empty, so the agent has no system prompt")
    return spec, warnings


def _name(data: dict[str, Any]) -> str:
    name = data.get("name")
    if name is None or name == "":
        if data.get("description") is None:
            raise NotAnAgentFile("its frontmatter has no name and no description")
        raise _Invalid("missing required field 'name' (e.g. name: my-agent)")
    if not isinstance(name, str):
        raise _Invalid(f"'name' must be text, got {type(name).__name__} {reprlib.repr(name)}; quote it")
    problem = name_problem(name)
    if problem is not None:
        raise _Invalid(f"invalid name {reprlib.repr(name)}: {problem}")
    return name


def _description(data: dict[str, Any]) -> str:
    desc = data.get("description")
    if not isinstance(desc, str) or not desc:
        raise _Invalid("missing required field 'description' (it tells the client when to use this agent)")
    # Claude Code turns a written backslash-n into a line break.
    desc = desc.replace("\\n", "\n").strip()
    if not desc:
        raise _Invalid("the 'description' is blank; say when the client should use this agent")
    return desc


# Claude Code splits a tool string at commas and spaces, except inside parentheses: `Bash(git diff:*)`.
def _split_tools(items: list[str]) -> list[str]:
    tokens: list[str] = []
    for item in items:
        token, nested = "", False
        for char in item:
            if char in "()":
                nested = char == "("
                token += char
            elif char in ", " and not nested:
                if token.strip():
                    tokens.append(token.strip())
                token = ""
            elif token or char.strip():
                token += char
        if token.strip():
            tokens.append(token.strip())
    return tokens


def parse_tool_list(value: Any, field: str, *, absent: bool = False) -> tuple[tuple[str, ...] | None, list[str]]:
    """`tools`/`disallowedTools` as Claude Code reads them: a string or list of names split at commas and
    spaces; `*` means every tool; an empty or unreadable value means none. Returns (names, warnings);
    names is None for every tool."""
    if absent:
        return None, []
    notes: list[str] = []
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list):
        items = [v for v in value if isinstance(v, str)]
        if len(items) < len(value):
            notes.append(f"'{field}' entries that are not text are ignored (as in Claude Code)")
    else:
        items = []
        if value not in (None, False, 0):
            notes.append(f"'{field}' must be a comma-separated string or a list of tool names")
    tokens = _split_tools(items)
    if "*" in tokens:
        if field == "disallowedTools":
            return (), [*notes, "'disallowedTools: *' denies nothing in Claude Code, so nothing is denied here"]
        return None, notes
    # `Bash(git:*)` style permission rules name the tool before the parenthesis.
    names = tuple(dict.fromkeys(n for n in (t.split("(", 1)[0].strip() for t in tokens) if n))
    if field == "tools" and not names:
        notes = [
            "; ".join(
                [
                    *notes,
                    "'tools' names no tool, so the agent gets none (as in Claude Code); "
                    "leave the field out to give it every tool",
                ]
            )
        ]
    return names, notes


def _model(data: dict[str, Any], warnings: list[str]) -> str:
    model = data.get("model")
    if model is None:
        return "inherit"
    if not isinstance(model, str) or not model.strip():
        warnings.append(
            f"'model' {reprlib.repr(model)} is ignored, as Claude Code ignores it, so the agent inherits the "
            f"model; use {', '.join(MODEL_ALIASES)} or a full model id"
        )
        return "inherit"
    model = model.strip()
    if model.lower() in MODEL_ALIASES:
        return model.lower()
    if not model.startswith("claude-"):
        warnings.append(f"model {model!r} is not an alias or a claude- model id; it is sent to the API as written")
    return model


def _max_turns(data: dict[str, Any], warnings: list[str]) -> int | None:
    value = data.get("maxTurns")
    if value is None:
        return None
    turns = _whole_number(value)
    if turns is None or turns < 1:
        warnings.append(
            f"'maxTurns' {reprlib.repr(value)} is ignored, as Claude Code ignores it (a positive whole number "
            "is needed), so the server's default applies"
        )
        return None
    return turns


_EXPONENT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+")
_GROUPED = re.compile(r"[+-]?[0-9]{1,3}([_,\u00a0\u202f ])[0-9]{3}(?:\1[0-9]{3})*")
_LEADING_INT = re.compile(r"[+-]?[0-9]+")


def _whole_number(value: object) -> int | None:
    """A number as Claude Code reads maxTurns: integral numbers, and text read like JavaScript's parseInt
    (`'5'`, `'5 turns'`, `'1e1'`, `'1,000'`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if len(text) <= 32 and _EXPONENT.fullmatch(text):
            number = float(text)
            return int(number) if math.isfinite(number) and number.is_integer() else None
        if len(text) <= 32 and _GROUPED.fullmatch(text):
            return int(re.sub(r"[_,\u00a0\u202f ]", "", text))
        match = _LEADING_INT.match(text)
        return int(match.group()) if match else None
    except ValueError:  # more than 4300 digits
        return None


def _options(data: dict[str, Any], warnings: list[str]) -> SubagentsOptions:
    raw = data.get("subagents")
    if raw is None:
        return SubagentsOptions()
    if not isinstance(raw, dict):
        raise _Invalid("'subagents' must be a mapping, e.g. subagents: {max_tokens: 4096}")
    raw = dict(raw)
    for name, why in RETIRED_OPTIONS.items():
        if name in raw:
            raw.pop(name)
            warnings.append(f"'subagents.{name}' is not honoured and is dropped: {why}; remove it from the file")
    try:
        return SubagentsOptions.model_validate(raw)
    except ValidationError as exc:
        reasons = "; ".join(f"subagents.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise _Invalid(f"invalid 'subagents' settings: {reasons}") from None


def _field_warnings(data: dict[str, Any]) -> list[str]:
    warnings = [f"'{key}' is not honoured: {why}" for key, why in NOT_HONOURED.items() if key in data]
    unknown = sorted(k for k in data if k not in ACCEPTED and k not in NOT_HONOURED)
    if unknown:
        warnings.append(
            f"unknown fields ignored: {', '.join(map(str, unknown))} (a typo? see Claude Code's "
            "subagent fields; our own settings go under 'subagents:')"
        )
    return warnings
