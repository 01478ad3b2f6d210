"""`subagents runs …`: look back at recorded runs (list, show one with its transcript, stats).

Output for people goes to stdout, errors to stderr. The `render_*` functions are pure, so they can be
tested without a subprocess. These commands only read: a store that does not exist is not created.
They work on either store (a SQLite file or a postgresql:// URL).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date, datetime, time
from typing import TextIO, TypeVar

import anyio

from subagents.cli.pattern_tree import Node, arguments, is_pattern, load_tree, render_tree, totals
from subagents.errors import SubagentsError
from subagents.history.records import STATUSES, AgentStats, RunNotFoundError, RunRecord, RunSummary
from subagents.history.store import RunStore, default_location, store_exists, store_for
from subagents.messages import (
    ContentBlock,
    Message,
    RedactedThinkingBlock,
    ServerToolResultBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

TASK_CHARS = 50
TOOL_ARGS_CHARS = 200
RESULT_LINES = 40
ID_PAGE = 1000
LABEL = 11  # width of the labels in `runs show`'s header
NO_RUNS = "No runs yet."
NO_STORE = "No run store at {where} yet; runs are recorded when the server or `subagents run` runs an agent."
# Terminal control characters other than newline and tab: a transcript holds text the agent read, and
# printing an escape sequence from it raw would let a file drive the user's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


T = TypeVar("T")
STORE_HELP = (
    "the run store: a SQLite file or a postgresql:// URL (env SUBAGENTS_STORE; default "
    "$XDG_DATA_HOME/subagents/runs.db, else ~/.local/share/subagents/runs.db)"
)


class _AmbiguousIdError(SubagentsError):
    """A run id prefix matches more than one run."""


# --- the command group ---


def add_runs_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `runs list|show|stats` to a `subagents` subparsers object."""
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    runs = sub.add_parser("runs", help="list, show or sum up recorded runs")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)

    listing = runs_sub.add_parser("list", parents=[store], help="recent runs, newest first")
    listing.add_argument("--agent", help="only this agent's runs")
    listing.add_argument("--status", choices=STATUSES, help="only runs with this status")
    listing.add_argument("--limit", type=_positive_int, default=20, help="at most this many runs (default 20)")
    listing.add_argument("--json", action="store_true", help="print the runs as a JSON list")
    listing.set_defaults(handler=cmd_runs_list)

    show = runs_sub.add_parser("show", parents=[store], help="one run: its input, transcript and report")
    show.add_argument("run_id", metavar="RUN_ID", help="a run id, or a unique prefix of one")
    show.add_argument("--json", action="store_true", help="print the whole run record as JSON")
    show.set_defaults(handler=cmd_runs_show)

    stats = runs_sub.add_parser("stats", parents=[store], help="calls, outcomes, tokens and cost per agent")
    stats.add_argument(
        "--since", type=_local_date, metavar="YYYY-MM-DD", help="only runs started on or after this day (local time)"
    )
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=cmd_runs_stats)


def cmd_runs_list(args: argparse.Namespace) -> int:
    summaries = _read(args.store, lambda s: s.list(agent=args.agent, status=args.status, limit=args.limit))
    if summaries is None:
        return 0
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in summaries], indent=2, ensure_ascii=False))
    else:
        filtered = args.agent is not None or args.status is not None
        print(render_list(summaries, empty="No runs match those filters." if filtered else NO_RUNS))
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    async def show(store: RunStore) -> tuple[RunRecord, tuple[Node, ...] | None]:
        record = await store.get(await find_run_id(store, args.run_id))
        return record, await load_tree(store, record) if is_pattern(record) else None

    try:
        found = _read(args.store, show, stream=sys.stderr)
    except (RunNotFoundError, _AmbiguousIdError) as exc:
        print(f"subagents: {exc}", file=sys.stderr)
        return 1
    if found is None:
        return 1
    record, tree = found
    print(record.model_dump_json(indent=2) if args.json else render_run(record, tree))
    return 0


