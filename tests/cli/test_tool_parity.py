"""`agents validate` and `agents show` say exactly which tools `serve`, with the same flags, offers each agent's
model: the tools of its first model request, compared agent by agent, with and without the optional tools."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from subagents.providers.testing import FakeMessagesServer, RecordedRequest, text
from subagents.tools.web import API_NAMES
from tests.conftest import model_env, write_agent
from tests.helpers import SUBAGENTS, child_env, run_cli

pytestmark = pytest.mark.anyio

AGENTS = {
    "plain": "model: sonnet",  # no tools field: every tool on offer
    "reader": "tools: Read, Grep, WebFetch, mcp__github__search, NotebookEdit",
    "writer": "tools: Read, MultiEdit, Bash, TodoWrite",
    "surfer": "tools: WebSearch, Read, WebFetch",
    "boss": "tools: Read, Task",
    "denied": "disallowedTools: Write, Edit, MultiEdit, Bash, Task",
}
FLAG_SETS = {"defaults": (), "everything on": ("--allow-bash", "python -m pytest", "--web-tools")}
TOOLS_LINE = re.compile(r"^OK +(?P<name>\S+) .*\n +tools: (?P<tools>.*)$", re.MULTILINE)


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    for name, frontmatter in AGENTS.items():
        write_agent(tmp_path / "agents", f"{name}.md", f"name: {name}\ndescription: The {name}.\n{frontmatter}", name)
    return tmp_path / "agents"


def as_sent(tools: str) -> list[str]:
    """`agents show` names the tools as agent files do; the request names the API's own tools its way."""
    return [API_NAMES.get(t, t) for t in tools.split(", ")] if tools != "none" else []


@pytest.mark.parametrize("flags", FLAG_SETS.values(), ids=FLAG_SETS.keys())
async def test_validate_and_show_match_what_the_served_agent_offers_its_model(
    fake_model: FakeMessagesServer, project: Path, agents: Path, flags: tuple[str, ...]
) -> None:
    common = ("--no-bundled", "--agents-dir", str(agents), "--root", str(project), *flags)
    validate = run_cli("agents", "validate", *common)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    listed = {m["name"]: as_sent(m["tools"]) for m in TOOLS_LINE.finditer(validate.stdout)}
    assert sorted(listed) == sorted(AGENTS)
    shown = run_cli("agents", "show", "writer", *common)
    [writer_tools] = re.findall(r"^tools: +(.*)$", shown.stdout, re.MULTILINE)
    assert as_sent(writer_tools) == listed["writer"]

    fake_model.set_script(lambda _: text("done"))
    params = StdioServerParameters(
        command=SUBAGENTS[0],
        args=[*SUBAGENTS[1:], "serve", "--no-store", "--catalog-mode", "off", *common],
        env=child_env(model_env(fake_model)),
        cwd=str(project),
    )
    async with Client(params) as client:
        for name in AGENTS:
            result = await client.call_tool(name, {"task": "Say done."})
            assert result.is_error is False, result.content
    first: dict[str, RecordedRequest] = {}
    for request in fake_model.requests:
        first.setdefault(request.system_text, request)
    offered = {name: first[name].tool_names for name in AGENTS}
    assert offered == listed


async def test_the_defaults_are_what_the_readme_promises(project: Path, agents: Path) -> None:
    validate = run_cli("agents", "validate", "--no-bundled", "--agents-dir", str(agents), "--root", str(project))
    listed = {m["name"]: m["tools"] for m in TOOLS_LINE.finditer(validate.stdout)}
    assert listed["plain"] == "Read, Grep, Glob, LS, Write, Edit, MultiEdit, TodoWrite, Task"
    assert listed["reader"] == "Read, Grep"
    assert listed["surfer"] == "Read"
    assert listed["denied"] == "Read, Grep, Glob, LS, TodoWrite"
    reader = (agents / "reader.md").as_posix()
    assert (
        f"WARNING {reader}: not available on this server: WebFetch (web tools are off; serve --web-tools gives it), "
        "mcp__github__search (no MCP servers are connected here), NotebookEdit (notebooks are not supported here)"
    ) in validate.stdout


def test_a_bundled_agent_without_its_opt_in_bash_is_a_note_not_a_warning(project: Path, tmp_path: Path) -> None:
    """The bundled test-writer lists Bash on purpose; with Bash off (the default) that is how it ships. The
    same tool missing from a user's agent file is a warning, counted in the summary."""
    write_agent(tmp_path / "mine", "runner.md", "name: runner\ndescription: Runs.\ntools: Read, Bash", "Run.")
    validate = run_cli("agents", "validate", "--agents-dir", str(tmp_path / "mine"), "--root", str(project))
    bash_off = "not available on this server: Bash (Bash is off; serve --allow-bash PREFIX gives it)"
    writer = next(line for line in validate.stdout.splitlines() if line.endswith(f"test-writer.md: {bash_off}"))
    assert writer.startswith("INFO    ")
    assert f"WARNING {(tmp_path / 'mine' / 'runner.md').as_posix()}: {bash_off}" in validate.stdout
    assert "0 invalid, 1 warnings" in validate.stdout and validate.returncode == 0
