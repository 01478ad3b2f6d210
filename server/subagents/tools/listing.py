"""Glob and LS: finding and listing files under the roots, in bounded work."""

from __future__ import annotations

import os
from typing import Any

from subagents.messages import ToolSpec
from subagents.tools.args import schema
from subagents.tools.base import ToolOutput
from subagents.tools.filetool import FileTool, error
from subagents.tools.globs import glob_matcher, name_matcher
from subagents.tools.text import plural
from subagents.tools.walk import list_dir

GLOB_MAX = 500
LS_MAX = 1000
LS_MAX_IGNORE = 100


class Glob(FileTool):
    spec = ToolSpec(  # built once: the same for every run, so its request form is too
        name="Glob",
        description=(
            'Find files by name pattern, e.g. "**/*.py" or "src/**/*.{ts,tsx}". A pattern without a '
            "slash matches file names at any depth. Searches the first root, or `path` (a directory). "
            f"Returns paths sorted by modification time, newest first, at most {GLOB_MAX}."
        ),
        input_schema=schema(
            {
                "pattern": {"type": "string", "description": "Glob pattern, relative to path."},
                "path": {"type": "string", "description": "Directory to search in."},
            },
            required=["pattern"],
        ),
    )

    def _run(self, args: dict[str, Any]) -> ToolOutput:
        raw = args.get("path", ".")
        pattern = args["pattern"]
        glob_matcher(pattern)  # a pattern it will not take is refused before any file is touched
        with self.sandbox.open(raw, kind="dir") as base:
            if os.path.isabs(pattern):  # models often repeat the directory inside the pattern
                prefix = str(base.path).rstrip("/") + "/"
                if not pattern.startswith(prefix):
                    return error(f"Pattern {pattern!r} must be relative to {raw!r}.")
                pattern = pattern[len(prefix) :]
            with self.sandbox.walk(base, pattern) as walk:
                found = sorted((-f.st.st_mtime, f.real) for f in walk)
                notes = walk.notes("narrow pattern or path")
        if not found:
            return ToolOutput(text="\n".join([f'No files match {args["pattern"]!r} in "{raw}".', *notes]))
        lines = [self.sandbox.display(real) for _, real in found[:GLOB_MAX]]
        if len(found) > GLOB_MAX:
            lines.append(f"[showing the {GLOB_MAX} newest of {len(found)} files; use a narrower pattern or path]")
        return ToolOutput(text="\n".join([*lines, *notes]))


class LS(FileTool):
    spec = ToolSpec(  # built once: the same for every run, so its request form is too
        name="LS",
        description=(
            "List a directory under the allowed roots: one entry per line, directories end with /. "
            "`ignore` takes glob patterns of names to leave out. Secrets are hidden."
        ),
        input_schema=schema(
            {
                "path": {"type": "string", "description": "Directory to list."},
                "ignore": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": LS_MAX_IGNORE,
                    "description": "Name globs.",
                },
            },
            required=["path"],
        ),
    )

    def _run(self, args: dict[str, Any]) -> ToolOutput:
        raw = args["path"]
        ignore = name_matcher(args.get("ignore", []))
        budget = self.sandbox.budget()
        with self.sandbox.open(raw, kind="dir") as base:
            listing = list_dir(self.sandbox, base, ignore, budget)
            shown = self.sandbox.display(base.path).rstrip("/")
        lines = [f"{shown}/ ({plural(len(listing.names), 'entry', 'entries')})", *listing.names[:LS_MAX]]
        if len(listing.names) > LS_MAX:
            lines.append(f"[showing the first {LS_MAX} of {len(listing.names)} entries]")
        if listing.hidden:
            lines.append(f"[{listing.hidden} entries hidden: secrets, special files, or links leaving the roots]")
        cut = budget.note("the directory has more entries; find names in it with Glob and a pattern")
        if cut:
            lines.append(cut)
        return ToolOutput(text="\n".join(lines))
