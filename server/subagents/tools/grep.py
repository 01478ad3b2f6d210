"""Grep: search file contents under the roots with a regular expression, in bounded time."""

from __future__ import annotations

import html
import time
from typing import Any, BinaryIO

from subagents.errors import SandboxError
from subagents.messages import ToolSpec
from subagents.tools.args import schema
from subagents.tools.base import ToolOutput
from subagents.tools.filetool import FileTool, error
from subagents.tools.grep_pattern import PatternError, compile_pattern
from subagents.tools.resolver import Handle
from subagents.tools.sandbox import Sandbox
from subagents.tools.text import SNIFF_BYTES, clip, decode, escape_fence, is_binary, iter_lines, plural
from subagents.tools.walk import Budget, WalkFile

GREP_LINE_BYTES = 65_536  # a longer line is matched on its first 64 KB


class _OutOfTime(Exception):
    """The call's deadline passed while a line was being matched: stop, and say the search is partial."""


class Grep(FileTool):
    spec = ToolSpec(  # built once: the same for every run, so its request form is too
        name="Grep",
        description=(
            "Search file contents with a Python regular expression (re syntax). Searches the first "
            "root by default, or `path` (a directory or file); `glob` filters file names (e.g. "
            '"*.py", "*.{ts,tsx}"). output_mode: "files_with_matches" (default) lists files, '
            '"content" shows matching lines as path:line:text, "count" shows matches per file. '
            "Binary files and secrets are skipped."
        ),
        input_schema=schema(
            {
                "pattern": {"type": "string", "description": "Python regular expression."},
                "path": {"type": "string", "description": "Directory or file to search."},
                "glob": {"type": "string", "description": "File name filter, e.g. *.py."},
                "output_mode": {"type": "string", "enum": ["content", "files_with_matches", "count"]},
                "-i": {"type": "boolean", "description": "Case-insensitive."},
                "-n": {"type": "boolean", "description": "Line numbers in content mode (default true)."},
                "head_limit": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Max entries, default 200.",
                },
            },
            required=["pattern"],
        ),
    )

    def _run(self, args: dict[str, Any]) -> ToolOutput:
        try:
            rx = compile_pattern(args["pattern"], bool(args.get("-i")))
        except PatternError as exc:
            return error(str(exc))
        raw = args.get("path", ".")
        mode = args.get("output_mode", "files_with_matches")
        budget = self.sandbox.budget()
        search = _GrepRun(self.sandbox, rx, mode, args.get("-n", True), args.get("head_limit", 200), budget)
        try:
            with self.sandbox.open(raw, kind="any") as target:
                if target.is_dir:
                    search.scan_tree(target, args.get("glob"))
                else:
                    search.scan_one(target)
        except TimeoutError:
            return error(
                f"Grep stopped: {args['pattern']!r} took over {budget.seconds:g} s, which usually means "
                "catastrophic backtracking. Simplify it (no nested quantifiers like (a+)+) or narrow path/glob."
            )
        return ToolOutput(text=search.render(args["pattern"], raw))


