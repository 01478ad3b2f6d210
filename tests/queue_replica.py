"""One replica's workers on a shared task queue, as its own process: `python -m tests.queue_replica`.

A real `Subagents` app (its store, its leases and reaping, agent runs on the model at ANTHROPIC_BASE_URL)
whose N workers claim the parent run's queued tasks from the store and run each as a child agent run,
in the parent's principal's name, until no task is queued or running. Each claim and each finish is
printed as a JSON line on stdout, for the test to check that no task ran twice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import anyio

from subagents.app import Subagents
from subagents.config import Settings
from subagents.history.store import RunStore, TaskRecord
from subagents.principals import LOCAL, Principal


def say(event: str, task: TaskRecord, **fields: object) -> None:
    line = {"event": event, "pid": os.getpid(), "task": task.id, "attempt": task.attempts, **fields}
    print(json.dumps(line), flush=True)


async def worker(app: Subagents, store: RunStore, parent: str, principal: Principal) -> None:
    while True:
        task = await store.claim_task(parent)
        if task is None:
            counts = await store.task_counts(parent)
            if counts.total and counts.queued == 0 and counts.running == 0:
                return
            await anyio.sleep(0.05)  # tasks not queued yet, or others' claims that may come back (a dead replica's)
            continue
        say("claimed", task)

        async def attach(run_id: str, task: TaskRecord = task) -> None:
            await store.attach_task_run(task.id, attempt=task.attempts, run_id=run_id)

        outcome = await app.run(task.agent, task.input.task, parent_id=parent, principal=principal, started=attach)
        status = "completed" if outcome.status == "completed" else "failed"
        kept = await store.finish_task(
            task.id, attempt=task.attempts, status=status, result=outcome.report, error=outcome.error
        )
        say("finished", task, run_id=outcome.run_id, status=status, kept=kept)


async def serve(settings: Settings, parent: str, workers: int) -> None:
    async with Subagents.build(settings) as app:
        store = app.store
        assert store is not None
        owner = (await store.get(parent)).principal
        principal = Principal(owner) if owner else LOCAL
        print(json.dumps({"event": "ready", "pid": os.getpid(), "owner": store.owner}), flush=True)
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(worker, app, store, parent, principal)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.queue_replica")
    parser.add_argument("--store", required=True)
    parser.add_argument("--parent", required=True)
    parser.add_argument("--agents-dir", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--lease-ttl", type=float, default=2.0)
    args = parser.parse_args()
    settings = Settings(
        store_url=args.store,
        agents_dirs=(args.agents_dir,),
        bundled=False,
        lease_ttl_s=args.lease_ttl,
        max_concurrent_runs=args.workers,
        default_model="claude-haiku-5-5",
    )
    anyio.run(serve, settings, args.parent, args.workers)
    sys.exit(0)


if __name__ == "__main__":
    main()
