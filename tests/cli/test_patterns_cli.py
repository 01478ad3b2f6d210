"""Patterns from a terminal: `subagents fan-out …`, `subagents run route …`, and `runs show` on a pattern."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from subagents.cli.patterns import PATTERN_NAMES, parse_patterns
from subagents.errors import ConfigError
from subagents.orchestration import PATTERNS
from subagents.providers.testing import FakeMessagesServer, text
from tests.answers import review_json, route_json, verdict_json
from tests.conftest import model_env
from tests.helpers import run_cli
from tests.orchestration.helpers import Models


def test_the_cli_knows_the_engines_patterns() -> None:
    assert tuple(PATTERNS) == PATTERN_NAMES


def test_pattern_lists() -> None:
    assert parse_patterns("all") == PATTERN_NAMES and parse_patterns("none") == ()
    assert parse_patterns("fan-out, route") == ("fan_out", "route")
    with pytest.raises(ConfigError, match="unknown pattern 'teams'"):
        parse_patterns("fan_out,teams")


def test_fan_out_from_a_terminal_and_its_tree_in_the_history(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script(
        Models({"security-reviewer": text(review_json("No findings.")), "debate-judge": text(verdict_json("B", "ABC"))})
    )
    env = model_env(fake_model) | {"SUBAGENTS_STORE": str(tmp_path / "runs.db")}
    args = ["fan-out", "security-reviewer", "--samples", "3", "--judge", "Review src/app.py", "--root", str(project)]
    ran = run_cli(*args, env=env)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == json.loads(review_json("No findings."))  # the winner's report
    assert re.search(r"\[fan_out · completed · 4 runs · \d+ in / \d+ out tokens · \$[\d.]+ · run_\w+\]", ran.stderr)
    pattern_id = re.search(r"· (run_\w+)\]", ran.stderr).group(1)  # type: ignore[union-attr]
    shown = run_cli("runs", "show", pattern_id, env=env)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "── arguments ──" in out and '"samples": 3' in out and "── children ──" in out
    assert (
        len(re.findall(r"^candidate \d\s+run_\w+\s+completed\s+security-reviewer\s+claude-sonnet-5-5", out, re.M)) == 3
    )
    assert re.search(r"^judge\s+run_\w+\s+completed\s+debate-judge\s+claude-opus-5-5", out, re.M)
    assert re.search(r"^TOTAL\s+[\d,]+/[\d,]+\s+\$[\d.]+$", out, re.M)
    assert "model:     pattern" in out and "$0.0000" not in out  # totals come from the children


def test_run_takes_the_patterns_that_need_only_a_task(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script(Models({"router": text(route_json("none", 0.8, "Nothing fits."))}))
    ran = run_cli("run", "route", "tidy up", "--json", "--root", str(project), env=model_env(fake_model))
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["result"]["decision"]["reason"] == "Nothing fits."
    needs_more = run_cli("run", "fan_out", "tidy up", "--root", str(project), env=model_env(fake_model))
    assert needs_more.returncode == 2 and "subagents fan-out --help" in needs_more.stderr


def test_serve_refuses_an_unknown_pattern(project: Path) -> None:
    ran = run_cli("serve", "--patterns", "route,swarm", "--root", str(project))
    assert ran.returncode == 2 and "unknown pattern 'swarm'" in ran.stderr


def test_team_from_a_terminal_and_its_tree_in_the_history(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script(Models({"*": text("Checked.")}))
    env = model_env(fake_model) | {"SUBAGENTS_STORE": str(tmp_path / "runs.db")}
    tasks = ["security-reviewer: Review src/app.py", "test-writer: Tests for src/app.py", "router: where does x go"]
    ran = run_cli("team", *tasks, "--workers", "2", "--root", str(project), env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("3 of 3 tasks completed")
    assert re.search(r"\[team · completed · 3 runs · \d+ in / \d+ out tokens · \$[\d.]+ · run_\w+\]", ran.stderr)
    team_id = re.search(r"· (run_\w+)\]", ran.stderr).group(1)  # type: ignore[union-attr]
    shown = run_cli("runs", "show", team_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert '"workers": 2' in shown.stdout
    for n, agent in enumerate(["security-reviewer", "test-writer", "router"], start=1):
        assert re.search(rf"^task {n}\s+run_\w+\s+completed\s+{agent}\s", shown.stdout, re.M)


def test_a_team_task_without_its_agent_is_one_clear_sentence(project: Path) -> None:
    ran = run_cli("team", "Review src/app.py", "--root", str(project))
    assert ran.returncode == 2 and "is not 'agent: the task'" in ran.stderr and "Traceback" not in ran.stderr
