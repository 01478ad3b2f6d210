"""The PostgreSQL store's statements: async functions on a connection, the twins of `sqlite_ops.py`.

Writes run inside the writer's transaction; reads run on their own pooled connection. Times are
timezone-aware datetimes. PostgreSQL text cannot hold NUL, so free text is stored with NUL shown as
U+FFFD (JSON columns keep every character: JSON escapes NUL).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, LiteralString

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from subagents.history.base import INTERRUPTED_ERROR, PREVIEW_CHARS, TASK_INTERRUPTED_ERROR
from subagents.history.records import (
    AgentStats,
    RunNotFoundError,
    RunRecord,
    RunSummary,
    TaskCounts,
    TaskNotFoundError,
    TaskRecord,
)
from subagents.history.rows import record_from, stats_from, summary_from, task_from

Conn = AsyncConnection[DictRow]
Params = tuple[Any, ...]
CANCEL_CHANNEL = "subagents_cancel"
_USAGE_COLUMNS = "input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens"
_SUMMARY_SELECT = f"""
    SELECT id, agent, model, status, created_at, finished_at, turns, {_USAGE_COLUMNS}, cost_usd,
           parent_id, principal, left(task, {PREVIEW_CHARS}) AS task, left(error, {PREVIEW_CHARS}) AS error
    FROM runs"""
_STATS_SELECT = """
    SELECT agent, model, COUNT(*) AS calls, COUNT(*) FILTER (WHERE status = 'completed') AS completed,
           COUNT(*) FILTER (WHERE status = 'failed') AS failed, SUM(input_tokens) AS input_tokens,
           SUM(output_tokens) AS output_tokens, SUM(cache_read_input_tokens) AS cache_read_input_tokens,
           SUM(cache_creation_input_tokens) AS cache_creation_input_tokens,
           SUM(cost_usd) AS cost_usd, COUNT(*) FILTER (WHERE cost_usd IS NULL) AS cost_unknown_runs
    FROM runs"""
_LIVE_CLAIM = "status = 'running' AND attempts = %s AND owner = %s"


def text(value: Any) -> Any:
    """Free text as PostgreSQL can store it."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


# --- runs ---


async def create_run(conn: Conn, values: dict[str, Any], encoded: Sequence[tuple[str, str]] = ()) -> str:
    for ref in (values["parent_id"], values["continued_from"]):
        if ref is not None:
            await _require(conn, ref)
    columns = ", ".join(values)
    sql = f"INSERT INTO runs ({columns}) VALUES ({', '.join(['%s'] * len(values))})"
    await conn.execute(sql.encode(), tuple(text(v) for v in values.values()))
    if encoded:
        await append(conn, str(values["id"]), encoded)
    return str(values["id"])


async def append(conn: Conn, run_id: str, encoded: Sequence[tuple[str, str]], *, fast: bool = False) -> None:
    # FOR UPDATE: the run's row lock orders writers of one run, so two never number the same messages.
    run = b"SELECT id FROM runs WHERE id = %s FOR UPDATE"
    await _write_messages(conn, run, (run_id,), run_id, encoded, fast)


async def record_turn(
    conn: Conn, run_id: str, encoded: Sequence[tuple[str, str]], progress: Params, *, fast: bool = False
) -> None:
    run = (
        b"UPDATE runs SET turns = %s, input_tokens = %s, output_tokens = %s, cache_read_input_tokens = %s,"
        b" cache_creation_input_tokens = %s, cost_usd = %s WHERE id = %s RETURNING id"
    )
    await _write_messages(conn, run, (*progress, run_id), run_id, encoded, fast)


