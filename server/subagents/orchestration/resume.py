"""Finishing the teams a stopped server left behind: a server on the same store adopts each interrupted team
run (one process wins), and its workers take the queue up where it stopped, in the background.

The caller who started the team is gone with the old server. The run keeps its id, so a client that
polls `get_run` (a background start) sees it running again and then its result; either way it ends with a
recorded status and result, readable with `get_run`, `subagents runs show` or `subagents://runs/{id}`.
The run is resumed in its principal's name, its children reading where they read before: a server that may
not read all of those roots (an operator's --root narrows them) leaves it for one that may.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio

from subagents.errors import SubagentsError
from subagents.history.records import RunRecord
from subagents.jobs import Job, StartedSink
from subagents.messages import Usage
from subagents.orchestration import team
from subagents.orchestration.args import PatternInputError, TeamArgs, parse_args
from subagents.orchestration.base import PATTERN_MODEL, PatternOutcome
from subagents.orchestration.runner import execute, recorded_arguments, recorded_roots
from subagents.principals import LOCAL, Principal

if TYPE_CHECKING:
    from subagents.app import Subagents

log = logging.getLogger(__name__)
LOOK_AT_MOST = 100  # interrupted team runs looked at per sweep


async def resume_teams(app: Subagents) -> list[str]:
    """Adopt and restart every interrupted team run in the store; returns their ids."""
    store = app.store
    if store is None:
        return []
    candidates = set(await store.parents_with_queued_tasks())
    candidates |= {s.id for s in await store.list(agent=team.DEFINITION.name, status="interrupted", limit=LOOK_AT_MOST)}
    resumed = []
    for run_id in sorted(candidates):
        record = await store.get(run_id)
        if record.agent != team.DEFINITION.name or record.model != PATTERN_MODEL or record.status != "interrupted":
            continue  # another pattern's queue, or a team that is still running (elsewhere) or has ended
        roots = _roots(app, record)
        if roots is False:
            continue  # it read where this server may not: left for a server that may
        if not await store.adopt_run(run_id):
            continue  # another server on the store took it first
        if await _restart(app, record, roots):
            resumed.append(run_id)
    return resumed


async def keep_resuming(app: Subagents) -> None:
    """For a server's lifetime: resume the teams stopped servers left, at start and then once a lease period
    (a replica that dies leaves its teams to whichever replica's sweep notices first)."""
    while True:
        try:
            if resumed := await resume_teams(app):
                log.warning("resumed %d team run(s) a stopped server left: %s", len(resumed), ", ".join(resumed))
        except Exception as exc:  # the store is down for a moment: look again next time
            log.warning("could not look for interrupted team runs: %s", exc)
        await anyio.sleep(app.settings.lease_ttl_s)


def _roots(app: Subagents, record: RunRecord) -> tuple[Path, ...] | None | Literal[False]:
    """The roots the team's children read (None: the server's), or False when this server may not read all
    of them (a stdio server trusts the local user's roots; an operator's --root narrows them)."""
    recorded = recorded_roots(record)
    if recorded is None:
        return None
    roots = app.roots_for(recorded)
    if set(roots) != {p.resolve() for p in recorded}:
        log.debug("team %s reads %s, outside this server's roots; not resuming it here", record.id, recorded)
        return False
    return roots


async def _restart(app: Subagents, record: RunRecord, roots: tuple[Path, ...] | None) -> bool:
    principal = LOCAL if record.principal is None else Principal(record.principal)
    raw = {"task": record.input.task, "context": record.input.context, "files": list(record.input.files)}
    raw |= recorded_arguments(record)

    async def run(job: Job, started: StartedSink) -> PatternOutcome:
        args = parse_args(TeamArgs, {k: v for k, v in raw.items() if v is not None}, team.DEFINITION.name)
        return await execute(
            app,
            team.DEFINITION,
            args,
            events=job.on_event,
            started=started,
            client=record.client,
            roots=roots,
            principal=principal,
            resumed=record.id,
        )

    try:
        await app.jobs.start(team.DEFINITION.name, run, principal=principal)
    except (SubagentsError, PatternInputError) as exc:  # an agent gone from the catalog, the run cap, ...
        log.warning("team %s could not be resumed: %s", record.id, exc)
        await app.recorder.finish(
            record.id,
            status="failed",
            report=None,
            error=f"The server stopped mid-team, and the team could not be resumed: {exc}",
            usage=Usage(),
            cost_usd=0.0,
            turns=0,
            stop_reason="interrupted",
        )
        return False
    return True
