"""Argument checks for the tools: the JSON schema the model sees is the single source of truth."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from subagents.messages import ToolSpec


def schema(properties: dict[str, Any], *, required: Sequence[str]) -> dict[str, Any]:
    """A strict object schema: the listed properties, nothing else."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def check_args(spec: ToolSpec, args: dict[str, Any]) -> str | None:
    """What is wrong with `args` for this tool, in words the model can act on; None if nothing.
    A null optional argument counts as omitted, as models often send those."""
    props: dict[str, Any] = spec.input_schema["properties"]
    unknown = [k for k in args if k not in props]
    if unknown:
        return f"{spec.name}: unknown argument {', '.join(map(repr, unknown))}; it takes {', '.join(props)}."
    for name in spec.input_schema["required"]:
        if args.get(name) is None:
            return f"{spec.name}: missing required argument {name!r}."
    for name, value in args.items():
        problem = None if value is None else _value_problem(props[name], value)
        if problem is not None:
            return f"{spec.name}: argument {name!r} {problem}."
    return None


def _value_problem(prop: dict[str, Any], value: Any) -> str | None:
    kind = prop["type"]
    if _json_type(value) != kind or (kind == "array" and not all(isinstance(v, str) for v in value)):
        wanted = {"array": "a list of strings", "integer": "an integer"}.get(kind, f"a {kind}")
        return f"must be {wanted}, got {_json_type(value)} {repr(value)[:60]}"
    if "enum" in prop and value not in prop["enum"]:
        return f"must be one of {', '.join(prop['enum'])}, got {repr(value)[:60]}"
    if "minimum" in prop and value < prop["minimum"]:
        return f"must be at least {prop['minimum']}, got {value}"
    if "maxItems" in prop and len(value) > prop["maxItems"]:
        return f"may have at most {prop['maxItems']} items, got {len(value)}"
    return None


def _json_type(value: object) -> str:
    names = ((bool, "boolean"), (int, "integer"), (str, "string"), (float, "number"), (list, "array"))
    return next((n for t, n in names if isinstance(value, t)), "object" if isinstance(value, dict) else "?")