async def _write_messages(
    conn: Conn, run: bytes, params: Params, run_id: str, encoded: Sequence[tuple[str, str]], fast: bool
) -> None:
    """`run` finds and locks the run's row (so two writers never number the same messages), then the
    messages are numbered after its last one. Fast (in a pipeline, where waiting for a result costs a
    round trip): no check in between; a missing run fails the messages' foreign key instead.
    A VALUES list, not unnest() of arrays: adapting arrays of long strings costs ~4x more."""
    cursor = await conn.execute(run, params)
    if not fast and await cursor.fetchone() is None:
        raise RunNotFoundError(run_id)
    if not encoded:
        return
    rows = b", ".join([b"(%s::int, %s, %s)"] * len(encoded))
    await conn.execute(
        b"INSERT INTO messages (run_id, seq, role, content_json)"
        b" SELECT %s, (SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE run_id = %s) + m.n, m.role, m.content"
        b" FROM (VALUES " + rows + b") AS m(n, role, content)",
        (run_id, run_id, *(value for n, (role, body) in enumerate(encoded) for value in (n, role, body))),
    )


async def finish(conn: Conn, run_id: str, outcome: Params) -> None:
    cursor = await conn.execute(
        "UPDATE runs SET status = %s, report = %s, error = %s, input_tokens = %s, output_tokens = %s,"
        " cache_read_input_tokens = %s, cache_creation_input_tokens = %s, cost_usd = %s, turns = %s,"
        " stop_reason = %s, diff = %s, finished_at = %s WHERE id = %s",
        (*(text(v) for v in outcome), run_id),
    )
    if cursor.rowcount == 0:
        raise RunNotFoundError(run_id)


async def request_cancel(conn: Conn, run_id: str, principal: str | None, now: datetime) -> str:
    scope, params = _principal(principal)
    cursor = await conn.execute(b"SELECT status, owner FROM runs WHERE id = %s" + scope, (run_id, *params))
    row = await cursor.fetchone()
    if row is None:
        raise RunNotFoundError(run_id)
    if row["status"] == "running":
        await conn.execute(
            "UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, %s) WHERE id = %s", (now, run_id)
        )
        # Delivered at commit; the owner's listener wakes its cancel watcher at once.
        await conn.execute("SELECT pg_notify(%s, %s)", (CANCEL_CHANNEL, row["owner"] or ""))
    return str(row["status"])


async def cancel_requests(conn: Conn, owner: str) -> list[str]:
    cursor = await conn.execute(
        "SELECT id FROM runs WHERE owner = %s AND status = 'running' AND cancel_requested_at IS NOT NULL", (owner,)
    )
    return [row["id"] for row in await cursor.fetchall()]


async def renew(conn: Conn, owner: str, lease: datetime) -> None:
    await conn.execute("UPDATE runs SET lease_expires_at = %s WHERE owner = %s AND status = 'running'", (lease, owner))
    await conn.execute("UPDATE tasks SET lease_expires_at = %s WHERE owner = %s AND status = 'running'", (lease, owner))


async def mark_interrupted(conn: Conn, me: str, now: datetime) -> int:
    # SKIP LOCKED: rows a live owner is renewing right now are not waited for (nor deadlocked on).
    cursor = await conn.execute(
        "UPDATE runs SET status = 'interrupted', error = %s, finished_at = %s WHERE id IN ("
        " SELECT id FROM runs WHERE status = 'running' AND owner IS DISTINCT FROM %s"
        " AND (lease_expires_at IS NULL OR lease_expires_at <= %s) FOR UPDATE SKIP LOCKED)",
        (INTERRUPTED_ERROR, now, me, now),
    )
    return cursor.rowcount


async def adopt(conn: Conn, run_id: str, owner: str, lease: datetime) -> bool:
    cursor = await conn.execute(
        "UPDATE runs SET status = 'running', owner = %s, lease_expires_at = %s, error = NULL, finished_at = NULL,"
        " cancel_requested_at = NULL WHERE id = %s AND status = 'interrupted'",
        (owner, lease, run_id),
    )
    return cursor.rowcount == 1


