"""`subagents store migrate|check`: bring a run store's schema up to date, or say how it stands.

Both work on either store (a SQLite file or a postgresql:// URL). `migrate` is safe to run from
several replicas at once (PostgreSQL applies migrations under an advisory lock; SQLite under its write
lock). `check` changes nothing and exits 1 when the store needs `migrate` (or a newer subagents).
"""

from __future__ import annotations

import argparse
import json
import sys

import anyio

from subagents.cli.runs import NO_STORE, STORE_HELP
from subagents.history.records import SchemaStatus
from subagents.history.store import default_location, store_exists, store_for


def add_store_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `store migrate|check` to a `subagents` subparsers object."""
    location = argparse.ArgumentParser(add_help=False)
    location.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    store = sub.add_parser("store", help="migrate or check the run store's schema")
    store_sub = store.add_subparsers(dest="store_command", required=True)
    migrate = store_sub.add_parser("migrate", parents=[location], help="apply the migrations the store lacks")
    migrate.set_defaults(handler=cmd_store_migrate)
    check = store_sub.add_parser(
        "check", parents=[location], help="where the store is and whether its schema is current (exit 1 if not)"
    )
    check.add_argument("--json", action="store_true", help="print the status as JSON")
    check.set_defaults(handler=cmd_store_check)


def cmd_store_migrate(args: argparse.Namespace) -> int:
    where = args.store or default_location()

    async def migrate() -> tuple[list[int], SchemaStatus]:
        async with store_for(where) as store:
            return store.applied, await store.schema_status()

    applied, status = anyio.run(migrate)
    if applied:
        print(f"Migrated the run store {status.where} ({status.backend}) to schema version {status.version}.")
    else:
        print(f"The run store {status.where} ({status.backend}) is at schema version {status.version}; nothing to do.")
    return 0


def cmd_store_check(args: argparse.Namespace) -> int:
    where = args.store or default_location()
    if not store_exists(where):
        print(NO_STORE.format(where=where), file=sys.stderr)
        return 1

    async def check() -> SchemaStatus:
        async with store_for(where, migrate=False) as store:
            return await store.schema_status()

    status = anyio.run(check)
    current = status.version is not None and not status.pending and not status.newer
    if args.json:
        print(json.dumps({**status.model_dump(mode="json"), "current": current}, indent=2))
    else:
        print(f"store:   {status.where} ({status.backend})")
        print(f"schema:  {describe(status)}")
    return 0 if current else 1


def describe(status: SchemaStatus) -> str:
    """The schema's state in one line, with what to do about it."""
    if status.newer:
        return (
            f"version {status.version}, newer than this subagents knows ({status.latest}): upgrade subagents "
            "before using this store"
        )
    if status.version is None:
        return f"none yet; `subagents store migrate` (or the first server start) creates version {status.latest}"
    if status.pending:
        return (
            f"version {status.version} of {status.latest}; {len(status.pending)} migrations pending "
            f"({', '.join(status.pending)}): run `subagents store migrate`"
        )
    return f"version {status.version} (current)"
