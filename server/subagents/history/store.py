"""The run store: one interface (`RunStore`), two implementations (SQLite, the embedded default, and
PostgreSQL for team deployments), picked by `store_for(location)`.

This module gathers what callers need, so they import from one place.
"""

from __future__ import annotations

from subagents.history.base import (
    CANCEL_POLL_S,
    INTERRUPTED_ERROR,
    LEASE_RENEW_S,
    LEASE_TTL_S,
    TASK_INTERRUPTED_ERROR,
    RunStore,
)
from subagents.history.factory import default_location, is_postgres, store_exists, store_for
from subagents.history.records import (
    AgentStats,
    RunInput,
    RunNotFoundError,
    RunRecord,
    RunStatus,
    RunSummary,
    SchemaStatus,
    StoreError,
    TaskCounts,
    TaskNotFoundError,
    TaskRecord,
    TaskSpec,
)
from subagents.history.sqlite import SQLiteRunStore

__all__ = [
    "CANCEL_POLL_S",
    "INTERRUPTED_ERROR",
    "LEASE_RENEW_S",
    "LEASE_TTL_S",
    "TASK_INTERRUPTED_ERROR",
    "AgentStats",
    "RunInput",
    "RunNotFoundError",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "RunSummary",
    "SQLiteRunStore",
    "SchemaStatus",
    "StoreError",
    "TaskCounts",
    "TaskNotFoundError",
    "TaskRecord",
    "TaskSpec",
    "default_location",
    "is_postgres",
    "store_exists",
    "store_for",
]
