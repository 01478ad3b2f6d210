"""What a Claude Code session may touch: the agent's tools, confined to the roots by our own Sandbox.

Claude Code's tools run inside its process, so every call goes through two gates we control: a
PreToolUse hook that refuses any call `ToolPolicy.check` refuses (it sees every call), and the
permission callback that answers the prompts Claude Code would show a person (a path outside the
working directory, any write), allowing only what the same check allows. Searches that walk a tree
(Grep, Glob) cannot be checked file by file from outside, so the secrets deny-list also goes into the
session's own permission rules, which Claude Code applies to those walks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from subagents.definitions.spec import AgentSpec
from subagents.errors import SandboxError
from subagents.tools.edit import resolve_for_write
from subagents.tools.sandbox import Sandbox

# Our tool names (Claude Code's agent-file vocabulary) -> the Claude Code tool that does the job.
CLAUDE_TOOL_FOR: Mapping[str, str] = {
    "Read": "Read",
    "Grep": "Grep",
    "Glob": "Glob",
    "LS": "Glob",  # Claude Code 2.1 has no LS; Glob lists a directory
    "Write": "Write",
    "Edit": "Edit",
    "MultiEdit": "Edit",  # folded into Edit in Claude Code 2.1
    "NotebookEdit": "NotebookEdit",
}
WRITE_TOOLS = frozenset({"Write", "Edit", "NotebookEdit"})
# Why a tool an agent asks for is not given to its Claude Code session.
NOT_OFFERED: Mapping[str, str] = {
    "Bash": "Claude Code's Bash would run outside this server's bubblewrap sandbox, so it is not offered",
}


@dataclass(frozen=True)
class SessionTools:
    tools: tuple[str, ...]  # Claude Code tool names, in order
    left_out: tuple[str, ...]  # one sentence per tool the agent asked for and does not get


def session_tools(wanted: Sequence[str], *, writes: bool) -> SessionTools:
    """The Claude Code tools for an agent's `tools` list; write tools only when `writes` (an isolated copy)."""
    tools: dict[str, None] = {}
    left_out: list[str] = []
    for name in wanted:
        tool, reason = session_tool(name, writes=writes)
        if tool is None:
            left_out.append(f"{name}: {reason}")
        else:
            tools[tool] = None
    return SessionTools(tuple(tools), tuple(left_out))


def session_tool(name: str, *, writes: bool) -> tuple[str | None, str]:
    """The Claude Code tool that does the job of the agent-file tool `name`, or None and why a session
    goes without it (grants.py reports the same answer in `agents show` and `validate`)."""
    tool = CLAUDE_TOOL_FOR.get(name)
    if tool is None:
        return None, NOT_OFFERED.get(name, "not a tool this server gives a Claude Code session")
    if tool in WRITE_TOOLS and not writes:
        return None, "the agent runs read-only"
    return tool, ""


def writes_allowed(spec: AgentSpec) -> bool:
    """`permissionMode: plan` means read-only, as in Claude Code; every other mode is ours to decide."""
    return str(spec.fields.get("permissionMode", "")).strip() != "plan"


class ToolPolicy:
    """Decides each tool call of one run: None to let it through, else the refusal the model sees."""

    def __init__(self, sandbox: Sandbox, tools: Iterable[str]) -> None:
        self.sandbox = sandbox
        self.tools = frozenset(tools)

    def check(self, tool: str, args: Mapping[str, Any]) -> str | None:
        if tool not in self.tools:
            offered = ", ".join(sorted(self.tools)) or "none"
            return f"Refused: {tool} is not available to this agent (its tools: {offered})."
        try:
            self._check(tool, args)
        except SandboxError as exc:
            return str(exc)
        return None

    def _check(self, tool: str, args: Mapping[str, Any]) -> None:
        if tool == "Read":
            self.sandbox.resolve(_path_arg(args, "file_path"), kind="file")
        elif tool in ("Write", "Edit"):
            resolve_for_write(self.sandbox, _path_arg(args, "file_path"))
        elif tool == "NotebookEdit":
            resolve_for_write(self.sandbox, _path_arg(args, "notebook_path"))
        elif tool in ("Grep", "Glob"):
            if args.get("path") not in (None, ""):
                self.sandbox.resolve(_path_arg(args, "path"), kind="dir" if tool == "Glob" else "any")
            for key in ("pattern",) if tool == "Glob" else ("glob",):
                _relative_glob(args.get(key), key)


def _path_arg(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise SandboxError(f"Refused: {key} must be a path (a string), got {type(value).__name__}.")
    return value


def _relative_glob(value: object, key: str) -> None:
    """A glob may only narrow a search below its path: never absolute, never climbing with `..`."""
    if value is None:
        return
    if not isinstance(value, str):
        raise SandboxError(f"Refused: {key} must be a glob pattern (a string).")
    if os.path.isabs(value) or value.startswith("~") or ".." in PurePosixPath(value).parts:
        raise SandboxError(
            f'Refused: the {key} "{value[:200]}" reaches outside the search directory; give a relative pattern '
            "and put the directory in path."
        )


def permission_rules(roots: Sequence[Path], deny: Sequence[str]) -> list[str]:
    """Claude Code deny rules for the secrets deny-list, under every root, for reads and writes alike."""
    rules: list[str] = []
    for pattern in deny:
        glob = _caseless(pattern.strip("/"))
        tails = [glob, glob.removesuffix("/**")] if glob.endswith("/**") else [glob]
        for tail in tails:
            for base in ["**", *(f"/{root.as_posix()}/**" for root in roots)]:
                rules += [f"Read({base}/{tail})", f"Edit({base}/{tail})"]
    return list(dict.fromkeys(rules))


def _caseless(pattern: str) -> str:
    """`.env` -> `.[eE][nN][vV]`: our deny-list ignores case, Claude Code's rules do not."""
    if "[" in pattern:
        return pattern
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in pattern)
