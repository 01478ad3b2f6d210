"""Write and Edit: file-changing tools shaped like Claude Code's, confined by a Sandbox.

They are meant for an isolated Workspace (the sandbox root is the copy, never the user's tree), but
they check paths as strictly as the read tools do: inside the roots, never secrets or special files.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Any, BinaryIO

from subagents.errors import SandboxError
from subagents.messages import ToolSpec
from subagents.tools.args import schema
from subagents.tools.base import ToolOutput
from subagents.tools.filetool import FileTool
from subagents.tools.gitdir import planted_git_dir
from subagents.tools.resolver import DIR_LOOKUP, FILE_FLAGS, Located
from subagents.tools.sandbox import Sandbox, shown_text
from subagents.tools.text import SNIFF_BYTES, is_binary

MAX_WRITE_BYTES = 1_000_000

_PATH_ARG = {"type": "string", "description": "Path, relative to the root or absolute."}


class Write(FileTool):
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
        with resolve_for_write(self.sandbox, raw) as target:
            write_file(self.sandbox, target, data, raw)
        verb = "Overwrote" if target.st is not None else "Created"
        lines = data.count(b"\n") + (not data.endswith(b"\n") and bool(data))
        return ToolOutput(text=f'{verb} "{self.sandbox.display(target.path)}" ({lines} lines, {len(data):,} bytes).')


class Edit(FileTool):
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
        # One descriptor, opened through the sandbox, for both the read and the write.
        with self.sandbox.open(raw, kind="file", mode="rw") as handle, handle.file("r+b") as f:
            text = read_text(f, raw)
            if isinstance(text, ToolOutput):
                return text
            count = text.count(old)
            problem = count_problem(count, raw, text, old, args.get("replace_all", False))
            if problem is not None:
                return _error(problem)
            data = encode_text(text.replace(old, new, -1 if args.get("replace_all") else 1), "the edited file")
            if isinstance(data, ToolOutput):
                return data
            f.seek(0)
            f.write(data)
            f.truncate()
        line = text[: text.index(old)].count("\n") + 1
        done = "1 occurrence" if count == 1 else f"{count} occurrences"
        return ToolOutput(text=f'Edited "{self.sandbox.display(handle.path)}": replaced {done} (first at line {line}).')


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


def read_text(f: BinaryIO, raw: str) -> str | ToolOutput:
    """The UTF-8 text of a file open for editing, or the error output that says why it cannot be edited."""
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


def resolve_for_write(sandbox: Sandbox, raw: str) -> Located:
    """Where a write to `raw` goes, walked safely like every read: an existing file (`st` set), or the
    deepest existing directory and the new names below it (`missing`). Same rules as reads: inside
    the roots, never secrets, special files, hard links, or a planted git repository. Close it."""
    found = sandbox.locate(raw, kind="file", create=True, verb="write")
    shown = shown_text(raw)
    try:
        if found.st is not None:
            sandbox.check_kind(found.st, found.path, shown, "file")
            return found
        planted = planted_git_dir(found.path, found.root)
        if planted is not None:
            raise SandboxError(
                f'Refused: writing "{shown}" would make "{sandbox.display(planted)}" look like a git repository '
                "(HEAD with objects/ and refs/, or with commondir), whose config git would obey when it runs "
                "there. Repository metadata is never written."
            )
    except SandboxError:
        found.close()
        raise
    return found


def write_file(sandbox: Sandbox, target: Located, data: bytes, raw: str) -> None:
    """Create or replace the file `target` names with `data`: new directories and the file are made
    relative to descriptors, never following a link or blocking on a FIFO swapped in meanwhile."""
    fd = _open_for_write(target)
    with os.fdopen(fd, "wb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise SandboxError(f'Refused: "{shown_text(raw)}" is not a regular file.')
        sandbox.check_links(st, shown_text(raw))
        f.truncate()
        f.write(data)


def _open_for_write(target: Located) -> int:
    parent = os.dup(target.parent_fd)
    try:
        for name in target.missing[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent)
            child = os.open(name, DIR_LOOKUP, dir_fd=parent)  # O_NOFOLLOW: not through a link made meanwhile
            os.close(parent)
            parent = child
        name = target.missing[-1] if target.missing else target.name
        return os.open(name, os.O_WRONLY | os.O_CREAT | FILE_FLAGS, 0o666, dir_fd=parent)
    finally:
        os.close(parent)
