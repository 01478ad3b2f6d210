"""The tools one run gets: read-only tools on the roots, or, for an agent that writes, every tool on an
isolated copy of the first root, whose changes come back as a diff. A delegated run (Task) works where its
parent works: in the parent's copy, if it has one, whose diff then carries the child's changes too."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from subagents.grants import WRITING_TOOLS
from subagents.tools.bash import BashPolicy
from subagents.tools.registry import Toolbox, build_tools
from subagents.tools.sandbox import Sandbox, shared_sandbox
from subagents.tools.workspace import Workspace
from subagents.tools.write_registry import build_write_tools


@dataclass(frozen=True)
class Changes:
    """A writing agent's result: the diff, and a note for the report on what it leaves out ("" if nothing)."""

    diff: str
    note: str


@dataclass
class Toolset:
    toolbox: Toolbox
    workspace: Workspace | None = None  # the isolated copy the tools work in, if they write
    roots: tuple[Path, ...] = ()  # what the tools see: the roots, or the copy
    owns_workspace: bool = True  # False for a delegated run in its parent's copy: the parent reports the diff

    async def changes(self) -> Changes | None:
        """The agent's changes, as a diff that `git apply` takes in the user's root; None if read-only, or if
        the copy is its parent run's (the parent reports them)."""
        if self.workspace is None or not self.owns_workspace:
            return None
        diff = await self.workspace.diff()
        return Changes(diff, self.workspace.left_out_note())


@asynccontextmanager
async def open_toolset(
    names: Sequence[str],
    roots: Sequence[Path],
    bash: BashPolicy,
    *,
    allow_hardlinks: bool = False,
    shared: Workspace | None = None,
) -> AsyncIterator[Toolset]:
    """The tools among `names` this server runs, on `roots`; on a new isolated copy of `roots[0]` if one of
    them writes, or in `shared` (a parent run's copy) when given."""
    if shared is not None:
        yield _in_workspace(names, shared, bash, allow_hardlinks, owns=False)
        return
    if not any(n in WRITING_TOOLS for n in names):
        sandbox = shared_sandbox(roots, allow_hardlinks=allow_hardlinks)
        yield Toolset(Toolbox(build_tools(names, sandbox)), roots=tuple(roots))
        return
    # The user's tree is never written: the agent works on a copy of the first root, and only there.
    async with await Workspace.create(roots[0], allow_hardlinks=allow_hardlinks) as workspace:
        yield _in_workspace(names, workspace, bash, allow_hardlinks, owns=True)


def _in_workspace(
    names: Sequence[str], workspace: Workspace, bash: BashPolicy, allow_hardlinks: bool, *, owns: bool
) -> Toolset:
    sandbox = Sandbox((workspace.path,), allow_hardlinks=allow_hardlinks)
    tools = build_tools(names, sandbox) | build_write_tools(
        names, sandbox, workspace.path, bash, scratch=workspace.scratch, top=workspace.top
    )
    ordered = {name: tools[name] for name in names if name in tools}
    return Toolset(Toolbox(ordered), workspace, (workspace.path,), owns)
