"""Write and Edit: Claude Code semantics, confined by the same Sandbox rules as the read tools."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from subagents.tools.base import ToolOutput
from subagents.tools.bash import BashPolicy
from subagents.tools.edit import MAX_WRITE_BYTES, Edit, Write
from subagents.tools.gitdir import is_git_name
from subagents.tools.registry import Toolbox
from subagents.tools.sandbox import Sandbox
from subagents.tools.write_registry import WRITE_TOOLS_IMPLEMENTED, build_write_tools

pytestmark = pytest.mark.anyio


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("x = 1\ny = 1\n")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "outside").mkdir()
    (root / "out").symlink_to(tmp_path / "outside")
    (root / "dangling").symlink_to(tmp_path / "outside" / "missing.txt")
    (root / "dangling_in").symlink_to(root / "missing.txt")
    return root


@pytest.fixture
def box(root: Path) -> Toolbox:
    return Toolbox({"Write": Write(Sandbox([root])), "Edit": Edit(Sandbox([root]))})


async def call(box: Toolbox, name: str, **args: Any) -> ToolOutput:
    return await box.call(name, args)


# --- Write ---


async def test_write_creates_a_file_and_its_parent_directories(root: Path, box: Toolbox) -> None:
    out = await call(box, "Write", file_path="tests/unit/test_app.py", content="def test():\n    pass\n")
    assert out == ToolOutput(text='Created "tests/unit/test_app.py" (2 lines, 21 bytes).')
    assert (root / "tests" / "unit" / "test_app.py").read_text() == "def test():\n    pass\n"


async def test_write_overwrites_and_accepts_absolute_paths_and_empty_content(root: Path, box: Toolbox) -> None:
    out = await call(box, "Write", file_path=str(root / "src" / "app.py"), content="")
    assert out.text == 'Overwrote "src/app.py" (0 lines, 0 bytes).'
    assert (root / "src" / "app.py").read_bytes() == b""


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../escape.py", "outside the allowed roots"),
        ("/etc/passwd", "outside the allowed roots"),
        ("out/new.py", "outside the allowed roots"),  # through a link leaving the root
        ("new/../../escape.py", "goes up (..) through a directory that does not exist"),
        (".env", "deny-list"),
        ("config/.env.local", "deny-list"),
        (".git/hooks/pre-commit", "deny-list"),
        ("keys/server.pem", "deny-list"),
        ("src", "is a directory"),
        ("dangling", "outside the allowed roots"),  # writing through it would create a file outside
        ("dangling_in", "No such file"),
        ("bad\nname.py", "control character"),
        ("", "empty"),
    ],
)
async def test_write_refuses_paths_the_sandbox_refuses(
    root: Path, tmp_path: Path, box: Toolbox, path: str, reason: str
) -> None:
    out = await call(box, "Write", file_path=path, content="pwned\n")
    assert out.is_error and reason in out.text
    assert not (tmp_path / "escape.py").exists() and not (tmp_path / "outside" / "missing.txt").exists()
    assert os.listdir(tmp_path / "outside") == []


@pytest.mark.parametrize(
    "writes",
    [
        ["HEAD", "objects/x", "refs/x"],  # a bare repository
        ["refs/x", "objects/x", "HEAD"],
        ["store/objects/x", "store/refs/x", "commondir", "HEAD"],  # HEAD + commondir: objects live elsewhere
        ["sub/HEAD", "sub/commondir"],
    ],
)
async def test_write_refuses_the_file_that_would_make_a_directory_a_git_repository(
    root: Path, box: Toolbox, writes: list[str]
) -> None:
    outs = [await call(box, "Write", file_path=path, content="ref: refs/heads/main\n") for path in writes]
    assert [o.is_error for o in outs] == [False] * (len(writes) - 1) + [True]
    assert "look like a git repository" in outs[-1].text and not (root / writes[-1]).exists()


@pytest.mark.parametrize(
    ("name", "is_git"),
    [
        (".git", True), (".GIT", True), (".git.", True), (".git ", True), (".git. .", True), ("GIT~1", True),
        ("git~2", True), (".git::$INDEX_ALLOCATION", True), (".g\u200cit", True), (".\ufeffgit", True),
        (".gitignore", False), (".gitattributes", False), ("git", False), ("x.git", False), ("git~", False),
    ],
)  # fmt: skip
def test_git_names_include_every_alias_a_filesystem_may_take(name: str, is_git: bool) -> None:
    assert is_git_name(name) is is_git


async def test_write_caps_content_size_and_checks_arguments(box: Toolbox) -> None:
    big = await call(box, "Write", file_path="big.txt", content="x" * (MAX_WRITE_BYTES + 1))
    assert big.is_error and "over the 1,000,000-byte limit" in big.text
    surrogate = await call(box, "Write", file_path="s.txt", content="\ud800")
    assert surrogate.is_error and "lone surrogate" in surrogate.text
    missing = await call(box, "Write", file_path="a.txt")
    assert missing.is_error and "missing required argument 'content'" in missing.text
    extra = await call(box, "Write", file_path="a.txt", content="", mode="append")
    assert extra.is_error and "unknown argument 'mode'" in extra.text
    wrong = await call(box, "Write", file_path="a.txt", content=3)
    assert wrong.is_error and "must be a string" in wrong.text


async def test_write_refuses_to_replace_a_fifo(root: Path, box: Toolbox) -> None:
    os.mkfifo(root / "pipe")
    out = await call(box, "Write", file_path="pipe", content="x")
    assert out.is_error and "FIFO" in out.text


# --- Edit ---


async def test_edit_replaces_a_unique_string(root: Path, box: Toolbox) -> None:
    out = await call(box, "Edit", file_path="src/app.py", old_string="y = 1", new_string="y = 2")
    assert out == ToolOutput(text='Edited "src/app.py": replaced 1 occurrence (first at line 2).')
    assert (root / "src" / "app.py").read_text() == "x = 1\ny = 2\n"


async def test_edit_needs_a_unique_match_unless_replace_all(root: Path, box: Toolbox) -> None:
    out = await call(box, "Edit", file_path="src/app.py", old_string="= 1", new_string="= 3")
    assert out.is_error and "occurs 2 times" in out.text and "replace_all" in out.text
    assert (root / "src" / "app.py").read_text() == "x = 1\ny = 1\n"
    out = await call(box, "Edit", file_path="src/app.py", old_string="= 1", new_string="= 3", replace_all=True)
    assert out.text == 'Edited "src/app.py": replaced 2 occurrences (first at line 1).'
    assert (root / "src" / "app.py").read_text() == "x = 3\ny = 3\n"


async def test_edit_reports_a_missing_string_and_a_no_op(root: Path, box: Toolbox) -> None:
    missing = await call(box, "Edit", file_path="src/app.py", old_string="z = 1", new_string="z = 2")
    assert missing.is_error and "not found" in missing.text and "0 occurrences" in missing.text
    same = await call(box, "Edit", file_path="src/app.py", old_string="x = 1", new_string="x = 1")
    assert same.is_error and "the same" in same.text
    empty = await call(box, "Edit", file_path="src/app.py", old_string="", new_string="x")
    assert empty.is_error and "use Write" in empty.text
    (root / "win.txt").write_bytes(b"a\r\nb\r\n")
    crlf = await call(box, "Edit", file_path="win.txt", old_string="a\nb", new_string="c")
    assert crlf.is_error and "Windows line endings" in crlf.text


async def test_edit_refuses_binary_non_utf8_missing_and_outside_files(root: Path, box: Toolbox) -> None:
    (root / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    cases = {
        "blob.bin": "binary or non-UTF-8 file",
        "latin1.txt": "binary or non-UTF-8 file",
        "nope.py": "No such file",
        "out/x.py": "outside the allowed roots",
        ".env": "deny-list",
    }
    for path, reason in cases.items():
        out = await call(box, "Edit", file_path=path, old_string="a", new_string="b")
        assert out.is_error and reason in out.text, (path, out.text)


async def test_edit_refuses_a_result_over_the_size_cap(root: Path, box: Toolbox) -> None:
    (root / "grow.txt").write_text("x\n")
    out = await call(box, "Edit", file_path="grow.txt", old_string="x", new_string="y" * MAX_WRITE_BYTES)
    assert out.is_error and "byte limit" in out.text
    assert (root / "grow.txt").read_text() == "x\n"


# --- the write-tool registry ---


def test_build_write_tools_leaves_bash_out_unless_enabled(root: Path) -> None:
    sandbox = Sandbox([root])
    off = build_write_tools(["Edit", "Bash", "Write", "Read"], sandbox, root, BashPolicy())
    assert list(off) == ["Edit", "Write"]
    policy = BashPolicy(enabled=True, allow=("pytest",))
    on = build_write_tools(WRITE_TOOLS_IMPLEMENTED, sandbox, root, policy)
    assert list(on) == ["Write", "Edit", "MultiEdit", "Bash"]
    assert [t.spec.input_schema["additionalProperties"] for t in on.values()] == [False] * 4