async def get(conn: Conn, run_id: str, principal: str | None) -> RunRecord:
    scope, params = _principal(principal)
    async with conn.transaction():  # one snapshot for the run and its messages
        cursor = await conn.execute(b"SELECT * FROM runs WHERE id = %s" + scope, (run_id, *params))
        row = await cursor.fetchone()
        if row is None:
            raise RunNotFoundError(run_id)
        cursor = await conn.execute("SELECT role, content_json FROM messages WHERE run_id = %s ORDER BY seq", (run_id,))
        return record_from(row, await cursor.fetchall())


async def list_runs(conn: Conn, filters: dict[str, str | None], limit: int, offset: int) -> list[RunSummary]:
    allowed: dict[str, LiteralString] = {
        "agent": "agent = %s",
        "status": "status = %s",
        "parent_id": "parent_id = %s",
        "principal": "principal = %s",
    }
    used = [(allowed[column], value) for column, value in filters.items() if value is not None]
    where = " WHERE " + " AND ".join(c for c, _ in used) if used else ""
    sql = f"{_SUMMARY_SELECT}{where} ORDER BY created_at DESC, seq DESC LIMIT %s OFFSET %s"
    cursor = await conn.execute(sql.encode(), (*(text(v) for _, v in used), limit, offset))
    return [summary_from(row) for row in await cursor.fetchall()]


async def match_ids(conn: Conn, prefix: str, limit: int) -> list[str]:
    cursor = await conn.execute(
        "SELECT id FROM runs WHERE left(id, %s) = %s ORDER BY created_at DESC, seq DESC LIMIT %s",
        (len(prefix), text(prefix), limit),
    )
    return [row["id"] for row in await cursor.fetchall()]


async def stats(conn: Conn, since: datetime | None) -> list[AgentStats]:
    where, params = (" WHERE created_at >= %s", (since,)) if since is not None else ("", ())
    # COLLATE "C": the same order as SQLite's, whatever the database's locale.
    sql = f'{_STATS_SELECT}{where} GROUP BY agent, model ORDER BY agent COLLATE "C", model COLLATE "C"'
    cursor = await conn.execute(sql.encode(), params)
    return [stats_from(row) for row in await cursor.fetchall()]


async def cost_since(conn: Conn, since: datetime, principal: str | None) -> float:
    scope, params = _principal(principal)
    sql = b"SELECT COALESCE(SUM(cost_usd), 0) AS cost FROM runs WHERE created_at >= %s" + scope
    cursor = await conn.execute(sql, (since, *params))
    row = await cursor.fetchone()
    return float(row["cost"]) if row else 0.0


# --- tasks ---


async def enqueue(conn: Conn, parent_id: str, rows: Sequence[Params]) -> list[TaskRecord]:
    await _require(conn, parent_id, lock=True)  # the lock serializes seq numbers per parent
    cursor = await conn.execute(
        "SELECT COALESCE(MAX(seq) + 1, 0) AS next FROM tasks WHERE parent_id = %s", (parent_id,)
    )
    start = (await cursor.fetchone() or {"next": 0})["next"]
    await conn.cursor().executemany(
        "INSERT INTO tasks (id, parent_id, seq, agent, input_json, status, max_attempts, created_at)"
        " VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s)",
        [(row[0], parent_id, start + i, *(text(v) for v in row[1:])) for i, row in enumerate(rows)],
    )
    cursor = await conn.execute(
        "SELECT * FROM tasks WHERE parent_id = %s AND seq >= %s ORDER BY seq", (parent_id, start)
    )
    return [task_from(row) for row in await cursor.fetchall()]


async def claim(conn: Conn, parent_id: str, owner: str, now: datetime, lease: datetime) -> TaskRecord | None:
    # SKIP LOCKED: claimers on other replicas pass over a row being claimed; the locked re-read of
    # status = 'queued' means a task claimed and committed meanwhile is not taken again.
    cursor = await conn.execute(
        "UPDATE tasks SET status = 'running', owner = %s, attempts = attempts + 1, lease_expires_at = %s,"
        " claimed_at = %s WHERE id = (SELECT id FROM tasks WHERE parent_id = %s AND status = 'queued'"
        " ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
        (owner, lease, now, parent_id),
    )
    row = await cursor.fetchone()
    return None if row is None else task_from(row)


