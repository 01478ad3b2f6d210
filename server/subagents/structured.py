"""Structured handoffs: an agent's declared output schema, and whether an answer matches it.

`jsonschema` costs about half a second to import here, so it is imported on first use (the app warms it
up in a worker thread when an agent declares a schema): `initialize` and `tools/list` never pay for it.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from subagents.imports import import_now

MAX_SCHEMA_BYTES = 16_000
MAX_ERROR_CHARS = 600
_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.DOTALL)


def schema_problem(schema: Any) -> str | None:
    """Cheap checks at load time (no import): what is wrong with a declared schema, or None."""
    if not isinstance(schema, dict):
        return "must be a JSON schema object, e.g. {type: object, properties: {...}}"
    if schema.get("type") != "object":
        return "the schema's root must be `type: object`, so patterns can read its fields"
    try:
        size = len(json.dumps(schema))
    except (TypeError, ValueError) as exc:
        return f"is not plain JSON ({exc})"
    if size > MAX_SCHEMA_BYTES:
        return f"is {size} bytes as JSON; the limit is {MAX_SCHEMA_BYTES}"
    return None


def full_schema_problem(schema: dict[str, Any]) -> str | None:
    """The schema checked against its JSON Schema metaschema (imports jsonschema)."""
    schema_error = import_now("jsonschema.exceptions").SchemaError
    try:
        _validator(json.dumps(schema, sort_keys=True))
    except schema_error as exc:
        return f"is not a valid JSON schema: {exc.message}"
    return None


def parse_output(schema: dict[str, Any], text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The answer's JSON object when it matches `schema`, else None and the reason, said for the model."""
    candidate = _json_text(text)
    if candidate is None:
        return None, "the answer is not a JSON object (it must be only the JSON, with no text around it)"
    try:
        value = json.loads(candidate)
    except ValueError as exc:
        return None, f"the answer is not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"the answer must be a JSON object, not {type(value).__name__}"
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return value, None
    described = "; ".join(_describe(e) for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return None, f"the JSON does not match the schema: {described}{more}"[:MAX_ERROR_CHARS]


def _json_text(text: str) -> str | None:
    stripped = text.strip()
    if stripped.startswith("{"):
        return stripped
    fenced = _FENCE.search(stripped)
    if fenced and fenced.group(1).strip().startswith("{"):
        return fenced.group(1).strip()
    return None


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message[:200]}"


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    """One compiled validator per schema (keyed by its JSON text, since dicts are not hashable)."""
    schema = json.loads(schema_json)
    cls = import_now("jsonschema.validators").validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)
