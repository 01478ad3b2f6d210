"""Read, Grep, Glob and LS: read-only file tools shaped like Claude Code's, confined by a Sandbox.

Names, arguments and output formats follow Claude Code's tools so models trained on them use them
well. File text is fenced as data (<file>, <grep-results>) so a file cannot pose as our message.
Each tool lives in its own module; this one gathers them (and the helpers other tools share).
"""

from __future__ import annotations

from subagents.tools.args import check_args, schema
from subagents.tools.filetool import FileTool
from subagents.tools.grep import Grep
from subagents.tools.listing import GLOB_MAX, LS, LS_MAX, Glob
from subagents.tools.read import Read
from subagents.tools.text import MAX_LINE_CHARS, SNIFF_BYTES, escape_fence, is_binary

__all__ = [
    "GLOB_MAX",
    "LS",
    "LS_MAX",
    "MAX_LINE_CHARS",
    "SNIFF_BYTES",
    "FileTool",
    "Glob",
    "Grep",
    "Read",
    "check_args",
    "escape_fence",
    "is_binary",
    "schema",
]
