"""MultiEdit: several edits to one file in one call, shaped like Claude Code's. The edits apply in order,
each to the result of the one before, and all of them or none: the file is written once, after every edit
has succeeded in memory. The same descriptor-walked paths as Edit and Write (tools/edit.py): one descriptor
for the read and the write, hard links and planted git repositories refused."""

from __future__ import annotations

from typing import Any

from subagents.errors import SandboxError
from subagents.messages import ToolSpec
from subagents.tools.base import ToolOutput
from subagents.tools.edit import count_problem, encode_text, read_text, resolve_for_write, write_file
from subagents.tools.filetool import FileTool
from subagents.tools.sandbox import Sandbox, shown_text

MAX_EDITS = 100
_EDIT_KEYS = ("old_string", "new_string", "replace_all")
NONE_APPLIED = "No edit was applied; the file is unchanged."

Edits = list[tuple[str, str, bool]]


class MultiEdit(FileTool):
    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        self.spec = ToolSpec(
            name="MultiEdit",
            description=(
                "Make several edits to one file at once. Edits apply in order, each to the result of the one "
                "before; if any edit fails, none is applied. Each old_string must match exactly and occur "
                "once (unless replace_all). To create a file, give a new path and a first edit with an empty "
                "old_string and the whole content as new_string. Read the file first. UTF-8 text only."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "file_path": {"type": "string", "description": "Path, relative to the root or absolute."},
                    "edits": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_EDITS,
                        "items": {
                            "type": "object",
                            "properties": {
                                "old_string": {"type": "string", "description": "The exact text to replace."},
                                "new_string": {"type": "string", "description": "The text to put in its place."},
                                "replace_all": {"type": "boolean", "description": "Replace every occurrence."},
                            },
                            "required": ["old_string", "new_string"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["file_path", "edits"],
                "additionalProperties": False,
            },
        )

    def problem(self, args: dict[str, Any]) -> str | None:
        found = args_problem(args)
        return None if found is None else f"MultiEdit: {found}"

    def _run(self, args: dict[str, Any]) -> ToolOutput:
        raw = args["file_path"]
        edits = [(e["old_string"], e["new_string"], bool(e.get("replace_all"))) for e in args["edits"]]
        try:
            return self._create(raw, edits) if edits[0][0] == "" else self._edit(raw, edits)
        except SandboxError as exc:
            raise SandboxError(f"{exc} {NONE_APPLIED}") from None

    def _create(self, raw: str, edits: Edits) -> ToolOutput:
        with resolve_for_write(self.sandbox, raw) as target:
            if target.st is not None:
                return _error(
                    f'MultiEdit: edit 1 has an empty old_string, which creates a new file, but "{shown_text(raw)}" '
                    f"exists. Give the text to replace. {NONE_APPLIED}"
                )
            data = _edited(edits[0][1], edits[1:], raw, first=2)
            if isinstance(data, ToolOutput):
                return data
            write_file(self.sandbox, target, data, raw)
        return _done("Created", self.sandbox.display(target.path), len(edits))

    def _edit(self, raw: str, edits: Edits) -> ToolOutput:
        # One descriptor, opened through the sandbox, for both the read and the write (as Edit).
        with self.sandbox.open(raw, kind="file", mode="rw") as handle, handle.file("r+b") as f:
            text = read_text(f, raw)
            if isinstance(text, ToolOutput):
                return _error(text.text.replace("Edit:", "MultiEdit:", 1) + f" {NONE_APPLIED}")
            data = _edited(text, edits, raw, first=1)
            if isinstance(data, ToolOutput):
                return data
            f.seek(0)
            f.write(data)
            f.truncate()
        return _done("Edited", self.sandbox.display(handle.path), len(edits))


def _edited(text: str, edits: Edits, raw: str, *, first: int) -> bytes | ToolOutput:
    """The file's new bytes once every edit has applied, or the error output of the first that fails."""
    edited = apply_edits(text, edits, raw, first=first)
    if isinstance(edited, ToolOutput):
        return edited
    data = encode_text(edited, "the edited file")
    return _error(f"MultiEdit: {data.text} {NONE_APPLIED}") if isinstance(data, ToolOutput) else data


def _done(verb: str, shown: str, count: int) -> ToolOutput:
    return ToolOutput(text=f'{verb} "{shown}": applied {count} edit{"s" if count > 1 else ""}.')


def apply_edits(text: str, edits: Edits, raw: str, *, first: int = 1) -> str | ToolOutput:
    """`text` with every edit applied in order, or the error output naming the first edit that fails."""
    total = first - 1 + len(edits)
    for number, (old, new, replace_all) in enumerate(edits, start=first):
        where = f"edit {number} of {total}"
        if not old:
            return _error(
                f"MultiEdit: {where} has an empty old_string; only the first edit of a new file may. {NONE_APPLIED}"
            )
        if old == new:
            return _error(f"MultiEdit: {where}: old_string and new_string are the same. {NONE_APPLIED}")
        problem = count_problem(text.count(old), raw, text, old, replace_all)
        if problem is not None:
            detail = problem.removeprefix("Edit: ")
            after = " (It applies to the file as the edits before it left it.)" if number > 1 else ""
            return _error(f"MultiEdit: {where}: {detail}{after} {NONE_APPLIED}")
        text = text.replace(old, new, -1 if replace_all else 1)
    return text


def args_problem(args: dict[str, Any]) -> str | None:
    """What is wrong with MultiEdit's arguments, in words the model can act on; None if nothing."""
    unknown = [k for k in args if k not in ("file_path", "edits")]
    if unknown:
        return f"unknown argument {', '.join(map(repr, unknown))}; it takes file_path and edits."
    if not isinstance(args.get("file_path"), str):
        return "file_path must be a string path."
    edits = args.get("edits")
    if not isinstance(edits, list) or not edits:
        return "edits must be a non-empty list of {old_string, new_string, replace_all?} objects."
    if len(edits) > MAX_EDITS:
        return f"edits has {len(edits)} edits; at most {MAX_EDITS} go in one call."
    for number, edit in enumerate(edits, start=1):
        if not isinstance(edit, dict):
            return f"edit {number} must be an object with old_string and new_string."
        extra = [k for k in edit if k not in _EDIT_KEYS]
        if extra:
            return f"edit {number} has unknown key {', '.join(map(repr, extra))}; it takes {', '.join(_EDIT_KEYS)}."
        if not isinstance(edit.get("old_string"), str) or not isinstance(edit.get("new_string"), str):
            return f"edit {number} needs old_string and new_string, both strings."
        if edit.get("replace_all") is not None and not isinstance(edit["replace_all"], bool):
            return f"edit {number}: replace_all must be true or false."
    return None


def _error(text: str) -> ToolOutput:
    return ToolOutput(text=text, is_error=True)
