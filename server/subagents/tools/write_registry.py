"""The tools that change files or run commands. They only ever get an isolated Workspace."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from subagents.tools.base import Tool
from subagents.tools.bash import Bash, BashPolicy
from subagents.tools.edit import Edit, Write
from subagents.tools.multiedit import MultiEdit
from subagents.tools.sandbox import Sandbox

WRITE_TOOLS_IMPLEMENTED = ("Write", "Edit", "MultiEdit", "Bash")


def build_write_tools(
    names: Iterable[str],
    sandbox: Sandbox,
    workdir: Path,
    bash: BashPolicy,
    *,
    scratch: Path | None = None,
    top: Path | None = None,
) -> dict[str, Tool]:
    """Write, Edit, MultiEdit and Bash among `names`, in the order given. `sandbox` and `workdir` must point at
    the workspace (`Workspace.path`), never the user's tree; `top` (`Workspace.top`) is all a Bash
    command may write, and `scratch` (`Workspace.scratch`) holds its throwaway HOME. Bash is left out
    unless the server config enables it."""
    tools: dict[str, Tool] = {}
    for name in dict.fromkeys(names):
        if name == "Write":
            tools[name] = Write(sandbox)
        elif name == "Edit":
            tools[name] = Edit(sandbox)
        elif name == "MultiEdit":
            tools[name] = MultiEdit(sandbox)
        elif name == "Bash" and bash.enabled:
            tools[name] = Bash(workdir, bash, home_base=scratch, top=top)
    return tools
