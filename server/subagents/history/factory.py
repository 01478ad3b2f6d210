"""Which run store a location names: a file path (SQLite) or a `postgresql://` URL."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from subagents.history.base import LEASE_TTL_S, RunStore, utc_now
from subagents.history.records import StoreError
from subagents.history.sqlite import MEMORY, SQLiteRunStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(POSTGRES_SCHEMES)


def default_location() -> str:
    """$SUBAGENTS_STORE (a path or a URL), else $XDG_DATA_HOME/subagents/runs.db, else
    ~/.local/share/subagents/runs.db."""
    if explicit := os.environ.get("SUBAGENTS_STORE"):
        return explicit if is_postgres(explicit) else str(Path(explicit).expanduser())
    data_home = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says to ignore a relative XDG_DATA_HOME.
    base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return str(base / "subagents" / "runs.db")


def store_for(
    location: str | Path | None = None,
    *,
    now: Callable[[], datetime] = utc_now,
    owner: str | None = None,
    lease_ttl_s: float = LEASE_TTL_S,
    migrate: bool = True,
) -> RunStore:
    """The store at `location` (default: `default_location()`), not yet open: `async with` it.

    Raises:
        StoreError: an unknown URL scheme, or a PostgreSQL URL without the `postgres` extra installed.
    """
    text = str(location) if location is not None else default_location()
    if is_postgres(text):
        try:
            from subagents.history.postgres import PostgresRunStore
        except ImportError as exc:
            raise StoreError(
                f"A PostgreSQL run store needs the `postgres` extra ({exc.name} is missing): "
                "pip install 'subagents[postgres]'."
            ) from None
        return PostgresRunStore(text, now=now, owner=owner, lease_ttl_s=lease_ttl_s, migrate=migrate)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreError(
            f"Unknown run store URL scheme {scheme!r} in {text.split('@')[-1]!r}; give a file path "
            "(SQLite) or a postgresql:// URL."
        )
    return SQLiteRunStore(text, now=now, owner=owner, lease_ttl_s=lease_ttl_s, migrate=migrate)


def store_exists(location: str) -> bool:
    """False for a SQLite file that is not there yet (reading history must not create one)."""
    return is_postgres(location) or location == MEMORY or Path(location).expanduser().exists()
