"""MultiEdit: several edits to one file in one call, shaped like Claude Code's. The edits apply in order,
each to the result of the one before, and all of them or none: the file is written once, after every edit
has succeeded in memory. Same path rules as Edit (a Sandbox on the isolated workspace)."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio

from subagents.errors import SandboxError
from subagents.messages import ToolSpec
from subagents.tools.base import ToolOutput
from subagents.tools.edit import count_problem, encode_text, read_text, resolve_for_write, write_file
from subagents.tools.sandbox import Sandbox

MAX_EDITS = 100
_EDIT_KEYS = ("old_string", "new_string", "replace_all")
NONE_APPLIED = "No edit was applied; the file is unchanged."


class MultiEdit:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
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

    async def run(self, args: dict[str, Any]) -> ToolOutput:
        problem = args_problem(args)
        if problem is not None:
            return _error(f"MultiEdit: {problem}")
        edits = [(e["old_string"], e["new_string"], bool(e.get("replace_all"))) for e in args["edits"]]
        try:
            work = partial(self._run, args["file_path"], edits)
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except SandboxError as exc:
            return _error(str(exc))
        except OSError as exc:
            return _error(f"MultiEdit failed: {exc.strerror or exc}.")

    def _run(self, raw: str, edits: list[tuple[str, str, bool]]) -> ToolOutput:
        creating = edits[0][0] == ""
        if creating:
            path, new = resolve_for_write(self.sandbox, raw)
            if not new:
                return _error(
                    f'MultiEdit: edit 1 has an empty old_string, which creates a new file, but "{raw}" exists. '
                    f"Give the text to replace. {NONE_APPLIED}"
                )
            text = edits[0][1]
        else:
            path = self.sandbox.resolve(raw, kind="file")
            current = read_text(path, raw)
            if isinstance(current, ToolOutput):
                return _error(current.text.replace("Edit:", "MultiEdit:", 1) + f" {NONE_APPLIED}")
            text = current
        text_or_error = apply_edits(text, edits[1:] if creating else edits, raw, first=2 if creating else 1)
        if isinstance(text_or_error, ToolOutput):
            return text_or_error
        data = encode_text(text_or_error, "the edited file")
        if isinstance(data, ToolOutput):
            return _error(f"MultiEdit: {data.text} {NONE_APPLIED}")
        write_file(path, data, raw)
        verb = "Created" if creating else "Edited"
        count = len(edits)
        return ToolOutput(
            text=f'{verb} "{self.sandbox.display(path)}": applied {count} edit{"s" if count > 1 else ""}.'
        )


def apply_edits(text: str, edits: list[tuple[str, str, bool]], raw: str, *, first: int = 1) -> str | ToolOutput:
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