def cmd_runs_stats(args: argparse.Namespace) -> int:
    stats = _read(args.store, lambda s: s.stats(since=args.since))
    if stats is None:
        return 0
    if args.json:
        payload = {
            "since": args.since.isoformat() if args.since else None,
            "rows": [s.model_dump(mode="json") for s in stats],
            "total": _total(stats).model_dump(mode="json") if stats else None,
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print(render_stats(stats, since=args.since))
    return 0


def _read(location: str | None, read: Callable[[RunStore], Awaitable[T]], *, stream: TextIO | None = None) -> T | None:
    """What `read` returns from the store at `location` (default: default_location()), or None, said out
    loud, if that SQLite file does not exist: a look at history must not leave an empty store behind."""
    where = location or default_location()
    if not store_exists(where):
        print(NO_STORE.format(where=where), file=stream or sys.stdout)
        return None

    async def main() -> T | None:
        async with store_for(where, migrate=False) as probe:
            status = await probe.schema_status()
            if status.version is not None and not status.pending and not status.newer:
                return await read(probe)
        if status.version is None:
            return None
        async with store_for(where) as store:  # migrates an older schema, refuses a newer one
            return await read(store)

    found = anyio.run(main)
    if found is None:
        print(NO_STORE.format(where=where), file=stream or sys.stdout)
    return found


async def find_run_id(store: RunStore, wanted: str) -> str:
    """`wanted` itself if a run has that id, else the one id that starts with it (or with `run_` + it).

    Raises:
        RunNotFoundError: nothing matches.
        _AmbiguousIdError: several runs match.
    """
    try:
        return (await store.get(wanted)).id
    except RunNotFoundError:
        if not wanted:
            raise
    prefixes = (wanted,) if wanted.startswith("run_") else (wanted, f"run_{wanted}")
    matches: list[str] = []
    for prefix in prefixes:
        matches += [i for i in await store.match_ids(prefix, limit=ID_PAGE) if i not in matches]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFoundError(wanted)
    shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
    raise _AmbiguousIdError(f"{wanted!r} matches {len(matches)} runs ({shown}); give more of the id.")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _local_date(text: str) -> datetime:
    """YYYY-MM-DD -> local midnight of that day, timezone-aware."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None
    return datetime.combine(day, time()).astimezone()


# --- rendering: pure functions ---


def render_list(summaries: Sequence[RunSummary], *, empty: str = NO_RUNS) -> str:
    """A table of runs, one per line, in the order given; `empty` when there are none."""
    if not summaries:
        return empty
    headers = ("ID", "STATUS", "AGENT", "MODEL", "STARTED", "DURATION", "TURNS", "TOKENS IN/OUT", "COST", "TASK")
    return _table(headers, [_list_row(s) for s in summaries], right={5, 6, 7, 8})


def _list_row(s: RunSummary) -> tuple[str, ...]:
    seconds = None if s.finished_at is None else (s.finished_at - s.created_at).total_seconds()
    tokens, cost = f"{_count(s.usage.input_tokens)}/{_count(s.usage.output_tokens)}", _cost(s.cost_usd)
    if s.model == "pattern":  # its children did the spending: `runs show` sums them up
        tokens, cost = "-", "-"
    return (
        s.id,
        s.status,
        s.agent,
        s.model,
        _local(s.created_at),
        _duration(seconds),
        str(s.turns),
        tokens,
        cost,
        _one_line(s.task, TASK_CHARS),
    )


def render_stats(stats: Sequence[AgentStats], *, since: datetime | None = None) -> str:
    """Per (agent, model): calls, outcomes, tokens and cost, with a total row."""
    if not stats:
        return f"No runs since {since.date().isoformat()}." if since else NO_RUNS
    headers = ("AGENT", "MODEL", "CALLS", "COMPLETED", "FAILED", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST")
    rows = [_stats_row(s) for s in stats]
    if len(stats) > 1:
        rows.append(_stats_row(_total(stats)))
    lines = [f"Runs started since {since.date().isoformat()}:"] if since else []
    lines.append(_table(headers, rows, right=set(range(2, 10))))
    if any(s.cost_unknown_runs for s in stats):
        lines.append("(? = cost unknown: no price for the model; ≥ = only some runs' cost is known)")
    return "\n".join(lines)


def render_run(record: RunRecord, tree: tuple[Node, ...] | None = None) -> str:
    """One run for a terminal: header, input, transcript, report. A pattern run (with its `tree` of children)
    shows its arguments and children, with their totals, in place of a transcript."""
    if tree is None:
        parts = [_run_header(record), *_input_sections(record)]
        parts += [_message(m) for m in record.transcript]
    else:
        usage, cost = totals(tree)
        parts = [_run_header(record.model_copy(update={"usage": usage, "cost_usd": cost})), *_input_sections(record)]
        parts.append(_section("arguments", json.dumps(arguments(record), ensure_ascii=False)))
        parts.append(_section("children", render_tree(tree)))
    parts.append(_section("report", record.report if record.report is not None else "(no report)"))
    return _clean("\n\n".join(parts))


def _run_header(r: RunRecord) -> str:
    fields: list[tuple[str, str | None]] = [
        ("run", r.id),
        ("agent", r.agent),
        ("model", r.model),
        ("backend", r.backend),
        ("billed to", r.billed_to),
        ("status", r.status),
        ("error", r.error),
        ("started", _local(r.created_at, seconds=True)),
        ("finished", _local(r.finished_at, seconds=True) if r.finished_at else "(still running)"),
        ("duration", _duration(r.duration_s)),
        ("turns", f"{r.turns}" + (f" (stopped: {r.stop_reason})" if r.stop_reason else "")),
        ("usage", _usage(r.usage)),
        ("cost", _cost(r.cost_usd)),
        ("client", r.client),
        ("principal", r.principal),
        ("parent", r.parent_id),
        ("continues", r.continued_from),
    ]
    shown = [(k, v) for k, v in fields if v is not None]
    return "\n".join(f"{k + ':':<{LABEL}}{_indent(v, LABEL)}" for k, v in shown)


def _input_sections(r: RunRecord) -> list[str]:
    parts = [_section("task", r.input.task)]
    if r.input.context:
        parts.append(_section("context", r.input.context))
    if r.input.files:
        parts.append(_section("files", "\n".join(r.input.files)))
    return parts


def _message(message: Message) -> str:
    return _section(message.role, "\n".join(_block(b) for b in message.content) or "(empty)")


def _block(block: ContentBlock) -> str:
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, ToolUseBlock):
        args = json.dumps(block.input, ensure_ascii=False, default=str)
        return f"→ {block.name} {_truncate(args, TOOL_ARGS_CHARS)}"
    if isinstance(block, ToolResultBlock):
        head = "← error" if block.is_error else "← result"
        return f"{head}\n{_indent_lines(block.content, RESULT_LINES)}"
    if isinstance(block, ThinkingBlock):
        return f"(thinking, {len(block.thinking)} chars)"
    if isinstance(block, ServerToolUseBlock):  # run by the Messages API itself
        args = json.dumps(block.input, ensure_ascii=False, default=str)
        return f"→ {block.name} (API) {_truncate(args, TOOL_ARGS_CHARS)}"
    if isinstance(block, ServerToolResultBlock):
        items = len(block.content) if isinstance(block.content, list) else 1
        return f"← {block.type} ({items} item{'s' if items != 1 else ''})"
    assert isinstance(block, RedactedThinkingBlock)
    return "(redacted thinking)"


def _section(title: str, body: str) -> str:
    return f"── {title} ──\n{body}"


def _indent_lines(text: str, max_lines: int, prefix: str = "    ") -> str:
    lines = text.splitlines() or [""]
    kept = [prefix + line for line in lines[:max_lines]]
    if len(lines) > max_lines:
        kept.append(f"{prefix}… {len(lines) - max_lines} more lines")
    return "\n".join(kept)


def _indent(text: str, width: int) -> str:
    """Continuation lines of a header value line up under its first line."""
    return text.replace("\n", "\n" + " " * width)


def _stats_row(s: AgentStats) -> tuple[str, ...]:
    cost = _cost(s.cost_usd)
    if s.cost_usd is not None and s.cost_unknown_runs:
        cost = f"≥{cost}"
    return (
        s.agent,
        s.model,
        str(s.calls),
        str(s.completed),
        str(s.failed),
        _count(s.input_tokens),
        _count(s.output_tokens),
        _count(s.cache_read_input_tokens),
        _count(s.cache_creation_input_tokens),
        cost,
    )


def _total(stats: Sequence[AgentStats]) -> AgentStats:
    known = [s.cost_usd for s in stats if s.cost_usd is not None]

    def total(pick: Callable[[AgentStats], int]) -> int:
        return sum(pick(s) for s in stats)

    return AgentStats(
        agent="TOTAL",
        model="",
        calls=total(lambda s: s.calls),
        completed=total(lambda s: s.completed),
        failed=total(lambda s: s.failed),
        input_tokens=total(lambda s: s.input_tokens),
        output_tokens=total(lambda s: s.output_tokens),
        cache_read_input_tokens=total(lambda s: s.cache_read_input_tokens),
        cache_creation_input_tokens=total(lambda s: s.cache_creation_input_tokens),
        cost_usd=sum(known) if known else None,
        cost_unknown_runs=total(lambda s: s.cost_unknown_runs),
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, right: set[int]) -> str:
    cells = [list(headers), *[[_clean(_one_line(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    last = len(headers) - 1

    def line(row: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if i in right else (c if i == last else c.ljust(w))
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return "\n".join(line(row) for row in cells)


# --- small formatters ---


def _local(moment: datetime, *, seconds: bool = False) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _cost(cost: float | None) -> str:
    return "?" if cost is None else f"${cost:.4f}"


def _count(n: int) -> str:
    return f"{n:,}"


def _usage(u: Usage) -> str:
    return (
        f"{_count(u.input_tokens)} in, {_count(u.output_tokens)} out, "
        f"{_count(u.cache_read_input_tokens)} cache read, {_count(u.cache_creation_input_tokens)} cache write"
    )


def _one_line(text: str, limit: int | None = None) -> str:
    flat = " ".join(text.split())
    return flat if limit is None else _truncate(flat, limit)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean(text: str) -> str:
    """Control characters as visible escapes (\\x1b), so printed text cannot drive the terminal."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text.replace("\r\n", "\n"))


def runs_main(argv: Sequence[str] | None = None) -> int:
    """Only the `runs` group, for `python -m subagents.cli.runs runs …` until the main CLI has it."""
    parser = argparse.ArgumentParser(prog="subagents")
    add_runs_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except SubagentsError as exc:
        print(f"subagents: {exc}", file=sys.stderr)
        code = 2
    return code


if __name__ == "__main__":
    sys.exit(runs_main())
