"""The run store's write path as it was before the writer (for store_overhead.py's "before" rows):
one connection behind a lock, every write its own transaction, called from worker threads."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from subagents.history.rows import encode_messages
from subagents.messages import Message, Usage


class LegacyStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        for pragma in ("busy_timeout = 5000", "journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
            self._conn.execute(f"PRAGMA {pragma}")

    def _write(self, sql: str, params: Sequence[object], many: Sequence[Sequence[object]] = ()) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            if many:
                self._conn.executemany(sql, many)
            else:
                self._conn.execute(sql, params)
            self._conn.execute("COMMIT")

    def create_run(self, agent: str, task: str) -> str:
        run_id = f"run_{uuid.uuid4().hex[:12]}"
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        self._write(
            "INSERT INTO runs (id, agent, model, status, input_json, created_at, owner)"
            " VALUES (?, ?, 'm', 'running', ?, ?, 'bench')",
            (run_id, agent, json.dumps({"task": task}), now),
        )
        return run_id

    def append_messages(self, run_id: str, messages: Sequence[Message]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            start = self._conn.execute(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            self._conn.executemany(
                "INSERT INTO messages (run_id, seq, role, content_json) VALUES (?, ?, ?, ?)",
                [(run_id, start + i, role, body) for i, (role, body) in enumerate(encode_messages(messages))],
            )
            self._conn.execute("COMMIT")

    def update_progress(self, run_id: str, turns: int, usage: Usage, cost: float) -> None:
        self._write(
            "UPDATE runs SET turns = ?, input_tokens = ?, output_tokens = ?, cost_usd = ? WHERE id = ?",
            (turns, usage.input_tokens, usage.output_tokens, cost, run_id),
        )

    def finish(self, run_id: str, usage: Usage, turns: int) -> None:
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        self._write(
            "UPDATE runs SET status = 'completed', report = 'ok', input_tokens = ?, output_tokens = ?, turns = ?,"
            " finished_at = ? WHERE id = ?",
            (usage.input_tokens, usage.output_tokens, turns, now, run_id),
        )

    def close(self) -> None:
        self._conn.close()
