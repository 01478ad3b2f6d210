"""`subagents eval` as CI runs it: offline on the fake, the table, why a case failed, and --compare."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import anyio
import pytest

from subagents.history.store import store_for
from tests.helpers import run_cli

BUNDLED = ["security-reviewer", "test-writer", "router", "debate-judge"]
AGENT = """\
---
name: line-finder
description: Says where a problem is.
tools: Read, Grep
---
You say where the problem is, as file:line.
"""
# A responder beside the eval file: it reads the named file, then says what RESPONSES[n] says for the
# n-th answer (cycling), so a test can make repeats differ.
RESPONDER = """\
import os
from subagents.providers.testing import text, tool_use

ANSWERS = os.environ["EVAL_TEST_ANSWERS"].split("|")
count = 0


def respond(request):
    global count
    if request.tool_names and not request.tool_results:
        return tool_use("Read", {"file_path": "app.py"})
    count += 1
    return text(ANSWERS[(count - 1) % len(ANSWERS)])
"""
CASES = """\
agent: line-finder
fake_responder: responder.py:respond
cases:
  - name: finds-the-line
    task: Where is the bug in app.py?
    files:
      app.py: "x = 1\\ny = 2\\nz = x / 0\\n"
    pass_rate: {rate}
    expect:
      mentions: ["app.py:3"]
      not_contain: ["no findings"]
      tools_used: [Read]
      tools_not_used: [Grep]
      max_turns: 3
