"""MultiEdit: edits apply in order, each to the result of the one before, and all or none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from subagents.tools.base import ToolOutput
from subagents.tools.multiedit import MAX_EDITS, MultiEdit
from subagents.tools.registry import Toolbox
from subagents.tools.sandbox import Sandbox

pytestmark = pytest.mark.anyio

APP = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text(APP)
    (root / "blob.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "outside.py").write_text("x = 1\n")
    return root


@pytest.fixture
def box(root: Path) -> Toolbox:
    return Toolbox({"MultiEdit": MultiEdit(Sandbox([root]))})


async def edit(box: Toolbox, file_path: str, *edits: dict[str, Any]) -> ToolOutput:
    return await box.call("MultiEdit", {"file_path": file_path, "edits": list(edits)})


def change(old: str, new: str, **extra: Any) -> dict[str, Any]:
    return {"old_string": old, "new_string": new, **extra}


async def test_edits_apply_in_order_each_to_the_result_of_the_one_before(root: Path, box: Toolbox) -> None:
    out = await edit(
        box,
        "src/app.py",
        change("def add(a, b)", "def plus(a, b)"),
        change("def plus(a, b):\n    return a + b", "def plus(a, b):\n    return b + a"),  # sees edit 1
        change("a, b", "x, y", replace_all=True),
    )
    assert out == ToolOutput(text='Edited "src/app.py": applied 3 edits.')
    assert (root / "src" / "app.py").read_text() == (
        "def plus(x, y):\n    return b + a\n\n\ndef sub(x, y):\n    return a - b\n"
    )


@pytest.mark.parametrize(
    ("edits", "reason"),
    [
        ([change("def add", "def plus"), change("missing text", "x")], "edit 2 of 2: old_string was not found"),
        ([change("a, b", "x, y")], "edit 1 of 1: old_string occurs 2 times"),
        ([change("def add", "def plus"), change("def add", "def again")], "edit 2 of 2: old_string was not found"),
        ([change("def add", "def plus"), change("", "x")], "edit 2 of 2 has an empty old_string"),
        ([change("return", "return")], "old_string and new_string are the same"),
        ([change("", "new file")], 'creates a new file, but "src/app.py" exists'),
    ],
)
async def test_one_failing_edit_leaves_the_file_byte_for_byte(
    root: Path, box: Toolbox, edits: list[dict[str, Any]], reason: str
) -> None:
    out = await edit(box, "src/app.py", *edits)
    assert out.is_error and reason in out.text and "No edit was applied; the file is unchanged." in out.text
    assert (root / "src" / "app.py").read_bytes() == APP.encode()


async def test_a_new_file_starts_from_an_empty_old_string(root: Path, box: Toolbox) -> None:
    out = await edit(box, "tests/test_app.py", change("", "import app\n\nX = 1\n"), change("X = 1", "X = 2"))
    assert out == ToolOutput(text='Created "tests/test_app.py": applied 2 edits.')
    assert (root / "tests" / "test_app.py").read_text() == "import app\n\nX = 2\n"


async def test_a_failed_new_file_is_not_created(root: Path, box: Toolbox) -> None:
    out = await edit(box, "new.py", change("", "a = 1\n"), change("b = 2", "c"))
    assert out.is_error and not (root / "new.py").exists()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../outside.py", "outside the allowed roots"),
        (".env", "deny-list"),
        (".git/config", "deny-list"),
        ("blob.bin", "binary"),
        ("src", "is a directory"),
    ],
)
async def test_paths_are_checked_as_edit_checks_them(root: Path, box: Toolbox, path: str, reason: str) -> None:
    before = (root.parent / "outside.py").read_bytes()
    out = await edit(box, path, change("x", "y"))
    assert out.is_error and reason in out.text
    assert (root.parent / "outside.py").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"file_path": "src/app.py"}, "edits must be a non-empty list"),
        ({"file_path": "src/app.py", "edits": []}, "edits must be a non-empty list"),
        ({"file_path": "src/app.py", "edits": ["x"]}, "edit 1 must be an object"),
        ({"file_path": "src/app.py", "edits": [{"old_string": "a"}]}, "edit 1 needs old_string and new_string"),
        ({"file_path": "src/app.py", "edits": [change("a", "b", force=True)]}, "unknown key 'force'"),
        ({"file_path": "src/app.py", "edits": [change("a", "b", replace_all="yes")]}, "replace_all must be"),
        ({"file_path": "src/app.py", "edits": [change("a", "b")] * (MAX_EDITS + 1)}, f"at most {MAX_EDITS}"),
        ({"file_path": 5, "edits": [change("a", "b")]}, "file_path must be a string"),
        ({"file_path": "src/app.py", "edits": [change("a", "b")], "x": 1}, "unknown argument 'x'"),
    ],
)
async def test_bad_arguments_say_what_to_fix(root: Path, box: Toolbox, args: dict[str, Any], reason: str) -> None:
    out = await box.call("MultiEdit", args)
    assert out.is_error and out.text.startswith("MultiEdit: ") and reason in out.text
    assert (root / "src" / "app.py").read_bytes() == APP.encode()
