"""Write and Edit: file-changing tools shaped like Claude Code's, confined by a Sandbox.

They are meant for an isolated Workspace (the sandbox root is the copy, never the user's tree), but
they check paths as strictly as the read tools do: inside the roots, never secrets or special files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from subagents.errors import SandboxError
from subagents.messages import ToolSpec
from subagents.tools.base import ToolOutput
from subagents.tools.files import SNIFF_BYTES, _FileTool, is_binary, open_regular, schema
from subagents.tools.gitdir import planted_git_dir
from subagents.tools.sandbox import Sandbox, _check_text, _shown

MAX_WRITE_BYTES = 1_000_000

_PATH_ARG = {"type": "string", "description": "Path, relative to the root or absolute."}


class Write(_FileTool):
    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        self.spec = ToolSpec(
            name="Write",
            description=(
                "Create a file, or overwrite one, with the given content. Parent directories are created. "
                "You work in an isolated copy of the project; your changes go back to the user as a diff. "
                "Prefer Edit to change part of an existing file. Secrets (.env, keys, .git) are refused; "
                f"content is at most {MAX_WRITE_BYTES:,} bytes."
            ),
            input_schema=schema(
                {"file_path": _PATH_ARG, "content": {"type": "string", "description": "The whole file."}},
                required=["file_path", "content"],
            ),
        )

    def _run(self, args: dict[str, Any]) -> ToolOutput:
        raw = args["file_path"]
        data = encode_text(args["content"], "content")
        if isinstance(data, ToolOutput):
            return data
        path, created = resolve_for_write(self.sandbox, raw)
        write_file(path, data, raw)
        verb = "Created" if created else "Overwrote"
        lines = data.count(b"\n") + (not data.endswith(b"\n") and bool(data))
        return ToolOutput(text=f'{verb} "{self.sandbox.display(path)}" ({lines} lines, {len(data):,} bytes).')


class Edit(_FileTool):
    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        self.spec = ToolSpec(
            name="Edit",
            description=(
                "Replace text in an existing file. old_string must match the file exactly (whitespace and "
                "indentation included) and occur exactly once, unless replace_all is true; include enough "
                "surrounding lines to make it unique. Read the file first. UTF-8 text files only."
            ),
            input_schema=schema(
                {
                    "file_path": _PATH_ARG,
                    "old_string": {"type": "string", "description": "The exact text to replace."},
                    "new_string": {"type": "string", "description": "The text to put in its place."},
                    "replace_all": {"type": "boolean", "description": "Replace every occurrence."},
                },
                required=["file_path", "old_string", "new_string"],
            ),
        )

    def _run(self, args: dict[str, Any]) -> ToolOutput:
        raw, old, new = args["file_path"], args["old_string"], args["new_string"]
        if not old:
            return _error("Edit: old_string is empty. To create a file or replace all of it, use Write.")
        if old == new:
            return _error("Edit: old_string and new_string are the same, so there is nothing to change.")
        path = self.sandbox.resolve(raw, kind="file")
        text = read_text(path, raw)
        if isinstance(text, ToolOutput):
            return text
        count = text.count(old)
        problem = count_problem(count, raw, text, old, args.get("replace_all", False))
        if problem is not None:
            return _error(problem)
        data = encode_text(text.replace(old, new, -1 if args.get("replace_all") else 1), "the edited file")
        if isinstance(data, ToolOutput):
            return data
        write_file(path, data, raw)
        line = text[: text.index(old)].count("\n") + 1
        done = "1 occurrence" if count == 1 else f"{count} occurrences"
        return ToolOutput(text=f'Edited "{self.sandbox.display(path)}": replaced {done} (first at line {line}).')


def count_problem(count: int, raw: str, text: str, old: str, replace_all: bool) -> str | None:
    """Why `old`, found `count` times, cannot be replaced as asked; None when it can."""
    if count == 0:
        hint = ""
        if "\r\n" in text and "\n" in old and "\r\n" not in old:
            hint = " The file has Windows line endings (\\r\\n); old_string must use them too."
        return (
            f'Edit: old_string was not found in "{raw}" (0 occurrences). It must match the file exactly, '
            f"including whitespace and indentation; Read the file and copy the text.{hint}"
        )
    if count > 1 and not replace_all:
        return (
            f'Edit: old_string occurs {count} times in "{raw}" but must occur exactly once. Add surrounding '
            "lines to make it unique, or set replace_all to true to replace every occurrence."
        )
    return None


def read_text(path: Path, raw: str) -> str | ToolOutput:
    """The UTF-8 text of a file to edit, or the error output that says why it cannot be edited."""
    with open_regular(path, raw) as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_WRITE_BYTES:
            return _error(f'Edit: "{raw}" is {size:,} bytes, over the {MAX_WRITE_BYTES:,}-byte limit for Edit.')
        data = f.read(MAX_WRITE_BYTES + 1)
    if is_binary(data[:SNIFF_BYTES]):
        return _error(f'Edit: "{raw}" is a binary or non-UTF-8 file; Edit changes UTF-8 text files only.')
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _error(f'Edit: "{raw}" is not UTF-8 text; Edit changes UTF-8 text files only.')


def encode_text(text: str, what: str) -> bytes | ToolOutput:
    """`text` as UTF-8 within the write limit, or the error output that says why not."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a JSON \ud800 escape
        return _error(f"{what.capitalize()} is not valid Unicode text (it has a lone surrogate).")
    if len(data) > MAX_WRITE_BYTES:
        return _error(f"{what.capitalize()} is {len(data):,} bytes, over the {MAX_WRITE_BYTES:,}-byte limit.")
    return data