async def attach(conn: Conn, task_id: str, attempt: int, owner: str, run_id: str) -> bool:
    cursor = await conn.execute(
        b"UPDATE tasks SET run_id = %s WHERE id = %s AND " + _LIVE_CLAIM.encode(), (run_id, task_id, attempt, owner)
    )
    return await _claim_held(conn, cursor.rowcount, task_id)


async def finish_task(conn: Conn, task_id: str, attempt: int, owner: str, outcome: Params, run_id: str | None) -> bool:
    cursor = await conn.execute(
        b"UPDATE tasks SET status = %s, result = %s, error = %s, finished_at = %s, run_id = COALESCE(%s, run_id),"
        b" owner = NULL, lease_expires_at = NULL WHERE id = %s AND " + _LIVE_CLAIM.encode(),
        (*(text(v) for v in outcome), run_id, task_id, attempt, owner),
    )
    return await _claim_held(conn, cursor.rowcount, task_id)


async def _claim_held(conn: Conn, rowcount: int, task_id: str) -> bool:
    if rowcount == 1:
        return True
    cursor = await conn.execute("SELECT 1 FROM tasks WHERE id = %s", (task_id,))
    if await cursor.fetchone() is None:
        raise TaskNotFoundError(task_id)
    return False


async def list_tasks(conn: Conn, parent_id: str) -> list[TaskRecord]:
    cursor = await conn.execute("SELECT * FROM tasks WHERE parent_id = %s ORDER BY seq", (parent_id,))
    return [task_from(row) for row in await cursor.fetchall()]


async def task_counts(conn: Conn, parent_id: str) -> TaskCounts:
    cursor = await conn.execute(
        "SELECT status, COUNT(*) AS n FROM tasks WHERE parent_id = %s GROUP BY status", (parent_id,)
    )
    return TaskCounts.model_validate({row["status"]: row["n"] for row in await cursor.fetchall()})


async def reclaim(conn: Conn, me: str, now: datetime) -> int:
    cursor = await conn.execute(
        "WITH lost AS (SELECT id FROM tasks WHERE status = 'running' AND owner IS DISTINCT FROM %s"
        " AND lease_expires_at <= %s FOR UPDATE SKIP LOCKED)"
        " UPDATE tasks t SET owner = NULL, lease_expires_at = NULL,"
        " status = CASE WHEN t.attempts < t.max_attempts THEN 'queued' ELSE 'failed' END,"
        " error = CASE WHEN t.attempts < t.max_attempts THEN t.error ELSE %s END,"
        " finished_at = CASE WHEN t.attempts < t.max_attempts THEN NULL ELSE %s::timestamptz END"
        " FROM lost WHERE t.id = lost.id",
        (me, now, TASK_INTERRUPTED_ERROR, now),
    )
    return cursor.rowcount


async def parents_with_queued(conn: Conn) -> list[str]:
    cursor = await conn.execute(
        "SELECT parent_id FROM tasks WHERE status = 'queued' GROUP BY parent_id ORDER BY parent_id COLLATE \"C\""
    )
    return [row["parent_id"] for row in await cursor.fetchall()]


async def _require(conn: Conn, run_id: str, *, lock: bool = False) -> None:
    sql = b"SELECT 1 FROM runs WHERE id = %s" + (b" FOR UPDATE" if lock else b"")
    cursor = await conn.execute(sql, (run_id,))
    if await cursor.fetchone() is None:
        raise RunNotFoundError(run_id)


def _principal(principal: str | None) -> tuple[bytes, Params]:
    return (b"", ()) if principal is None else (b" AND principal = %s", (text(principal),))
