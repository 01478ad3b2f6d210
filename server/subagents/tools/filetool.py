"""What the file tools share: argument checks, the work in a worker thread, refusals as outputs."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio

from subagents.errors import SandboxError
from subagents.messages import ToolSpec
from subagents.tools.args import check_args
from subagents.tools.base import ToolOutput
from subagents.tools.globs import GlobError
from subagents.tools.sandbox import Sandbox


class FileTool:
    """Validate arguments, run the blocking work in a thread, turn refusals into error outputs.
    Subclasses set `spec` and implement `_run`."""

    spec: ToolSpec

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def run(self, args: dict[str, Any]) -> ToolOutput:
        problem = self.problem(args)
        if problem is not None:
            return ToolOutput(text=problem, is_error=True)
        clean = {k: v for k, v in args.items() if v is not None}
        try:
            # abandon_on_cancel: a cancelled run returns at once; the thread stops at its own deadline.
            return await anyio.to_thread.run_sync(partial(self._run, clean), abandon_on_cancel=True)
        except (SandboxError, GlobError) as exc:
            return ToolOutput(text=str(exc), is_error=True)
        except OSError as exc:  # permission denied, vanished file, ...
            return ToolOutput(text=f"{self.spec.name} failed: {exc.strerror or exc}.", is_error=True)

    def problem(self, args: dict[str, Any]) -> str | None:
        """What is wrong with `args`, checked against the schema the model sees; None if nothing."""
        return check_args(self.spec, args)

    def _run(self, args: dict[str, Any]) -> ToolOutput:
        raise NotImplementedError


def error(text: str) -> ToolOutput:
    return ToolOutput(text=text, is_error=True)
