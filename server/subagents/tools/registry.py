"""Which tools an agent gets, and the toolbox the agent loop calls them through."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from subagents.errors import SubagentsError
from subagents.messages import ServerToolSpec, ToolSpec
from subagents.tools.base import Tool, ToolOutput
from subagents.tools.files import LS, Glob, Grep, Read
from subagents.tools.sandbox import Sandbox
from subagents.tools.todo import TodoWrite

log = logging.getLogger(__name__)

FILE_TOOLS = ("Read", "Grep", "Glob", "LS")


def build_tools(names: Iterable[str], sandbox: Sandbox) -> dict[str, Tool]:
    """The tools among `names` that change nothing (the file readers, the run's checklist), in the order
    given. Other names are skipped here; grants.py decides what an agent gets and reports the rest."""
    factories: dict[str, Callable[[], Tool]] = {
        "Read": lambda: Read(sandbox),
        "Grep": lambda: Grep(sandbox),
        "Glob": lambda: Glob(sandbox),
        "LS": lambda: LS(sandbox),
        "TodoWrite": TodoWrite,
    }
    return {name: factories[name]() for name in dict.fromkeys(names) if name in factories}


class Toolbox:
    """The tools one agent run may call. `call` never raises, except to let cancellation through."""

    def __init__(self, tools: Mapping[str, Tool], server_tools: tuple[ServerToolSpec, ...] = ()) -> None:
        self._tools: Mapping[str, Tool] = MappingProxyType(dict(tools))
        self.specs: tuple[ToolSpec, ...] = tuple(t.spec for t in self._tools.values())
        self.server_tools = server_tools  # offered to the model, but run by the model's API, never here

    def extended(self, tools: Mapping[str, Tool], server_tools: tuple[ServerToolSpec, ...] = ()) -> Toolbox:
        """This toolbox with more tools after its own (a run's Task tool, the API's web tools)."""
        return Toolbox({**self._tools, **tools}, self.server_tools + server_tools)

    def concurrent_safe(self, name: str) -> bool:
        """The read-only file tools may run side by side; anything that writes or runs runs alone."""
        return name in FILE_TOOLS and name in self._tools

    async def call(self, name: str, args: object) -> ToolOutput:
        tool = self._tools.get(name)
        if tool is None:
            available = ", ".join(self._tools) or "none"
            return ToolOutput(
                text=f"Tool {name} is not available to this agent; available: {available}.", is_error=True
            )
        if not isinstance(args, dict):
            return ToolOutput(
                text=f"Arguments for {name} must be a JSON object, got {type(args).__name__}.", is_error=True
            )
        try:
            return await tool.run(args)
        except SubagentsError as exc:  # a refusal a tool forgot to turn into an output
            return ToolOutput(text=str(exc), is_error=True)
        except Exception as exc:  # cancellation is a BaseException, so it still propagates
            log.exception("tool %s failed", name)
            return ToolOutput(text=f"Tool {name} failed: {type(exc).__name__}: {exc}", is_error=True)
