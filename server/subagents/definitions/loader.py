"""Read one agent file the way Claude Code reads it, and say exactly what is wrong with it.

A file is markdown with YAML frontmatter between `---` lines; the body is the system prompt.
Problems come back as `Problem`s (error: the file is not loaded; warning: loaded, but something in
it is not honoured here), never as a silent skip.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from subagents.definitions.spec import (
    NAME_PATTERN,
    READ_TOOLS,
    RESERVED_NAMES,
    WRITE_TOOLS,
    AgentSpec,
    SubagentsOptions,
)

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


@dataclass(frozen=True)
class Problem:
    path: Path
    level: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        return f"{self.level.upper()} {self.path}: {self.message}"


@dataclass(frozen=True)
class LoadResult:
    spec: AgentSpec | None
    problems: tuple[Problem, ...]


class _Invalid(Exception):
    """One reason the file cannot be loaded."""


def split_frontmatter(text: str) -> tuple[str, str] | None:
    """Return (yaml, body), or None when the file has no frontmatter block."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return None
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    raise _Invalid("the frontmatter opened with '---' is never closed by a '---' line")


def parse_tool_list(value: Any, field: str) -> tuple[str, ...]:
    """`tools`/`disallowedTools`: a comma string or a YAML list, as Claude Code takes them."""
    if value is None:
        return ()
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise _Invalid(f"'{field}' must be a comma-separated string or a list of tool names")
    # `Bash(git:*)` style permission rules name the tool before the parenthesis.
    names = (item.strip().split("(", 1)[0].strip() for item in items)
    return tuple(dict.fromkeys(n for n in names if n))


def load_agent_file(path: Path, *, layer: str = "project") -> LoadResult:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return LoadResult(None, (Problem(path, "error", f"cannot read the file ({exc})"),))
    try:
        spec, warnings = parse_agent(text, path=path, layer=layer)
    except _Invalid as exc:
        return LoadResult(None, (Problem(path, "error", str(exc)),))
    return LoadResult(spec, tuple(Problem(path, "warning", w) for w in warnings))


def parse_agent(text: str, *, path: Path | None = None, layer: str = "inline") -> tuple[AgentSpec, list[str]]:
    parts = split_frontmatter(text)
    if parts is None:
        raise _Invalid("no YAML frontmatter: the file must start with a '---' line, then name: and description:")
    raw_yaml, body = parts
    try:
        data = yaml.safe_load(raw_yaml) if raw_yaml.strip() else {}
    except yaml.YAMLError as exc:
        raise _Invalid(f"the frontmatter is not valid YAML: {_yaml_reason(exc)}") from None
    except RecursionError:
        raise _Invalid("the frontmatter is nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise _Invalid(f"the frontmatter holds a value that cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise _Invalid("the frontmatter must be a YAML mapping of fields (name: ..., description: ...)")
    # YAML reads `on:` or `1:` as non-text keys; keep them as names, so they are reported as unknown fields.
    data = {k if isinstance(k, str) else str(k): v for k, v in data.items()}
    warnings: list[str] = []
    spec = AgentSpec(
        name=_name(data),
        description=_description(data),
        prompt=body.strip(),
        tools=parse_tool_list(data["tools"], "tools") if data.get("tools") is not None else None,
        disallowed_tools=parse_tool_list(data.get("disallowedTools"), "disallowedTools"),
        model=_model(data, warnings),
        max_turns=_max_turns(data),
        options=_options(data),
        source=path,
        layer=layer,
        fields=data,
    )
    warnings += _tool_warnings(spec) + _field_warnings(data)
    if not spec.prompt:
        warnings.append("the body is empty, so the agent has no system prompt")
    return spec, warnings


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    # +2: the opening '---' line, and YAML counts from zero.
    return f"{problem} (line {mark.line + 2})" if mark is not None else str(problem)


def _name(data: dict[str, Any]) -> str:
    name = data.get("name")
    if name is None or name == "":
        raise _Invalid("missing required field 'name' (lowercase letters, digits and hyphens, e.g. my-agent)")
    if not isinstance(name, str):
        raise _Invalid(f"'name' must be a string, got {type(name).__name__}")
    if not NAME_PATTERN.fullmatch(name):
        raise _Invalid(
            f"invalid name {reprlib.repr(name)}: use letters, digits, '-' or '_', start with a letter or digit, "
            "at most 64 characters (it becomes the MCP tool name)"
        )
    if name in RESERVED_NAMES:
        raise _Invalid(f"the name {name!r} is taken by one of the server's own tools; rename the agent")
    return name


def _description(data: dict[str, Any]) -> str:
    desc = data.get("description")
    if not isinstance(desc, str) or not desc.strip():
        raise _Invalid("missing required field 'description' (it tells the client when to use this agent)")
    return desc.strip()


def _model(data: dict[str, Any], warnings: list[str]) -> str:
    model = data.get("model", "inherit")
    if model is None:
        return "inherit"
    if not isinstance(model, str) or not model.strip():
        raise _Invalid(f"'model' must be {', '.join(MODEL_ALIASES)} or a full model id")
    model = model.strip()
    if model.lower() in MODEL_ALIASES:
        return model.lower()
    if not model.startswith("claude-"):
        warnings.append(f"model {model!r} is not an alias or a claude- model id; it is sent to the API as written")
    return model


def _max_turns(data: dict[str, Any]) -> int | None:
    value = data.get("maxTurns")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Invalid(f"'maxTurns' must be a positive whole number, got {reprlib.repr(value)}")
    return value


def _options(data: dict[str, Any]) -> SubagentsOptions:
    raw = data.get("subagents")
    if raw is None:
        return SubagentsOptions()
    if not isinstance(raw, dict):
        raise _Invalid("'subagents' must be a mapping, e.g. subagents: {max_tokens: 4096}")
    try:
        return SubagentsOptions.model_validate(raw)
    except ValidationError as exc:
        reasons = "; ".join(f"subagents.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise _Invalid(f"invalid 'subagents' settings: {reasons}") from None


def _tool_warnings(spec: AgentSpec) -> list[str]:
    listed = spec.tools or ()
    supported = set(READ_TOOLS + WRITE_TOOLS)
    unknown = [t for t in listed if t not in supported]
    if not unknown:
        return []
    return [
        f"tools not available in subagents, ignored: {', '.join(unknown)} "
        f"(available: {', '.join(READ_TOOLS + WRITE_TOOLS)})"
    ]


def _field_warnings(data: dict[str, Any]) -> list[str]:
    warnings = [f"'{key}' is not honoured: {why}" for key, why in NOT_HONOURED.items() if key in data]
    unknown = sorted(k for k in data if k not in ACCEPTED and k not in NOT_HONOURED)
    if unknown:
        warnings.append(
            f"unknown fields ignored: {', '.join(map(str, unknown))} (a typo? see Claude Code's "
            "subagent fields; our own settings go under 'subagents:')"
        )
    return warnings