def _error(text: str) -> ToolOutput:
    return ToolOutput(text=text, is_error=True)


# --- paths that may not exist yet ---


def resolve_for_write(sandbox: Sandbox, raw: str) -> tuple[Path, bool]:
    """The real path a write to `raw` would create or replace, and whether it is new. Same rules as
    `Sandbox.resolve`: an existing path goes through it; for a new one, its nearest existing
    ancestor does (as a directory), and the new names below it are checked against the deny-list."""
    shown = _shown(raw)
    _check_text(raw, shown)
    candidate = Path(raw) if os.path.isabs(raw) else sandbox.roots[0] / raw
    if os.path.lexists(candidate):
        return sandbox.resolve(raw, kind="file"), False
    target = _new_path(sandbox, raw, shown, candidate)
    root = next(r for r in sandbox.roots if target.is_relative_to(r))
    planted = planted_git_dir(target, root)
    if planted is not None:
        where = sandbox.display(planted)
        raise SandboxError(
            f'Refused: writing "{shown}" would make "{where}" look like a git repository (HEAD, objects/ and '
            "refs/), whose config git would obey when it runs there. Repository metadata is never written."
        )
    return target, True


def _new_path(sandbox: Sandbox, raw: str, shown: str, candidate: Path) -> Path:
    """Where a new file named `raw` would go, checked like `Sandbox.resolve` checks existing paths."""
    ancestor = candidate.parent
    while not os.path.lexists(ancestor):  # ends at the filesystem root at the latest
        ancestor = ancestor.parent
    base = sandbox.resolve(str(ancestor), kind="dir")
    rest = candidate.relative_to(ancestor).parts
    if ".." in rest:
        raise SandboxError(f'Refused: "{shown}" goes up (..) through a directory that does not exist.')
    target = base.joinpath(*rest)
    lexical = Path(os.path.normpath(candidate))
    # Like resolve: the real path and the path as written must both pass the deny-list.
    for path in (target, lexical):
        rule = sandbox.deny_rule(path) if any(path.is_relative_to(r) for r in sandbox.roots) else None
        if rule is not None:
            raise SandboxError(
                f'Refused: "{shown}" matches the secrets deny-list ({rule}); such files are never written.'
            )
    return target


def write_file(path: Path, data: bytes, shown: str) -> None:
    """Create or truncate a regular file and write `data`, never following a final symlink or
    blocking on a FIFO swapped in since the sandbox checked the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags, 0o666)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SandboxError(f'Refused: "{_shown(shown)}" is not a regular file.')
    with os.fdopen(fd, "wb") as f:
        f.write(data)
