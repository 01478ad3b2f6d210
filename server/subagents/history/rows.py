"""Rows to records, shared by both stores: a row is anything indexable by column name."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import TypeAdapter

from subagents.history.base import PREVIEW_CHARS
from subagents.history.records import AgentStats, RunInput, RunRecord, RunSummary, TaskRecord
from subagents.messages import ContentBlock, Message, Usage

CONTENT: TypeAdapter[tuple[ContentBlock, ...]] = TypeAdapter(tuple[ContentBlock, ...])


class Row(Protocol):
    def __getitem__(self, key: str) -> Any: ...


def encode_messages(messages: Sequence[Message]) -> list[tuple[str, str]]:
    """(role, content JSON) per message. JSON escapes every control character, NUL included."""
    return [(m.role, CONTENT.dump_json(m.content).decode()) for m in messages]


def usage_values(usage: Usage) -> tuple[int, int, int, int]:
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
    )


def _time(value: Any) -> Any:
    """PostgreSQL gives datetimes in the session's zone; records are in UTC. SQLite's ISO text passes."""
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _usage(row: Row) -> Usage:
    return Usage(
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cache_read_input_tokens=int(row["cache_read_input_tokens"]),
        cache_creation_input_tokens=int(row["cache_creation_input_tokens"]),
    )


def _common(row: Row) -> dict[str, Any]:
    """Fields a summary and a record share."""
    return {
        "id": row["id"],
        "agent": row["agent"],
        "model": row["model"],
        "status": row["status"],
        "created_at": _time(row["created_at"]),
        "finished_at": _time(row["finished_at"]),
        "turns": row["turns"],
        "usage": _usage(row),
        "cost_usd": row["cost_usd"],
        "error": row["error"],
        "parent_id": row["parent_id"],
        "principal": row["principal"],
    }


def summary_from(row: Row, *, preview_in_python: bool = False) -> RunSummary:
    """`preview_in_python`: the row has the whole input_json and error, to cut here (SQLite's string
    functions stop at a NUL character)."""
    fields = {**_common(row), "task": row["task"] or ""} if not preview_in_python else _previewed(row)
    return RunSummary.model_validate(fields)


def _previewed(row: Row) -> dict[str, Any]:
    error = row["error"]
    task = RunInput.model_validate_json(row["input_json"]).task
    return {
        **_common(row),
        "task": task[:PREVIEW_CHARS],
        "error": None if error is None else error[:PREVIEW_CHARS],
    }


def record_from(row: Row, messages: Sequence[Row]) -> RunRecord:
    transcript = tuple(Message(role=m["role"], content=CONTENT.validate_json(m["content_json"])) for m in messages)
    return RunRecord.model_validate(
        {
            **_common(row),
            "input": RunInput.model_validate_json(row["input_json"]),
            "transcript": transcript,
            "report": row["report"],
            "diff": row["diff"],
            "stop_reason": row["stop_reason"],
            "client": row["client"],
            "continued_from": row["continued_from"],
            "cancel_requested": row["cancel_requested_at"] is not None,
            "backend": row["backend"],
            "billed_to": row["billed_to"],
        }
    )


def stats_from(row: Row) -> AgentStats:
    ints = (
        "calls",
        "completed",
        "failed",
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cost_unknown_runs",
    )
    cost = row["cost_usd"]
    return AgentStats(
        agent=row["agent"],
        model=row["model"],
        cost_usd=None if cost is None else float(cost),
        **{name: int(row[name] or 0) for name in ints},
    )


def task_from(row: Row) -> TaskRecord:
    return TaskRecord(
        id=row["id"],
        parent_id=row["parent_id"],
        seq=row["seq"],
        agent=row["agent"],
        input=RunInput.model_validate_json(row["input_json"]),
        status=row["status"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        owner=row["owner"],
        run_id=row["run_id"],
        result=row["result"],
        error=row["error"],
        created_at=_time(row["created_at"]),
        claimed_at=_time(row["claimed_at"]),
        finished_at=_time(row["finished_at"]),
    )
