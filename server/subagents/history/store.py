"""The run store: a durable record of every subagent run, in SQLite.

One row per run in `runs`, one row per transcript message in `messages`. Every public write is one
transaction, so a crash leaves each run either before or after a whole write. The API is sync; the
async server calls it from worker threads, which is why one connection is shared behind a lock.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import TypeAdapter

from subagents.history.records import (
    STATUSES,
    AgentStats,
    RunInput,
    RunNotFoundError,
    RunRecord,
    RunStatus,
    RunSummary,
)
from subagents.history.schema import StoreError, immediate, migrate
from subagents.messages import ContentBlock, Message, Usage
from subagents.processes import owner_alive, process_owner

__all__ = [
    "AgentStats",
    "RunInput",
    "RunNotFoundError",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "RunSummary",
    "StoreError",
]

INTERRUPTED_ERROR = "server stopped while the run was in progress"
PREVIEW_CHARS = 200
MEMORY = ":memory:"

_CONTENT: TypeAdapter[tuple[ContentBlock, ...]] = TypeAdapter(tuple[ContentBlock, ...])
_USAGE_COLUMNS = "input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens"
_SUMMARY_SELECT = f"""
    SELECT id, agent, model, status, created_at, finished_at, turns, {_USAGE_COLUMNS}, cost_usd,
           substr(json_extract(input_json, '$.task'), 1, {PREVIEW_CHARS}) AS task,
           substr(error, 1, {PREVIEW_CHARS}) AS error
    FROM runs"""
_STATS_SELECT = """
    SELECT agent, model, COUNT(*) AS calls, SUM(status = 'completed') AS completed,
           SUM(status = 'failed') AS failed, SUM(input_tokens) AS input_tokens,
           SUM(output_tokens) AS output_tokens, SUM(cache_read_input_tokens) AS cache_read_input_tokens,
           SUM(cache_creation_input_tokens) AS cache_creation_input_tokens,
           SUM(cost_usd) AS cost_usd, SUM(cost_usd IS NULL) AS cost_unknown_runs
    FROM runs"""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RunStore:
    """Runs and their transcripts in one SQLite file (or `:memory:` for tests)."""

    def __init__(self, path: Path | str, *, now: Callable[[], datetime] = _utc_now) -> None:
        self.path: Path | str = path if str(path) == MEMORY else Path(path).expanduser()
        self._now = now
        self._lock = threading.Lock()
        self._conn = _connect(self.path)
        try:
            migrate(self._conn, now=self._now, where=str(self.path))
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def default_path(cls) -> Path:
        """$SUBAGENTS_STORE, else $XDG_DATA_HOME/subagents/runs.db, else ~/.local/share/subagents/runs.db."""
        if explicit := os.environ.get("SUBAGENTS_STORE"):
            return Path(explicit).expanduser()
        data_home = os.environ.get("XDG_DATA_HOME", "")
        # The XDG spec says to ignore a relative XDG_DATA_HOME.
        base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
        return base / "subagents" / "runs.db"

    # --- writes: each one transaction ---

    def create_run(
        self,
        *,
        agent: str,
        model: str,
        input: RunInput,
        parent_id: str | None = None,
        client: str | None = None,
        continued_from: str | None = None,
        run_id: str | None = None,
        backend: str | None = None,
        billed_to: str | None = None,
    ) -> str:
        """Record a new `running` run and return its id."""
        run_id = run_id or f"run_{uuid.uuid4().hex[:12]}"
        with self._write() as conn:
            for ref in (parent_id, continued_from):
                if ref is not None:
                    _require(conn, ref)
            conn.execute(
                "INSERT INTO runs (id, agent, model, status, input_json, created_at, parent_id, client,"
                " continued_from, owner, backend, billed_to) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    agent,
                    model,
                    input.model_dump_json(),
                    _iso(self._now()),
                    parent_id,
                    client,
                    continued_from,
                    process_owner(),
                    backend,
                    billed_to,
                ),
            )
        return run_id

    def append_messages(self, run_id: str, messages: Sequence[Message]) -> None:
        """Append to the run's transcript; seq numbers continue from the last one, without gaps."""
        encoded = [(m.role, _CONTENT.dump_json(m.content).decode()) for m in messages]
        with self._write() as conn:
            _require(conn, run_id)
            start = conn.execute(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            conn.executemany(
                "INSERT INTO messages (run_id, seq, role, content_json) VALUES (?, ?, ?, ?)",
                [(run_id, start + i, role, content) for i, (role, content) in enumerate(encoded)],
            )

    def update_progress(self, run_id: str, *, turns: int, usage: Usage, cost_usd: float | None) -> None:
        """Record turns, usage and cost so far, so a crash still leaves what the run spent."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET turns = ?, input_tokens = ?, output_tokens = ?, cache_read_input_tokens = ?,"
                " cache_creation_input_tokens = ?, cost_usd = ? WHERE id = ?",
                (turns, *_usage_values(usage), cost_usd, run_id),
            )
            if cursor.rowcount == 0:
                raise RunNotFoundError(run_id)

    def finish(
        self,
        run_id: str,
        *,
        status: RunStatus,
        report: str | None,
        error: str | None,
        usage: Usage,
        cost_usd: float | None,
        turns: int,
        stop_reason: str | None,
        diff: str | None = None,
    ) -> None:
        """Record the outcome and set finished_at. Overwrites `interrupted`, which another process
        may have set while this run was still going (see `mark_interrupted`)."""
        if status == "running" or status not in STATUSES:
            raise ValueError(f"finish() needs a final status, one of {STATUSES[1:]}; got {status!r}")
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, report = ?, error = ?, input_tokens = ?, output_tokens = ?,"
                " cache_read_input_tokens = ?, cache_creation_input_tokens = ?, cost_usd = ?, turns = ?,"
                " stop_reason = ?, diff = ?, finished_at = ? WHERE id = ?",
                (
                    status,
                    report,
                    error,
                    *_usage_values(usage),
                    cost_usd,
                    turns,
                    stop_reason,
                    diff,
                    _iso(self._now()),
                    run_id,
                ),
            )
            if cursor.rowcount == 0:
                raise RunNotFoundError(run_id)

    def mark_interrupted(self) -> int:
        """At server start: runs still `running` whose process is gone become `interrupted`.

        Several servers may share one store (Claude Code starts one per session), so a run owned by a
        live process on this host is left alone. Returns the count.
        """
        with self._write() as conn:
            rows = conn.execute("SELECT id, owner FROM runs WHERE status = 'running'").fetchall()
            dead = [(INTERRUPTED_ERROR, _iso(self._now()), row[0]) for row in rows if not owner_alive(row[1])]
            conn.executemany("UPDATE runs SET status = 'interrupted', error = ?, finished_at = ? WHERE id = ?", dead)
            return len(dead)

    # --- reads ---

    def get(self, run_id: str) -> RunRecord:
        """The whole run, transcript included.

        Raises:
            RunNotFoundError: no run has that id.
        """
        with self._read() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(run_id)
            messages = conn.execute(
                "SELECT role, content_json FROM messages WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return _record(row, messages)

    def list(
        self, *, agent: str | None = None, status: str | None = None, limit: int = 20, offset: int = 0
    ) -> builtins.list[RunSummary]:
        """Runs, newest first, optionally only one agent's or one status's."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"Unknown run status {status!r}; use one of {', '.join(STATUSES)}.")
        filters = [("agent = ?", agent), ("status = ?", status)]
        used = [(clause, value) for clause, value in filters if value is not None]
        where = " WHERE " + " AND ".join(c for c, _ in used) if used else ""
        # rowid breaks ties between runs created in the same microsecond, newest first.
        sql = f"{_SUMMARY_SELECT}{where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
        with self._read() as conn:
            rows = conn.execute(sql, (*(v for _, v in used), limit, offset)).fetchall()
        return [_summary(row) for row in rows]

    def stats(self, *, since: datetime | None = None) -> builtins.list[AgentStats]:
        """Calls, outcomes, tokens and cost per (agent, model), optionally only runs created since."""
        where, params = (" WHERE created_at >= ?", (_iso(since),)) if since is not None else ("", ())
        sql = f"{_STATS_SELECT}{where} GROUP BY agent, model ORDER BY agent, model"
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [AgentStats.model_validate(dict(row)) for row in rows]

    def cost_since(self, since: datetime) -> float:
        """Known cost of the runs created since `since`, running ones included (for a daily budget)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(cost_usd), 0.0) FROM runs WHERE created_at >= ?", (_iso(since),)
            ).fetchone()
        return float(row[0])

    # --- lifetime ---

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, immediate(self._conn):
            yield self._conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # One read transaction, so a multi-statement read sees one snapshot.
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")


def _connect(path: Path | str) -> sqlite3.Connection:
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    created = isinstance(path, Path) and not path.exists()
    # isolation_level=None: we issue BEGIN ourselves, so each transaction is exactly what we say.
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    if created:
        Path(path).chmod(0o600)  # transcripts hold the code the agents read; keep them private
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
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


def _require(conn: sqlite3.Connection, run_id: str) -> None:
    if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
        raise RunNotFoundError(run_id)


def _iso(moment: datetime) -> str:
    """Fixed-width UTC ISO text, so text order is time order."""
    if moment.utcoffset() is None:
        raise ValueError(f"Timestamps must be timezone-aware; got naive {moment!r}.")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _usage_values(usage: Usage) -> tuple[int, int, int, int]:
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
    )


def _usage(row: sqlite3.Row) -> Usage:
    return Usage(
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cache_read_input_tokens=row["cache_read_input_tokens"],
        cache_creation_input_tokens=row["cache_creation_input_tokens"],
    )


def _common(row: sqlite3.Row) -> dict[str, Any]:
    """Fields a summary and a record share."""
    return {
        "id": row["id"],
        "agent": row["agent"],
        "model": row["model"],
        "status": row["status"],
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
        "turns": row["turns"],
        "usage": _usage(row),
        "cost_usd": row["cost_usd"],
        "error": row["error"],
    }


def _summary(row: sqlite3.Row) -> RunSummary:
    return RunSummary.model_validate({**_common(row), "task": row["task"] or ""})


def _record(row: sqlite3.Row, messages: Sequence[sqlite3.Row]) -> RunRecord:
    transcript = tuple(Message(role=m["role"], content=_CONTENT.validate_json(m["content_json"])) for m in messages)
    return RunRecord.model_validate(
        {
            **_common(row),
            "input": RunInput.model_validate_json(row["input_json"]),
            "transcript": transcript,
            "report": row["report"],
            "diff": row["diff"],
            "stop_reason": row["stop_reason"],
            "parent_id": row["parent_id"],
            "client": row["client"],
            "continued_from": row["continued_from"],
            "backend": row["backend"],
            "billed_to": row["billed_to"],
        }
    )