class _GrepRun:
    """The state of one Grep call: entries so far, their size, and what was skipped."""

    def __init__(self, sandbox: Sandbox, rx: Any, mode: str, numbers: bool, head: int, budget: Budget) -> None:
        self.sandbox, self.rx, self.mode, self.numbers, self.head = sandbox, rx, mode, numbers, head
        # One deadline for the whole call, walk and matching: `regex` checks it while it matches, with
        # the GIL released (concurrent=True), so a hostile pattern stalls neither the server nor its peers.
        self.budget = budget
        self.entries: list[str] = []
        self.used = 0
        self.cut = False
        self.skipped_big = 0
        self.skipped_links = 0
        self.walk_notes: list[str] = []

    def scan_tree(self, base: Handle, pattern: str | None) -> None:
        with self.sandbox.walk(base, pattern, self.budget) as walk:
            try:
                for found in walk:
                    if not self._scan_found(found):
                        break
            except _OutOfTime:
                pass
            self.walk_notes = walk.notes("narrow path or glob")

    def scan_one(self, target: Handle) -> None:
        if target.st.st_size > self.sandbox.max_file_bytes:
            self.skipped_big += 1
            return
        try:
            self._scan(target.file(), self.sandbox.display(target.path))
        except _OutOfTime:
            return

    def _scan_found(self, found: WalkFile) -> bool:
        """Search one file the walk found; False once the output is full."""
        if found.st.st_size > self.sandbox.max_file_bytes:
            self.skipped_big += 1
            return True
        try:
            handle = found.open(self.sandbox)
        except SandboxError:
            self.skipped_links += 1  # a hard link: refused, and said so at the end
            return True
        except OSError:
            return True  # vanished or unreadable since the walk: skip, like rg
        with handle:
            return self._scan(handle.file(), self.sandbox.display(found.real))

    def _scan(self, f: BinaryIO, shown: str) -> bool:
        with f:
            try:
                if is_binary(f.read(SNIFF_BYTES)):
                    return True
                f.seek(0)
                hits = self._hits(f, shown)
            except TimeoutError:  # an OSError too, but this one is the pattern's deadline: stop the whole call
                raise
            except OSError:
                return True
        if self.mode == "count" and hits:
            return self._add(f"{shown}:{hits}")
        if self.mode == "files_with_matches" and hits:
            return self._add(shown)
        return not self.cut

    def _hits(self, f: BinaryIO, shown: str) -> int:
        hits = 0
        for number, chunk in enumerate(iter_lines(f, GREP_LINE_BYTES), start=1):
            line = decode(chunk)
            if self._search(line) is None:
                continue
            hits += 1
            if self.mode == "files_with_matches":
                break
            if self.mode == "content":
                prefix = f"{shown}:{number}:" if self.numbers else f"{shown}:"
                if not self._add(prefix + clip(line)):
                    break
        return hits

    def _search(self, line: str) -> Any:
        left = max(self.budget.deadline - time.monotonic(), 0.001)
        try:
            return self.rx.search(line, timeout=left, concurrent=True)
        except TimeoutError:
            if left < self.budget.seconds / 2:  # the call's time ran out, rather than this line trapping it
                self.budget.cut = "time"
                raise _OutOfTime from None
            raise

    def _add(self, entry: str) -> bool:
        size = len(entry.encode()) + 1
        if len(self.entries) >= self.head or self.used + size > self.sandbox.max_read_bytes:
            self.cut = True
            return False
        self.entries.append(entry)
        self.used += size
        return True

    def render(self, pattern: str, raw: str) -> str:
        notes = []
        if self.cut:
            notes.append(f"[showing the first {len(self.entries)} entries; narrow path or glob, or raise head_limit]")
        notes += self.walk_notes or list(filter(None, [self.budget.note("narrow path or glob")]))
        if self.skipped_big:
            notes.append(f"[skipped {plural(self.skipped_big, 'file')} over {self.sandbox.max_file_bytes:,} bytes]")
        if self.skipped_links:
            notes.append(
                f"[skipped {plural(self.skipped_links, 'hard-linked file')}: such files are searched only when the "
                "server runs with --allow-hardlinks]"
            )
        if not self.entries:
            return "\n".join([f'No matches for {pattern!r} in "{raw}".', *notes])
        if self.mode == "content":
            body = escape_fence("\n".join(self.entries), "grep-results")
            head = f'<grep-results pattern="{html.escape(pattern)}" entries="{len(self.entries)}">'
            return "\n".join([head, body, "</grep-results>", *notes])
        found = plural(len(self.entries), "file")
        noun = found if self.mode == "files_with_matches" else f"{found} with matches"
        return "\n".join([f"Found {noun}", *self.entries, *notes])
