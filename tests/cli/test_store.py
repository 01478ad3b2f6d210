"""`subagents store migrate|check`, on both stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from subagents.cli.main import build_parser
from subagents.history.schema import MIGRATIONS
from tests.helpers import run_cli

LATEST = len(MIGRATIONS)


def store_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    parsed = build_parser().parse_args(["store", *args])
    code = parsed.handler(parsed)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_then_migrate_then_check(store_location: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not store_location.startswith("postgresql://"):
        Path(store_location).touch()  # an empty file: a store with no schema yet
    code, out, _ = store_cli(capsys, "check", "--store", store_location)
    assert code == 1 and "none yet; `subagents store migrate`" in out

    code, out, _ = store_cli(capsys, "migrate", "--store", store_location)
    assert code == 0 and f"to schema version {LATEST}." in out
    code, out, _ = store_cli(capsys, "migrate", "--store", store_location)
    assert code == 0 and "nothing to do" in out

    code, out, _ = store_cli(capsys, "check", "--store", store_location, "--json")
    status = json.loads(out)
    assert code == 0 and (status["version"], status["pending"], status["current"]) == (LATEST, [], True)
    assert status["backend"] == ("postgresql" if store_location.startswith("postgresql://") else "sqlite")


def test_check_of_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "runs.db"
    result = run_cli("store", "check", "--store", str(missing))
    assert result.returncode == 1 and "No run store at" in result.stderr
    assert not missing.parent.exists()


def test_an_unreachable_postgres_is_one_line_not_a_traceback() -> None:
    result = run_cli("store", "check", "--store", "postgresql://me:hunter2@127.0.0.1:1/runs?connect_timeout=2")
    assert result.returncode == 2
    assert result.stderr.startswith("subagents: Cannot connect to the PostgreSQL run store postgresql://me:***@")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
