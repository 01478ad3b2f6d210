"""`subagents runs list|show|stats`: recorded runs, read back for a person or as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from subagents.cli.runs import find_run_id, render_list, render_run, render_stats, runs_main
from subagents.history.records import RunRecord
from subagents.history.store import RunInput, RunNotFoundError, RunStatus, RunStore, store_for
from subagents.messages import Message, Usage
from tests.helpers import child_env
from tests.stores import on_store

# Switch to [sys.executable, "-m", "subagents", "runs"] once cli.py has the `runs` group.
RUNS_CMD = [sys.executable, "-m", "subagents", "runs"]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LONG_TASK = "Review src/app.py for SQL injection,\nthen check every other query in the package too"
BIG_ARGS = {"pattern": "x" * 300}
RESULT = "\n".join(f"line {i}" for i in range(50))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Runs:
    path: str  # a SQLite file, or a postgresql:// URL
    review: str  # completed, full transcript, known cost
    route: str  # failed, unknown cost
    again: str  # completed, continues `review`
    live: str  # still running


def msg(role: str, *blocks: dict[str, object]) -> Message:
    return Message.model_validate({"role": role, "content": list(blocks)})


TRANSCRIPT = (
    msg("user", {"type": "text", "text": "<task>Review src/app.py</task>"}),
    msg(
        "assistant",
        {"type": "thinking", "thinking": "t" * 123, "signature": "sig"},
        {"type": "text", "text": "Reading the file. \x1b[31mred\x1b[0m"},
        {"type": "tool_use", "id": "tu1", "name": "Read", "input": {"file_path": "src/app.py"}},
        {"type": "tool_use", "id": "tu2", "name": "Grep", "input": BIG_ARGS},
    ),
    msg(
        "user",
        {"type": "tool_result", "tool_use_id": "tu1", "content": RESULT},
        {"type": "tool_result", "tool_use_id": "tu2", "content": "no such pattern", "is_error": True},
    ),
    msg(
        "assistant",
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Found an injection."},
    ),
)


async def finish(
    store: RunStore,
    run_id: str,
    status: RunStatus,
    cost: float | None,
    *,
    report: str = "done",
    error: str | None = None,
) -> None:
    await store.finish(
        run_id,
        status=status,
        report=report,
        error=error,
        usage=Usage(input_tokens=12_345, output_tokens=678, cache_read_input_tokens=9, cache_creation_input_tokens=1),
        cost_usd=cost,
        turns=2,
        stop_reason="end_turn",
    )


async def populate(location: str) -> Runs:
    clock = Clock()
    async with store_for(location, now=clock) as store:
        review = await store.create_run(
            agent="security-reviewer",
            model="claude-sonnet-5",
            input=RunInput(task=LONG_TASK, context="a web app", files=("src/app.py",)),
        )
        await store.append_messages(review, TRANSCRIPT)
        clock.now += timedelta(seconds=75)
        await finish(store, review, "completed", 0.0123, report="SQL injection in find().")
        clock.now = T0 + timedelta(days=1)
        route = await store.create_run(agent="router", model="claude-haiku-5", input=RunInput(task="route this"))
        clock.now += timedelta(seconds=2)
        await finish(store, route, "failed", None, error="model overloaded")
        clock.now = T0 + timedelta(days=2)
        again = await store.create_run(
            agent="security-reviewer",
            model="claude-sonnet-5",
            input=RunInput(task="and the tests"),
            continued_from=review,
        )
        await finish(store, again, "completed", 0.5)
        clock.now = T0 + timedelta(days=3)
        live = await store.create_run(agent="router", model="claude-haiku-5", input=RunInput(task="still going"))
    return Runs(location, review, route, again, live)


async def populate_nothing(location: str) -> None:
    async with store_for(location):
        pass


@pytest.fixture
def runs(store_location: str) -> Runs:
    return anyio.run(populate, store_location)


def get(runs: Runs, run_id: str) -> RunRecord:
    return on_store(runs.path, lambda s: s.get(run_id))


def run_runs(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUNS_CMD, *args],
        capture_output=True,
        text=True,
        env=child_env({"TZ": "UTC", **(env or {})}),
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


# --- rendering, in process ---


def test_list_table_has_one_row_per_run_newest_first(runs: Runs) -> None:
    lines = render_list(on_store(runs.path, lambda s: s.list())).splitlines()
    assert " ".join(lines[0].split()) == "ID STATUS AGENT MODEL STARTED DURATION TURNS TOKENS IN/OUT COST TASK"
    assert [line.split()[0] for line in lines[1:]] == [runs.live, runs.again, runs.route, runs.review]
    review = lines[4]
    assert local(T0) in review and "1m15s" in review and "12,345/678" in review and "$0.0123" in review
    assert review.endswith("Review src/app.py for SQL injection, then check e…")
    assert len(review.split("  ")[-1].strip()) <= 50
    route = lines[3]
    assert "failed" in route and "2.0s" in route and route.split()[-3] == "?"
    assert lines[1].split()[6] == "-"  # a running run has no duration yet


def test_list_of_nothing_says_so() -> None:
    assert render_list([]) == "No runs yet."


def test_show_renders_every_block_type(runs: Runs) -> None:
    out = render_run(get(runs, runs.review))
    assert f"run:       {runs.review}" in out and "status:    completed" in out and "cost:      $0.0123" in out
    assert "duration:  1m15s" in out and "turns:     2 (stopped: end_turn)" in out
    assert "12,345 in, 678 out, 9 cache read, 1 cache write" in out
    assert "── task ──\n" + LONG_TASK in out and "── context ──\na web app" in out and "── files ──\nsrc/app.py" in out
    assert out.count("── user ──") == 2 and out.count("── assistant ──") == 2
    assert "(thinking, 123 chars)" in out and "(redacted thinking)" in out and "t" * 20 not in out
    assert '→ Read {"file_path": "src/app.py"}' in out
    assert "← result\n    line 0\n    line 1\n" in out and "← error\n    no such pattern" in out
    assert out.rstrip().endswith("── report ──\nSQL injection in find().")


def test_show_truncates_long_tool_args_and_results(runs: Runs) -> None:
    out = render_run(get(runs, runs.review))
    grep = next(line for line in out.splitlines() if line.startswith("→ Grep"))
    assert len(grep) == len("→ Grep ") + 200 and grep.endswith("…")
    assert "    line 39\n    … 10 more lines" in out and "line 40" not in out


def test_show_does_not_pass_terminal_escapes_through(runs: Runs) -> None:
    out = render_run(get(runs, runs.review))
    assert "\x1b" not in out and "Reading the file. \\x1b[31mred\\x1b[0m" in out


def test_show_of_a_failed_and_a_continued_run(runs: Runs) -> None:
    failed, again, live = (render_run(get(runs, i)) for i in (runs.route, runs.again, runs.live))
    assert "error:     model overloaded" in failed and "cost:      ?" in failed
    assert f"continues: {runs.review}" in again
    assert "finished:  (still running)" in live and "── report ──\n(no report)" in live


def test_stats_per_agent_with_unknown_cost_and_a_total(runs: Runs) -> None:
    lines = render_stats(on_store(runs.path, lambda s: s.stats())).splitlines()
    assert lines[0].split()[:3] == ["AGENT", "MODEL", "CALLS"]
    router = lines[1].split()
    assert router[:5] == ["router", "claude-haiku-5", "2", "0", "1"] and router[-1] == "?"
    reviewer = lines[2].split()
    assert reviewer[:5] == ["security-reviewer", "claude-sonnet-5", "2", "2", "0"] and reviewer[-1] == "$0.5123"
    total = lines[3].split()
    assert total[:4] == ["TOTAL", "4", "2", "1"] and total[-1] == "≥$0.5123"
    assert "? = cost unknown" in lines[-1]


def test_stats_of_nothing_says_so() -> None:
    assert render_stats([]) == "No runs yet."
    assert render_stats([], since=T0) == "No runs since 2026-03-01."


@pytest.mark.anyio
async def test_run_id_prefixes(runs: Runs) -> None:
    async with store_for(runs.path) as store:
        assert await find_run_id(store, runs.review) == runs.review
        assert await find_run_id(store, runs.review[:10]) == runs.review
        assert await find_run_id(store, runs.review.removeprefix("run_")[:6]) == runs.review
        with pytest.raises(RunNotFoundError):
            await find_run_id(store, "run_nothing")
        with pytest.raises(Exception, match="matches 4 runs"):
            await find_run_id(store, "run_")


# --- the handlers, in process (argument parsing, exit codes, store handling) ---


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = runs_main(["runs", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_filters_limit_and_no_match(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    store = ("--store", str(runs.path))
    code, out, _ = in_process(capsys, "list", "--agent", "security-reviewer", "--status", "completed", *store)
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == [runs.again, runs.review]
    _, out, _ = in_process(capsys, "list", "--limit", "1", *store)
    assert [line.split()[0] for line in out.splitlines()[1:]] == [runs.live]
    _, out, _ = in_process(capsys, "list", "--agent", "nobody", *store)
    assert out.strip() == "No runs match those filters."


def test_empty_store_and_store_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    anyio.run(populate_nothing, str(tmp_path / "empty.db"))
    monkeypatch.setenv("SUBAGENTS_STORE", str(tmp_path / "empty.db"))
    assert in_process(capsys, "list") == (0, "No runs yet.\n", "")
    assert in_process(capsys, "stats") == (0, "No runs yet.\n", "")


def test_show_ambiguous_prefix_and_missing_store(
    tmp_path: Path, runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = in_process(capsys, "show", "run_", "--store", str(runs.path))
    assert (code, out) == (1, "") and "'run_' matches 4 runs" in err
    code, out, err = in_process(capsys, "show", "run_x", "--store", str(tmp_path / "none.db"))
    assert (code, out) == (1, "") and "No run store at" in err and not (tmp_path / "none.db").exists()


def test_stats_json(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = in_process(capsys, "stats", "--json", "--store", str(runs.path))
    stats = json.loads(out)
    assert code == 0 and stats["since"] is None and stats["total"]["calls"] == 4
    router = next(row for row in stats["rows"] if row["agent"] == "router")
    assert router["cost_usd"] is None and router["cost_unknown_runs"] == 2
    assert stats["total"]["cost_usd"] == pytest.approx(0.5123) and stats["total"]["cost_unknown_runs"] == 2


@pytest.mark.parametrize("args", [["stats", "--since", "March"], ["list", "--limit", "0"], ["list", "--status", "x"]])
def test_bad_arguments_are_usage_errors(runs: Runs, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        runs_main(["runs", *args, "--store", str(runs.path)])
    assert exited.value.code == 2 and "usage:" in capsys.readouterr().err


# --- the real command, as a subprocess ---


def test_list_command_table(runs: Runs) -> None:
    table = run_runs("list", env={"SUBAGENTS_STORE": str(runs.path)})
    assert table.returncode == 0, table.stderr
    newest_first = [runs.live, runs.again, runs.route, runs.review]
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == newest_first
    assert "2026-03-01 12:00" in table.stdout  # local time, and TZ=UTC here


def test_list_command_json(runs: Runs) -> None:
    result = run_runs("list", "--json", "--status", "failed", "--store", str(runs.path))
    assert result.returncode == 0, result.stderr
    [route] = json.loads(result.stdout)
    assert route["id"] == runs.route and route["cost_usd"] is None and route["error"] == "model overloaded"
    assert datetime.fromisoformat(route["created_at"]) == T0 + timedelta(days=1)
    assert route["usage"]["input_tokens"] == 12_345


def test_list_and_stats_commands_on_a_missing_store(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "runs.db"
    for command in ("list", "stats"):
        result = run_runs(command, "--store", str(missing))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"No run store at {missing} yet; runs are recorded when")
    assert not missing.exists() and not missing.parent.exists()


def test_show_command_json_round_trips_to_the_record(runs: Runs) -> None:
    result = run_runs("show", runs.review[:10], "--json", "--store", str(runs.path))
    assert result.returncode == 0, result.stderr
    assert RunRecord.model_validate_json(result.stdout) == get(runs, runs.review)


def test_show_command_text_and_unknown_id(runs: Runs) -> None:
    shown = run_runs("show", runs.route, "--store", str(runs.path))
    assert shown.returncode == 0 and "error:     model overloaded" in shown.stdout
    unknown = run_runs("show", "run_nope", "--store", str(runs.path))
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "No run with id 'run_nope' in the run store" in unknown.stderr


def test_stats_command_since(runs: Runs) -> None:
    since = run_runs("stats", "--since", "2026-03-03", "--store", str(runs.path))
    assert since.returncode == 0, since.stderr
    lines = since.stdout.splitlines()
    assert lines[0] == "Runs started since 2026-03-03:"
    assert lines[2].split()[:3] == ["router", "claude-haiku-5", "1"]
    assert lines[3].split()[:3] == ["security-reviewer", "claude-sonnet-5", "1"]
    assert lines[2].split()[-1] == "?" and lines[3].split()[-1] == "$0.5000"
