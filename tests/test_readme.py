"""The README's examples, run as written: every block after a `<!-- tested` comment.

A `markdown` block is an agent file, saved under the project's `.claude/agents/`; a `bash` block runs in
bash (`-e`, so any failing command fails the test), in one scratch project and home, in README order,
with this installation's `subagents` on PATH and the model set to the package's offline fake. A `python`
block is a user's test: it is saved as the project's `tests/test_api_reviewer.py` and run with pytest,
which finds the package's plugin through its entry point. A `yaml` block is the agent's eval file, saved
as `.claude/agents/evals/api-reviewer.yaml`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from subagents.providers.testing import FakeMessagesServer, demo_responder
from tests.conftest import model_env
from tests.helpers import child_env

README = Path(__file__).resolve().parents[1] / "README.md"
TESTED = re.compile(r"<!-- tested[^>]*-->\s*```(\w+)\n(.*?)```", re.DOTALL)


def readme_blocks() -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in TESTED.findall(README.read_text(encoding="utf-8"))]


def run_block(body: str, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", body],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_the_readme_marks_its_examples_as_tested() -> None:
    kinds = [lang for lang, _ in readme_blocks()]
    assert kinds == ["bash", "markdown", "bash", "python", "yaml", "bash"], kinds


def test_the_readme_examples_run_as_written(fake_model: FakeMessagesServer, tmp_path: Path) -> None:
    fake_model.set_script(demo_responder)
    project = tmp_path / "project"
    (project / "api").mkdir(parents=True)
    (project / "api" / "users.py").write_text(
        'def get_user(db, user_id):\n    return db.execute(f"SELECT * FROM users WHERE id = {user_id}")\n'
    )
    scripts = Path(sys.executable).parent
    assert (scripts / "subagents").is_file(), "the package is not installed in this venv (pip install -e .)"
    env = child_env(model_env(fake_model)) | {"PATH": f"{scripts}{os.pathsep}{os.environ['PATH']}"}
    outputs = []
    for lang, body in readme_blocks():
        if lang == "python":
            outputs.append(run_user_test(body, project, env))
            continue
        if lang == "yaml":
            (project / ".claude" / "agents" / "evals").mkdir(parents=True)
            (project / ".claude" / "agents" / "evals" / "api-reviewer.yaml").write_text(body, encoding="utf-8")
            continue
        if lang == "markdown":
            name = re.search(r"^name: (\S+)", body, re.M)
            assert name, body
            agents = project / ".claude" / "agents"
            agents.mkdir(parents=True, exist_ok=True)
            (agents / f"{name[1]}.md").write_text(body, encoding="utf-8")
            continue
        result = run_block(body, project, env)
        assert result.returncode == 0, (
            f"README block failed:\n{body}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
        outputs.append(result)
    quick, agent, user_test, evals = outputs
    # subagents demo: the security review of the sample finds the planted bug, at its line.
    assert '"title": "SQL injection in find_user"' in quick.stdout
    assert '"location": "shop/users.py:13"' in quick.stdout
    # subagents doctor was green against the fake; subagents install claude-code wrote an absolute path.
    assert "all is well" in quick.stdout
    entry = json.loads((Path(os.environ["HOME"]) / ".claude.json").read_text())["projects"][str(project)]
    command = Path(entry["mcpServers"]["subagents"]["command"])
    assert command.is_absolute() and command.is_file()
    # The agent example validates with no warning at all, and its run reads the file and reports on it.
    assert "OK      api-reviewer" in agent.stdout and "WARNING" not in agent.stdout
    assert "0 invalid, 0 warnings" in agent.stdout
    assert "max tokens:  4096 a turn (agent)" in agent.stdout and "timeout:     300 s (agent)" in agent.stdout
    assert "`api/users.py:2`: SQL injection" in agent.stdout
    assert "[api-reviewer · claude-sonnet-5-5 · completed · 2 turns" in agent.stderr
    sent = [q for q in fake_model.requests if q.system_text.startswith("You review HTTP handlers")]
    assert sent and all("temperature" not in q.body for q in sent)
    # The user's own test passed against the agent file, on the plugin's fixtures.
    assert "1 passed" in user_test.stdout
    # The bundled security-reviewer cases, offline: the table, every case passed.
    assert "security-reviewer/clean-file-stays-quiet" in evals.stdout
    assert "5 of 5 cases passed · 1 run each on the offline fake model · $0.0000" in evals.stdout
    # The README's own eval file, for the agent beside it.
    assert "api-reviewer/unvalidated-id" in evals.stdout
    assert "1 of 1 cases passed · 1 run each on the offline fake model" in evals.stdout


def run_user_test(body: str, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    test = project / "tests" / "test_api_reviewer.py"
    test.parent.mkdir(exist_ok=True)
    test.write_text(body, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"the README's test failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.parametrize("block", [b for lang, b in readme_blocks() if lang == "bash"])
def test_tested_bash_blocks_only_call_subagents(block: str) -> None:
    """What the README promises to run in CI is what CI runs: no block hides a setup step."""
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands and all(c.startswith("subagents ") for c in commands), commands
