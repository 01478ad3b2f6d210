"""The SQLite store's statements: plain functions on a connection, run by the store's writer.

Each function is one unit of work inside a transaction the writer opened; times come in as ISO text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from subagents.history.base import INTERRUPTED_ERROR, TASK_INTERRUPTED_ERROR
from subagents.history.records import (
    AgentStats,
    RunNotFoundError,
    RunRecord,
    RunSummary,
    StoreError,
    TaskCounts,
    TaskNotFoundError,
    TaskRecord,
)
from subagents.history.rows import record_from, stats_from, summary_from, task_from
from subagents.processes import owner_alive, owner_gone

_USAGE_COLUMNS = "input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens"
# The task and error are cut in Python: SQLite's string functions stop at a NUL character.
_SUMMARY_SELECT = f"""
    SELECT id, agent, model, status, created_at, finished_at, turns, {_USAGE_COLUMNS}, cost_usd,
           parent_id, principal, input_json, error
    FROM runs"""
_STATS_SELECT = """
    SELECT agent, model, COUNT(*) AS calls, SUM(status = 'completed') AS completed,
           SUM(status = 'failed') AS failed, SUM(input_tokens) AS input_tokens,
           SUM(output_tokens) AS output_tokens, SUM(cache_read_input_tokens) AS cache_read_input_tokens,
           SUM(cache_creation_input_tokens) AS cache_creation_input_tokens,
           SUM(cost_usd) AS cost_usd, SUM(cost_usd IS NULL) AS cost_unknown_runs
    FROM runs"""
Params = tuple[object, ...]
BUSY_TIMEOUT_MS = 5000  # how long a write waits for another process's lock on the file


def connect(path: Path | str) -> sqlite3.Connection:
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    created = isinstance(path, Path) and not path.exists()
    # isolation_level=None: the writer issues BEGIN itself, so each transaction is exactly what it says.
    # check_same_thread=False: the writer's batches run in worker threads, one at a time.
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    if created:
        Path(path).chmod(0o600)  # transcripts hold the code the agents read; keep them private
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL still survives the process dying (what `interrupted` relies on); only an OS
        # crash can lose the last commits. It saves an fsync per write: ~4x cheaper runs.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(
            f"{path} is not a subagents run store ({exc}). Move it aside, or set SUBAGENTS_STORE to another file."
        ) from exc
    return conn


# --- runs ---


def create_run(conn: sqlite3.Connection, values: dict[str, object], encoded: Sequence[tuple[str, str]] = ()) -> str:
    for ref in (values["parent_id"], values["continued_from"]):
        if ref is not None:
            _require(conn, str(ref))
    columns = ", ".join(values)
    conn.execute(f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(values))})", tuple(values.values()))
    if encoded:
        _insert_messages(conn, str(values["id"]), encoded)
    return str(values["id"])


def append(conn: sqlite3.Connection, run_id: str, encoded: Sequence[tuple[str, str]]) -> None:
    _require(conn, run_id)
    _insert_messages(conn, run_id, encoded)


def record_turn(conn: sqlite3.Connection, run_id: str, encoded: Sequence[tuple[str, str]], progress: Params) -> None:
    cursor = conn.execute(
        "UPDATE runs SET turns = ?, input_tokens = ?, output_tokens = ?, cache_read_input_tokens = ?,"
        " cache_creation_input_tokens = ?, cost_usd = ? WHERE id = ?",
        (*progress, run_id),
    )
    if cursor.rowcount == 0:
        raise RunNotFoundError(run_id)
    _insert_messages(conn, run_id, encoded)


def _insert_messages(conn: sqlite3.Connection, run_id: str, encoded: Sequence[tuple[str, str]]) -> None:
    start = conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE run_id = ?", (run_id,)).fetchone()[0]
    conn.executemany(
        "INSERT INTO messages (run_id, seq, role, content_json) VALUES (?, ?, ?, ?)",
        [(run_id, start + i, role, content) for i, (role, content) in enumerate(encoded)],
    )


def finish(conn: sqlite3.Connection, run_id: str, outcome: Params) -> None:
    cursor = conn.execute(
        "UPDATE runs SET status = ?, report = ?, error = ?, input_tokens = ?, output_tokens = ?,"
        " cache_read_input_tokens = ?, cache_creation_input_tokens = ?, cost_usd = ?, turns = ?,"
        " stop_reason = ?, diff = ?, finished_at = ? WHERE id = ?",
        (*outcome, run_id),
    )
    if cursor.rowcount == 0:
        raise RunNotFoundError(run_id)


def request_cancel(conn: sqlite3.Connection, run_id: str, principal: str | None, now: str) -> str:
    scope, params = _principal(principal)
    row = conn.execute(f"SELECT status FROM runs WHERE id = ?{scope}", (run_id, *params)).fetchone()
    if row is None:
        raise RunNotFoundError(run_id)
    if row["status"] == "running":
        conn.execute(
            "UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, ?) WHERE id = ?", (now, run_id)
        )
    return str(row["status"])


def cancel_requests(conn: sqlite3.Connection, owner: str) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM runs WHERE owner = ? AND status = 'running' AND cancel_requested_at IS NOT NULL", (owner,)
    )
    return [row["id"] for row in rows]


def renew(conn: sqlite3.Connection, owner: str, lease: str) -> None:
    conn.execute("UPDATE runs SET lease_expires_at = ? WHERE owner = ? AND status = 'running'", (lease, owner))
    conn.execute("UPDATE tasks SET lease_expires_at = ? WHERE owner = ? AND status = 'running'", (lease, owner))


def abandoned(owner: str | None, lease: str | None, now: str, me: str) -> bool:
    """Whether a running run's (or claim's) owner is gone: its lease ran out, or it was a process on
    this host that no longer runs (no need to wait for the lease: local servers share one file)."""
    if owner == me:
        return False
    if lease is None:  # recorded before leases existed: the same-host check is all there is
        return not owner_alive(owner)
    return lease <= now or owner_gone(owner)


def mark_interrupted(conn: sqlite3.Connection, me: str, now: str) -> int:
    rows = conn.execute("SELECT id, owner, lease_expires_at FROM runs WHERE status = 'running'").fetchall()
    dead = [(INTERRUPTED_ERROR, now, r["id"]) for r in rows if abandoned(r["owner"], r["lease_expires_at"], now, me)]
    conn.executemany(
        "UPDATE runs SET status = 'interrupted', error = ?, finished_at = ? WHERE id = ? AND status = 'running'", dead
    )
    return len(dead)


def adopt(conn: sqlite3.Connection, run_id: str, owner: str, lease: str) -> bool:
    cursor = conn.execute(
        "UPDATE runs SET status = 'running', owner = ?, lease_expires_at = ?, error = NULL, finished_at = NULL,"
        " cancel_requested_at = NULL WHERE id = ? AND status = 'interrupted'",
        (owner, lease, run_id),
    )
    return cursor.rowcount == 1


def get(conn: sqlite3.Connection, run_id: str, principal: str | None) -> RunRecord:
    scope, params = _principal(principal)
    row = conn.execute(f"SELECT * FROM runs WHERE id = ?{scope}", (run_id, *params)).fetchone()
    if row is None:
        raise RunNotFoundError(run_id)
    messages = conn.execute("SELECT role, content_json FROM messages WHERE run_id = ? ORDER BY seq", (run_id,))
    return record_from(row, messages.fetchall())


def list_runs(conn: sqlite3.Connection, filters: dict[str, str | None], limit: int, offset: int) -> list[RunSummary]:
    used = [(f"{column} = ?", value) for column, value in filters.items() if value is not None]
    where = " WHERE " + " AND ".join(c for c, _ in used) if used else ""
    # rowid breaks ties between runs created in the same microsecond, newest first.
    sql = f"{_SUMMARY_SELECT}{where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
    rows = conn.execute(sql, (*(v for _, v in used), limit, offset))
    return [summary_from(row, preview_in_python=True) for row in rows]


def match_ids(conn: sqlite3.Connection, prefix: str, limit: int) -> list[str]:
    # substr, not LIKE: run ids contain `_`, which LIKE reads as a wildcard.
    rows = conn.execute(
        "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
        (len(prefix), prefix, limit),
    )
    return [row["id"] for row in rows]


def stats(conn: sqlite3.Connection, since: str | None) -> list[AgentStats]:
    where, params = (" WHERE created_at >= ?", (since,)) if since is not None else ("", ())
    sql = f"{_STATS_SELECT}{where} GROUP BY agent, model ORDER BY agent, model"
    return [stats_from(row) for row in conn.execute(sql, params)]


def cost_since(conn: sqlite3.Connection, since: str, principal: str | None) -> float:
    scope, params = _principal(principal)
    sql = f"SELECT COALESCE(SUM(cost_usd), 0.0) FROM runs WHERE created_at >= ?{scope}"
    row = conn.execute(sql, (since, *params)).fetchone()
    return float(row[0])


# --- tasks ---


def enqueue(conn: sqlite3.Connection, parent_id: str, rows: Sequence[Params]) -> list[TaskRecord]:
    _require(conn, parent_id)
    start = conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM tasks WHERE parent_id = ?", (parent_id,)).fetchone()[0]
    conn.executemany(
        "INSERT INTO tasks (id, parent_id, seq, agent, input_json, status, max_attempts, created_at)"
        " VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
        [(row[0], parent_id, start + i, *row[1:]) for i, row in enumerate(rows)],
    )
    return list_tasks(conn, parent_id)[start:]


def claim(conn: sqlite3.Connection, parent_id: str, owner: str, now: str, lease: str) -> TaskRecord | None:
    # Inside the writer's BEGIN IMMEDIATE: no other process writes between this read and the update.
    row = conn.execute(
        "SELECT id FROM tasks WHERE parent_id = ? AND status = 'queued' ORDER BY seq LIMIT 1", (parent_id,)
    ).fetchone()
    if row is None:
        return None
    cursor = conn.execute(
        "UPDATE tasks SET status = 'running', owner = ?, attempts = attempts + 1, lease_expires_at = ?,"
        " claimed_at = ? WHERE id = ? AND status = 'queued'",
        (owner, lease, now, row["id"]),
    )
    return _task(conn, row["id"]) if cursor.rowcount == 1 else None


def attach(conn: sqlite3.Connection, task_id: str, attempt: int, owner: str, run_id: str) -> bool:
    cursor = conn.execute(
        f"UPDATE tasks SET run_id = ? WHERE id = ? AND {_LIVE_CLAIM}", (run_id, task_id, attempt, owner)
    )
    return _claim_held(conn, cursor, task_id)


def finish_task(
    conn: sqlite3.Connection, task_id: str, attempt: int, owner: str, outcome: Params, run_id: str | None
) -> bool:
    cursor = conn.execute(
        "UPDATE tasks SET status = ?, result = ?, error = ?, finished_at = ?, run_id = COALESCE(?, run_id),"
        f" owner = NULL, lease_expires_at = NULL WHERE id = ? AND {_LIVE_CLAIM}",
        (*outcome, run_id, task_id, attempt, owner),
    )
    return _claim_held(conn, cursor, task_id)


_LIVE_CLAIM = "status = 'running' AND attempts = ? AND owner = ?"


def _claim_held(conn: sqlite3.Connection, cursor: sqlite3.Cursor, task_id: str) -> bool:
    if cursor.rowcount == 1:
        return True
    if conn.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone() is None:
        raise TaskNotFoundError(task_id)
    return False


def list_tasks(conn: sqlite3.Connection, parent_id: str) -> list[TaskRecord]:
    rows = conn.execute("SELECT * FROM tasks WHERE parent_id = ? ORDER BY seq", (parent_id,))
    return [task_from(row) for row in rows]


def task_counts(conn: sqlite3.Connection, parent_id: str) -> TaskCounts:
    rows = conn.execute("SELECT status, COUNT(*) AS n FROM tasks WHERE parent_id = ? GROUP BY status", (parent_id,))
    return TaskCounts.model_validate({row["status"]: row["n"] for row in rows})


def reclaim(conn: sqlite3.Connection, me: str, now: str) -> int:
    rows = conn.execute("SELECT id, owner, lease_expires_at FROM tasks WHERE status = 'running'").fetchall()
    lost = [(row["id"],) for row in rows if abandoned(row["owner"], row["lease_expires_at"], now, me)]
    conn.executemany(
        "UPDATE tasks SET status = 'queued', owner = NULL, lease_expires_at = NULL"
        " WHERE id = ? AND status = 'running' AND attempts < max_attempts",
        lost,
    )
    conn.executemany(
        "UPDATE tasks SET status = 'failed', error = ?, finished_at = ?, owner = NULL, lease_expires_at = NULL"
        " WHERE id = ? AND status = 'running'",
        [(TASK_INTERRUPTED_ERROR, now, task_id) for (task_id,) in lost],
    )
    return len(lost)


def parents_with_queued(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT DISTINCT parent_id FROM tasks WHERE status = 'queued' ORDER BY parent_id")
    return [row["parent_id"] for row in rows]


def _task(conn: sqlite3.Connection, task_id: str) -> TaskRecord:
    return task_from(conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone())


def _require(conn: sqlite3.Connection, run_id: str) -> None:
    if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
        raise RunNotFoundError(run_id)


def _principal(principal: str | None) -> tuple[str, Params]:
    return ("", ()) if principal is None else (" AND principal = ?", (principal,))
