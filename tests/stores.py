"""Run store locations for tests: one parametrized fixture gives each test a fresh SQLite file and a
fresh PostgreSQL schema, so the same suite runs against both stores.

PostgreSQL cases need SUBAGENTS_TEST_POSTGRES_URL (`.ci/run` starts a server and sets it). Without it
they skip, saying why, unless SUBAGENTS_REQUIRE_POSTGRES=1, when they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import anyio
import pytest

from subagents.history.store import RunStore, store_for

# Read once at import: the autouse fixture in conftest.py clears SUBAGENTS_* before each test.
POSTGRES_URL = os.environ.get("SUBAGENTS_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("SUBAGENTS_REQUIRE_POSTGRES") == "1"
BACKENDS = ("sqlite", "postgresql")
T = TypeVar("T")


def postgres_url() -> str:
    """The test server's URL, or skip (fail when PostgreSQL is required)."""
    if POSTGRES_URL:
        return POSTGRES_URL
    reason = "no PostgreSQL server: set SUBAGENTS_TEST_POSTGRES_URL (`.ci/run` starts one)"
    if REQUIRE_POSTGRES:
        pytest.fail(f"SUBAGENTS_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(params=BACKENDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A location with no store yet: a SQLite file path, or a URL to an empty PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "runs.db")
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def backend(store_location: str) -> str:
    return "postgresql" if store_location.startswith("postgresql://") else "sqlite"


class postgres_schema:  # noqa: N801 - used like a function: `with postgres_schema() as url`
    """A fresh schema on the test server, as a URL whose search_path points at it; dropped afterwards."""

    def __init__(self) -> None:
        self.base = postgres_url()
        self.name = f"t_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> str:
        self._execute(f"CREATE SCHEMA {self.name}")
        parts = urlsplit(self.base)
        option = "options=" + quote(f"-csearch_path={self.name}")
        query = f"{parts.query}&{option}" if parts.query else option
        return urlunsplit(parts._replace(query=query))

    def __exit__(self, *exc: object) -> None:
        self._execute(f"DROP SCHEMA {self.name} CASCADE")

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(sql.encode())


def on_store(location: str | Path, read: Callable[[RunStore], Awaitable[T]]) -> T:
    """From sync test code: open the store, run `read` on it, close it."""

    async def main() -> T:
        async with store_for(location) as store:
            return await read(store)

    return anyio.run(main)
