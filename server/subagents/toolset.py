"""The tools one run gets: read-only tools on the roots, or, for an agent that writes, every tool on an
isolated copy of the first root, whose changes come back as a diff."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from subagents.tools.bash import BashPolicy
from subagents.tools.registry import FILE_TOOLS, Toolbox, build_tools
from subagents.tools.sandbox import Sandbox
from subagents.tools.workspace import Workspace
from subagents.tools.write_registry import build_write_tools

EDIT_TOOLS = ("Write", "Edit")


def available_tools(wanted: Sequence[str], bash: BashPolicy) -> tuple[str, ...]:
    """The tools among `wanted` this server can give: file tools, Write/Edit, and Bash when enabled."""
    offered = set(FILE_TOOLS) | set(EDIT_TOOLS) | ({"Bash"} if bash.enabled else set())
    return tuple(t for t in wanted if t in offered)


@dataclass(frozen=True)
class Changes:
    """A writing agent's result: the diff, and a note for the report on what it leaves out ("" if nothing)."""

    diff: str
    note: str


@dataclass
class Toolset:
    toolbox: Toolbox
    workspace: Workspace | None = None

    async def changes(self) -> Changes | None:
        """The agent's changes, as a diff that `git apply` takes in the user's root; None if read-only."""
        if self.workspace is None:
            return None
        diff = await self.workspace.diff()
        return Changes(diff, self.workspace.left_out_note())


@asynccontextmanager
async def open_toolset(
    names: Sequence[str], roots: Sequence[Path], bash: BashPolicy, *, allow_hardlinks: bool = False
) -> AsyncIterator[Toolset]:
    writes = any(n in EDIT_TOOLS or n == "Bash" for n in names)
    if not writes:
        yield Toolset(Toolbox(build_tools(names, Sandbox(tuple(roots), allow_hardlinks=allow_hardlinks))))
        return
    # The user's tree is never written: the agent works on a copy of the first root, and only there.
    async with await Workspace.create(roots[0], allow_hardlinks=allow_hardlinks) as workspace:
        sandbox = Sandbox((workspace.path,), allow_hardlinks=allow_hardlinks)
        tools = build_tools(names, sandbox) | build_write_tools(
            names, sandbox, workspace.path, bash, scratch=workspace.scratch, top=workspace.top
        )
        yield Toolset(Toolbox(tools), workspace)
