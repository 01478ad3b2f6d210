"""The `subagents` command line, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from subagents.providers.testing import FakeMessagesServer, demo_responder, text
from tests.answers import route_json
from tests.conftest import model_env, write_agent
from tests.helpers import run_cli


def test_validate_passes_on_good_files_and_fails_on_broken_ones(tmp_path: Path) -> None:
    good = tmp_path / "good"
    write_agent(good, "a.md", "name: alpha\ndescription: d\ntools: Read")
    ok = run_cli("agents", "validate", str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK      alpha" in ok.stdout and "1 agents valid, 0 invalid" in ok.stdout

    bad = tmp_path / "bad"
    write_agent(bad, "a.md", "name: alpha\ndescription: d\nmaxTurns: lots")
    broken = write_agent(bad, "b.md", "name: beta")
    result = run_cli("agents", "validate", str(bad))
    assert result.returncode == 1
    assert f"ERROR   {broken}: missing required field 'description'" in result.stdout
    assert f"WARNING {bad / 'a.md'}: 'maxTurns' 'lots' is ignored" in result.stdout
    assert "1 agents valid, 1 invalid, 1 warnings; 0 repaired, 0 not agent files (skipped)" in result.stdout


def test_validate_exits_0_when_only_readmes_are_not_agents(tmp_path: Path) -> None:
    write_agent(tmp_path, "a.md", "name: alpha\ndescription: Use when: asked")
    (tmp_path / "README.md").write_text("# The team's agents\n")
    result = run_cli("agents", "validate", str(tmp_path))
    assert result.returncode == 0, result.stdout
    assert f"INFO    {tmp_path / 'README.md'}: not an agent file, skipped: no frontmatter" in result.stdout
    assert f"WARNING {tmp_path / 'a.md'}: repaired: " in result.stdout
    assert result.stdout.endswith("1 agents valid, 0 invalid, 1 warnings; 1 repaired, 1 not agent files (skipped)\n")


def test_validate_and_show_give_the_tool_name_of_a_dotted_name(tmp_path: Path) -> None:
    path = write_agent(tmp_path / ".claude" / "agents", "ps.md", "name: powershell-5.1-expert\ndescription: d")
    validate = run_cli("agents", "validate", str(path))
    assert f"OK      powershell-5-1-expert    {path} (checked)  (written 'powershell-5.1-expert')" in validate.stdout
    assert "INFO    " in validate.stdout and "served as MCP tool 'powershell-5-1-expert'" in validate.stdout
    for name in ("powershell-5.1-expert", "powershell-5-1-expert"):
        show = run_cli("agents", "show", name, cwd=tmp_path)
        assert show.returncode == 0, show.stderr
        assert show.stdout.startswith(
            "name:        powershell-5-1-expert (the file names it 'powershell-5.1-expert', not a valid MCP tool name"
        )


def quiet_project(project: Path) -> Path:
    agents = project / ".claude" / "agents"
    write_agent(agents, "mine.md", "name: mine\ndescription: d\ntools: Read, WebFetch")
    write_agent(agents, "other.md", "name: other\ndescription: d\nmcpServers: [github]")
    write_agent(agents, "broken.md", "name: broken")
    return agents


def test_show_and_run_warn_only_about_their_own_agent(fake_model: FakeMessagesServer, project: Path) -> None:
    agents = quiet_project(project)
    fake_model.set_script(lambda _: text("done"))
    show = run_cli("agents", "show", "mine", "--root", str(project))
    run = run_cli("run", "mine", "task", "--root", str(project), env=model_env(fake_model))
    for result in (show, run):
        assert result.returncode == 0, result.stderr
        expected = "mine: not available on this server: WebFetch (web tools are off; serve --web-tools gives it)"
        assert f"{agents / 'mine.md'}: {expected}; the agent runs with Read" in result.stderr
        assert "other.md" not in result.stderr and "broken.md" not in result.stderr
    serve_like = run_cli("agents", "validate", "--root", str(project))
    assert "other.md" in serve_like.stdout and "broken.md" in serve_like.stdout


def test_run_of_a_missing_agent_points_at_validate(tmp_path: Path) -> None:
    quiet_project(tmp_path)
    result = run_cli("run", "broken", "task", "--root", str(tmp_path))
    assert result.returncode == 2
    assert "No agent named 'broken'" in result.stderr and "1 agent file could not be loaded" in result.stderr
    assert "agents validate" in result.stderr and "other.md" not in result.stderr


def test_validate_one_file_and_the_full_catalog(tmp_path: Path) -> None:
    path = write_agent(tmp_path, "x.md", "name: x\ndescription: d\nmcpServers: [github]")
    one = run_cli("agents", "validate", str(path))
    assert one.returncode == 0 and "'mcpServers' is not honoured" in one.stdout
    full = run_cli("agents", "validate", cwd=tmp_path)
    assert full.returncode == 0 and "4 agents valid" in full.stdout


def test_validate_reports_overrides(tmp_path: Path) -> None:
    write_agent(tmp_path / ".claude" / "agents", "r.md", "name: router\ndescription: my router")
    result = run_cli("agents", "validate", cwd=tmp_path)
    assert result.returncode == 0 and "overrides agent 'router'" in result.stdout


def test_agents_list_json(tmp_path: Path) -> None:
    result = run_cli("agents", "list", "--json", cwd=tmp_path)
    agents = {a["name"]: a for a in json.loads(result.stdout)}
    assert sorted(agents) == ["debate-judge", "router", "security-reviewer", "test-writer"]
    assert agents["router"]["resolved_model"] == "claude-haiku-5-5" and agents["router"]["read_only"] is True


def test_agents_show_unknown_name_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("agents", "show", "nope", cwd=tmp_path)
    assert result.returncode == 2 and "No agent named 'nope'" in result.stderr and "router" in result.stderr


def test_run_prints_the_report(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script(demo_responder)
    result = run_cli(
        "run",
        "security-reviewer",
        "Review it",
        "--file",
        "src/app.py",
        "--root",
        str(project),
        env=model_env(fake_model),
    )
    assert result.returncode == 0, result.stderr
    assert "src/app.py" in result.stdout and "completed" in result.stderr


def test_run_json_and_failure_exit_code(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script([text(route_json(reason="fine"))])
    ok = run_cli("run", "router", "route this", "--json", "--root", str(project), env=model_env(fake_model))
    assert json.loads(ok.stdout)["output"]["reason"] == "fine"
    no_key = run_cli("run", "router", "route this", "--root", str(project))
    assert no_key.returncode == 1 and "ANTHROPIC_API_KEY" in no_key.stderr


def test_bad_root_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("serve", "--root", str(tmp_path / "missing"))
    assert result.returncode == 2 and "--root" in result.stderr and "not a directory" in result.stderr


def test_the_demo_model_reads_a_bare_file_name(fake_model: FakeMessagesServer, project: Path) -> None:
    """The demo model reads README.md, a bare file name, and takes neither "e.g." nor "v1.2" for one."""
    fake_model.set_script(demo_responder)
    result = run_cli(
        "run",
        "security-reviewer",
        "Review README.md, e.g. its title (v1.2).",
        "--file",
        "README.md",
        "--root",
        str(project),
        env=model_env(fake_model),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["reviewed"] == "README.md (1 file read)"
    assert [r.tool_names != [] for r in fake_model.requests] == [True, True]  # one Read, then the report
