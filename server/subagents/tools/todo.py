"""TodoWrite: the run's own checklist, shaped like Claude Code's so models trained on it use it well.

Each call sends the whole list, which replaces the last one. The list lives in the run's transcript (the
call and its result, which shows the list back), so `runs show` and a continued run see it too.
"""

from __future__ import annotations

from typing import Any

from subagents.messages import ToolSpec
from subagents.tools.base import ToolOutput

MAX_TODOS = 50
MAX_TODO_CHARS = 500
STATUSES = ("pending", "in_progress", "completed")
_MARKS = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}
_KEYS = ("content", "status", "activeForm")


class TodoWrite:
    def __init__(self) -> None:
        self.todos: list[dict[str, str]] = []
        self.spec = ToolSpec(
            name="TodoWrite",
            description=(
                "Keep your checklist for this task: send the whole list each time; it replaces the last one. "
                "Use it for work of three or more steps. Mark one item in_progress before you start it, and "
                "completed as soon as it is done; add items you discover. The list is yours to plan with: "
                "your final answer is still your report."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "todos": {
                        "type": "array",
                        "maxItems": MAX_TODOS,
                        "description": "The updated checklist.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "content": {"type": "string", "minLength": 1, "description": "What to do."},
                                "status": {"type": "string", "enum": list(STATUSES)},
                                "activeForm": {
                                    "type": "string",
                                    "minLength": 1,
                                    "description": "The same, as doing it: 'Running the tests'.",
                                },
                            },
                            "required": ["content", "status", "activeForm"],
                            "additionalProperties": False,
                        },
                    }
                },
                "required": ["todos"],
                "additionalProperties": False,
            },
        )

    async def run(self, args: dict[str, Any]) -> ToolOutput:
        problem = todos_problem(args)
        if problem is not None:
            return ToolOutput(text=f"TodoWrite: {problem}", is_error=True)
        self.todos = [{k: str(t[k]) for k in _KEYS} for t in args["todos"]]
        return ToolOutput(text=render(self.todos))


def render(todos: list[dict[str, str]]) -> str:
    """The checklist as the model (and a reader of the transcript) sees it back."""
    if not todos:
        return "Checklist cleared."
    done = sum(t["status"] == "completed" for t in todos)
    lines = [f"Checklist updated ({done} of {len(todos)} done):"]
    lines += [f"{_MARKS[t['status']]} {t['content']}" for t in todos]
    doing = [t["activeForm"] for t in todos if t["status"] == "in_progress"]
    if len(doing) > 1:
        lines.append("Note: several items are in_progress; finish one before starting the next.")
    return "\n".join(lines)


def todos_problem(args: dict[str, Any]) -> str | None:
    """What is wrong with TodoWrite's arguments, in words the model can act on; None if nothing."""
    if set(args) != {"todos"}:
        return "it takes one argument, todos: the whole checklist as a list."
    todos = args["todos"]
    if not isinstance(todos, list):
        return "todos must be a list of {content, status, activeForm} objects."
    if len(todos) > MAX_TODOS:
        return f"todos has {len(todos)} items; keep it to {MAX_TODOS} or fewer."
    for number, todo in enumerate(todos, start=1):
        if not isinstance(todo, dict) or set(todo) - set(_KEYS):
            return f"item {number} must be an object with exactly content, status and activeForm."
        for key in _KEYS:
            value = todo.get(key)
            if not isinstance(value, str) or not value.strip():
                return f"item {number} needs {key} as non-empty text."
            if len(value) > MAX_TODO_CHARS:
                return f"item {number}: {key} is {len(value)} characters; keep it under {MAX_TODO_CHARS}."
        if todo["status"] not in STATUSES:
            return f"item {number}: status must be one of {', '.join(STATUSES)}, got {todo['status'][:40]!r}."
    return None
