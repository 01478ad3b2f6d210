"""What the offline demo model answers when a request asks for structured output: a small JSON value
that matches the schema, with the demo's text in its first free-text field."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 8


def sample_instance(schema: Any, text: str) -> Any:
    """A value matching `schema` (the subset the API's structured outputs take), `text` in the first string."""
    slot = [text]
    return _sample(schema, slot, 0)


def _sample(schema: Any, slot: list[str], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _sample(schema[key][0], slot, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        return {name: _sample(sub, slot, depth + 1) for name, sub in props.items()}
    if kind == "array":
        count = schema.get("minItems")
        count = count if isinstance(count, int) else 0
        return [_sample(schema.get("items"), slot, depth + 1) for _ in range(min(count, 3))]
    if kind == "string":
        return slot.pop() if slot else ""
    if kind in ("integer", "number"):
        low = schema.get("minimum")
        return low if isinstance(low, int | float) else 0
    if kind == "boolean":
        return False
    return None
