"""How the PostgreSQL store's writer applies one batch: all jobs in one transaction, queued turns
through a pipeline; if anything fails, job by job, so each job hears of its own error only."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterable, Sequence

import psycopg

from subagents.history.postgres_ops import Conn
from subagents.history.writer import Job

# A job's work, on the writer's connection; `fast`: inside a pipeline, so skip checks that wait for a
# result (a failure still surfaces, as a database error, and the batch is then redone job by job).
Work = Callable[[Conn, bool], Awaitable[object]]


async def apply_alone(conn: Conn, job: Job[Work]) -> None:
    try:
        async with conn.transaction():
            assert job.run is not None
            job.result = await job.run(conn, False)
    except psycopg.OperationalError:
        raise  # the connection is gone: every job in the batch hears of it
    except Exception as exc:
        job.error = exc


async def apply_together(conn: Conn, jobs: Sequence[Job[Work]]) -> bool:
    """Every job in one transaction, without savepoints (each costs two round trips); runs of queued
    jobs (turns: nobody waits for their result) go through a pipeline, one round trip for all. If any
    job fails, nothing is kept, and False says to apply them one by one, so each hears of its own error."""
    try:
        async with conn.transaction():
            for queued, run in itertools.groupby(jobs, key=lambda job: job.done is None):
                if queued:
                    async with conn.pipeline():
                        await _run_all(conn, run, fast=True)
                else:
                    await _run_all(conn, run, fast=False)
    except psycopg.OperationalError:
        raise
    except Exception:
        return False
    return True


async def _run_all(conn: Conn, jobs: Iterable[Job[Work]], *, fast: bool) -> None:
    for job in jobs:
        assert job.run is not None
        job.result = await job.run(conn, fast)