"""


def eval_project(tmp_path: Path, *, rate: float = 1.0, extra: str = "") -> Path:
    folder = tmp_path / "agents"
    (folder / "evals").mkdir(parents=True)
    (folder / "line-finder.md").write_text(AGENT)
    (folder / "evals" / "responder.py").write_text(RESPONDER)
    path = folder / "evals" / "line-finder.yaml"
    path.write_text(CASES.format(rate=rate) + textwrap.indent(textwrap.dedent(extra), "    "))
    return path


def run_eval(*args: str, answers: str, tmp_path: Path) -> tuple[int, str, str]:
    result = run_cli("eval", *args, "--model", "fake", env={"EVAL_TEST_ANSWERS": answers}, cwd=tmp_path)
    return result.returncode, result.stdout, result.stderr


def test_the_bundled_cases_pass_offline_and_their_runs_are_eval_runs(tmp_path: Path) -> None:
    store, report = tmp_path / "runs.db", tmp_path / "out.json"
    result = run_cli("eval", *BUNDLED, "--model", "fake", "--store", str(store), "--json", str(report), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "security-reviewer/sql-injection-in-order-search" in result.stdout
    assert "14 of 14 cases passed · 1 run each on the offline fake model · $0.0000" in result.stdout
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr
    run = json.loads(report.read_text())
    assert run["ok"] is True and len(run["cases"]) == 14
    assert {case["agent"] for case in run["cases"]} == set(BUNDLED)
    judged = next(c for c in run["cases"] if c["name"] == "sql-injection-in-order-search")["attempts"][0]
    assert judged["score"] == 10 and judged["judge_run_id"]

    async def records() -> tuple[object, ...]:
        async with store_for(store) as runs:
            return tuple([await runs.get(judged["run_id"]), await runs.get(judged["judge_run_id"])])

    agent_run, judge_run = anyio.run(records)
    assert agent_run.client == "eval" and agent_run.agent == "security-reviewer"  # type: ignore[attr-defined]
    assert [m.role for m in agent_run.transcript][:2] == ["user", "assistant"]  # type: ignore[attr-defined]
    assert judge_run.client == "eval" and judge_run.agent == "eval-judge"  # type: ignore[attr-defined]


def test_a_failing_case_says_why_and_fails_the_command(tmp_path: Path) -> None:
    path = eval_project(tmp_path)
    code, out, err = run_eval(
        str(path), "--store", str(tmp_path / "r.db"), answers="No findings here.", tmp_path=tmp_path
    )
    assert code == 1, out + err
    assert "line-finder/finds-the-line" in out and "FAIL" in out
    assert "- the answer does not mention 'app.py:3'" in out
    assert "- the answer contains 'no findings': …No findings here.…" in out
    assert "transcript: subagents runs show run_" in out and f"--store {tmp_path / 'r.db'}" in out
    assert "0 of 1 cases passed" in out and "Traceback" not in err


def test_repeats_give_a_pass_rate_with_its_interval(tmp_path: Path) -> None:
    path = eval_project(tmp_path, rate=0.6)
    code, out, err = run_eval(
        str(path), "--repeat", "3", "--concurrency", "1", answers="app.py:3|app.py:3|nope", tmp_path=tmp_path
    )
    assert code == 0, out + err  # 2 of 3 reach the case's required 60%
    row = next(line for line in out.splitlines() if line.startswith("line-finder/finds-the-line"))
    assert row.split()[1:4] == ["2/3", "67%", "0.21-0.94"] and row.endswith("ok")
    assert err.count("  pass  line-finder/finds-the-line") == 2 and err.count("  FAIL  line-finder/finds-the-line") == 1


def test_compare_marks_a_regression(tmp_path: Path) -> None:
    path, baseline = eval_project(tmp_path), tmp_path / "baseline.json"
    code, out, _ = run_eval(str(path), "--json", str(baseline), answers="app.py:3", tmp_path=tmp_path)
    assert code == 0 and json.loads(baseline.read_text())["cases"][0]["pass_rate"] == 1.0
    code, out, _ = run_eval(str(path), "--compare", str(baseline), answers="somewhere", tmp_path=tmp_path)
    assert code == 1
    assert f"compared with {baseline}:" in out
    assert "  WORSE   line-finder/finds-the-line  100% -> 0%" in out and "1 case got worse." in out
    code, out, _ = run_eval(str(path), "--compare", str(baseline), answers="app.py:3", tmp_path=tmp_path)
    assert code == 0 and "  same    line-finder/finds-the-line  100% -> 100%" in out and "No case got worse." in out


def test_a_judged_case_below_its_threshold_says_the_score(tmp_path: Path) -> None:
    rubric = """\
    judge:
      rubric: |
        - Names the line, `app.py:3`.
        - Says the cause, "division by zero".
      threshold: 8
    """
    path = eval_project(tmp_path, extra=rubric)
    code, out, _ = run_eval(str(path), "--json", "-", answers="app.py:3 fails", tmp_path=tmp_path)
    assert code == 1
    [attempt] = json.loads(out)["cases"][0]["attempts"]
    assert attempt["score"] == 5
    assert attempt["failures"] == [
        'the judge scored it 5/10, below 8: 1 of 2 rubric points met; missed: Says the cause, "division by zero". '
        "(offline judge: quoted terms only)."
    ]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (
            "agent: x\n\tcases: 1\n",
            "is not valid YAML at line 2, column 1: found character '\\t' that cannot start any token",
        ),
        (
            "agent: x\ncases:\n  - name: a\n    task: t\n    expect: {mentionz: [a]}\n",
            "case 'a', expect.mentionz: unknown key (the keys are: mentions, not_contain, schema,",
        ),
        ("agent: x\ncases:\n  - name: a\n", "case 'a', task: Field required."),
        (
            "agent: x\ncases:\n  - name: a\n    task: t\n    fixture: nowhere\n",
            "case 'a': fixture 'nowhere' is not a folder beside the eval file",
        ),
        (
            "agent: x\ncases:\n  - name: a\n    task: t\n    files: {../up.py: x}\n",
            "case 'a', files: file '../up.py' must be a relative path inside the project",
        ),
        ("agent: x\ncases: []\n", "cases: no cases; give at least one, each with a name and a task."),
        ("- just a list\n", "an eval file is a YAML mapping with `agent:` and `cases:`, not a list"),
        ("agent: nobody\ncases:\n  - {name: a, task: t}\n", "No agent named 'nobody'."),
        (
            "agent: line-finder\nfake_responder: nowhere.py:respond\ncases:\n  - {name: a, task: t}\n",
            "fake_responder file 'nowhere.py' is not beside the eval file",
        ),
        (
            "agent: line-finder\nfake_responder: json:nothing\ncases:\n  - {name: a, task: t}\n",
            "fake_responder 'json:nothing': json has no function 'nothing'",
        ),
    ],
)
def test_a_bad_eval_file_is_one_clear_sentence(tmp_path: Path, content: str, said: str) -> None:
    path = eval_project(tmp_path)
    path.write_text(content)
    code, out, err = run_eval(str(path), answers="x", tmp_path=tmp_path)
    assert code == 2, out + err
    assert said in err and "Traceback" not in err and err.startswith("subagents: "), err


def test_an_unknown_file_names_the_bundled_cases(tmp_path: Path) -> None:
    code, _, err = run_eval("no-such.yaml", answers="x", tmp_path=tmp_path)
    assert code == 2
    assert "eval file 'no-such.yaml' not found: give a path to a YAML file, or one of debate-judge, router, " in err


def test_eval_has_its_own_model_flag_and_leaves_the_other_commands_alone() -> None:
    from subagents.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["eval", "x.yaml", "--model", "fake"]).model == "fake"
    assert parser.parse_args(["agents", "validate"]).dirs == []  # --model did not become a positional
    assert parser.parse_args(["run", "a", "t", "--model", "opus"]).model == "opus"


def test_without_a_model_it_stops_at_once_with_one_sentence(tmp_path: Path) -> None:
    result = run_cli("eval", "router", "--provider", "anthropic", "--no-store", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("subagents: no model is configured: export ANTHROPIC_API_KEY=")
    assert result.stderr.endswith("Or run the eval offline, on the fake model: --model fake.\n")
    assert result.stderr.count("\n") == 1  # one sentence, no line per run, no traceback
