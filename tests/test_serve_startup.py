"""What `subagents serve` does before a client has its tool list: only what serving needs.

The server runs as a real subprocess behind a thin wrapper that records `sys.modules` each time a JSON-RPC
message is written to stdout, in the writing thread, before the client can read it; so each answer comes
with the modules loaded when it was sent."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from subagents.cli.serve import YOUNG_GENERATION
from tests.helpers import child_env

# Runs `subagents serve` (argv[2:]) with a stdout that records, per write, the message's start and the
# modules loaded at that moment, one JSON line each in argv[1].
WRAPPER = """
import io, json, os, sys
log = open(sys.argv[1], "w")
class Recorder(io.RawIOBase):
    def writable(self):
        return True
    def write(self, data):
        log.write(json.dumps([bytes(data)[:300].decode("utf-8", "replace"), sorted(sys.modules)]) + "\\n")
        log.flush()
        return os.write(1, data)
sys.stdout = io.TextIOWrapper(io.BufferedWriter(Recorder()), encoding="utf-8")
sys.argv = ["subagents", *sys.argv[2:]]
from subagents.cli import main
main()
"""
MARKERS = (("initialize", '"capabilities"'), ("prompts/list", '"prompts":['), ("tools/list", '"tools":['))
KEY = {"ANTHROPIC_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
OTHER_COMMANDS = (
    "subagents.cli.agents",
    "subagents.cli.demo",
    "subagents.cli.doctor",
    "subagents.cli.evals",
    "subagents.cli.install",
    "subagents.cli.run",
    "subagents.cli.runs",
    "subagents.cli.store",
    "subagents.cli.tokens",
)


async def modules_when_answered(tmp_path: Path, env: dict[str, str]) -> dict[str, set[str]]:
    """initialize, prompts/list, tools/list; the modules loaded when each answer was written, by method."""
    record = tmp_path / "writes.jsonl"
    args = ["-c", WRAPPER, str(record), "serve", "--root", str(tmp_path), "--store", str(tmp_path / "runs.db")]
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    async with Client(params) as client:
        await client.list_prompts()
        await client.list_tools()
    answers: dict[str, set[str]] = {}
    for line in record.read_text().splitlines():
        head, modules = json.loads(line)
        for key, marker in MARKERS:
            if marker in head:
                answers.setdefault(key, set(modules))
    assert set(answers) == {"initialize", "prompts/list", "tools/list"}, answers.keys()
    return answers


@pytest.mark.anyio
@pytest.mark.parametrize("keyed", [False, True], ids=["no key", "key set"])
async def test_serve_answers_the_tool_list_without_the_other_commands_or_the_model_sdk(
    tmp_path: Path, keyed: bool
) -> None:
    """The other sub-commands are not imported at all; the model SDK, jsonschema and the OpenTelemetry SDK
    are not imported before the client has its tool list (with a key, the warm-up imports the SDK after)."""
    answers = await modules_when_answered(tmp_path, child_env(KEY if keyed else None))
    for method, modules in answers.items():
        assert "subagents.cli.serve" in modules and "mcp" in modules, method  # the control: it records
        assert not modules & set(OTHER_COMMANDS), (method, sorted(modules & set(OTHER_COMMANDS)))
        loaded_early = {m for m in modules if m.split(".")[0] in ("anthropic", "jsonschema", "claude_agent_sdk")}
        assert not loaded_early, (method, sorted(loaded_early))
        assert not {m for m in modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))}, method


def test_each_command_is_built_alone_exactly_as_in_the_whole_parser() -> None:
    """`subagents CMD` builds only CMD's parser: the names it looks for are the whole parser's commands,
    and CMD's help is the same either way."""
    from subagents.cli.main import COMMANDS, build_parser

    def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(sub.choices)

    whole = commands(build_parser())
    assert set(whole) == COMMANDS
    for name in COMMANDS:
        alone = commands(build_parser(name))
        assert name in alone and alone[name].format_help() == whole[name].format_help()


# Runs `subagents serve` (argv[2:]) with `gc.freeze` recording, in argv[1], the collector's threshold and
# the modules loaded when it is called.
FREEZE_WRAPPER = """
import gc, json, os, sys
freeze, record = gc.freeze, sys.argv[1]
def recording_freeze():
    freeze()
    with open(record + ".part", "w") as log:
        seen = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(), "modules": sorted(sys.modules)}
        json.dump(seen, log)
    os.replace(record + ".part", record)
gc.freeze = recording_freeze
sys.argv = ["subagents", *sys.argv[2:]]
from subagents.cli import main
main()
"""


@pytest.mark.anyio
async def test_serve_freezes_what_start_up_and_the_warm_up_leave_out_of_the_collectors_sight(
    tmp_path: Path,
) -> None:
    """A full collection walked every object start-up left (150 ms with the event loop stopped, every ~2 s
    under load): once the warm-up has imported the model SDK, those objects are frozen, and the young
    generation is collected less often."""
    import anyio

    record = tmp_path / "freeze.json"
    args = ["-c", FREEZE_WRAPPER, str(record), "serve", "--root", str(tmp_path), "--store", str(tmp_path / "runs.db")]
    params = StdioServerParameters(command=sys.executable, args=args, env=child_env(KEY))
    async with Client(params) as client:
        await client.list_tools()
        with anyio.fail_after(30):
            while not record.exists():
                await anyio.sleep(0.05)
    frozen = json.loads(record.read_text())
    assert "anthropic" in frozen["modules"], "frozen before the warm-up imported the SDK"
    assert frozen["frozen"] > 50_000 and frozen["threshold"][0] == YOUNG_GENERATION, frozen | {"modules": "…"}
