"""A PostgreSQL database for the store figures: a fresh schema on the server that SUBAGENTS_BENCH_POSTGRES_URL
(or the test suite's SUBAGENTS_TEST_POSTGRES_URL; `.ci/postgres.sh` starts one) names, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit


def postgres_url() -> str | None:
    return os.environ.get("SUBAGENTS_BENCH_POSTGRES_URL") or os.environ.get("SUBAGENTS_TEST_POSTGRES_URL") or None


@contextmanager
def fresh_schema(base: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema on `base`'s server."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}".encode())
    parts = urlsplit(base)
    option = "options=" + quote(f"-csearch_path={name}")
    try:
        yield urlunsplit(parts._replace(query=f"{parts.query}&{option}" if parts.query else option))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE".encode())


NO_POSTGRES = "no PostgreSQL: set SUBAGENTS_BENCH_POSTGRES_URL (or source .ci/postgres.sh and run pg_start)"
