"""Every file tool under the check-then-open race, and the write tools against hard links: a parent
directory keeps trading places with a symlink to a directory outside, and nothing outside is read,
listed or written."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from subagents.errors import SandboxError
from subagents.tools.edit import Edit, Write
from subagents.tools.files import LS, FileTool, Glob, Grep, Read
from subagents.tools.multiedit import MultiEdit
from subagents.tools.sandbox import Sandbox
from tests.race import swapping

pytestmark = pytest.mark.anyio
TRIES = 300


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "docs").mkdir(parents=True)
    outside.mkdir()
    (root / "docs" / "notes.txt").write_text("harmless notes\n")
    (outside / "notes.txt").write_text("outside notes\n")
    (outside / "outside-only.txt").write_text("outside\n")
    (root / "swap").symlink_to(outside, target_is_directory=True)
    return root, outside


@pytest.fixture
def racing(tree: tuple[Path, Path]) -> Iterator[Sandbox]:
    root, _ = tree
    with swapping(root / "docs", root / "swap"):
        yield Sandbox([root])


async def test_reads_listings_and_searches_never_reach_outside(racing: Sandbox) -> None:
    texts = []
    for _ in range(TRIES):
        texts.append((await Read(racing).run({"file_path": "docs/notes.txt"})).text)
        texts.append((await Grep(racing).run({"pattern": "notes", "path": "docs", "output_mode": "content"})).text)
        texts.append((await LS(racing).run({"path": "docs"})).text)
        texts.append((await Glob(racing).run({"pattern": "**/*.txt"})).text)
    assert not [t for t in texts if "outside" in t.replace("outside the allowed roots", "")]
    assert any("harmless notes" in t for t in texts[::4]) and any("notes.txt" in t for t in texts[2::4])


async def test_writes_and_edits_never_land_outside(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    with swapping(root / "docs", root / "swap"):  # here, not a fixture: the tree is checked once the race stops
        racing = Sandbox([root])
        for i in range(TRIES):
            await Write(racing).run({"file_path": f"docs/new{i}.txt", "content": "new\n"})
            await Write(racing).run({"file_path": f"docs/sub{i}/deeper/x.txt", "content": "new\n"})
            await Edit(racing).run({"file_path": "docs/notes.txt", "old_string": "notes", "new_string": "notes"[::-1]})
            edits = [{"old_string": "o", "new_string": "0"}, {"old_string": "0", "new_string": "o"}]
            await MultiEdit(racing).run({"file_path": "docs/notes.txt", "edits": edits})
            await MultiEdit(racing).run(
                {"file_path": f"docs/multi{i}.txt", "edits": [{"old_string": "", "new_string": "x"}]}
            )
    assert sorted(os.listdir(outside)) == ["notes.txt", "outside-only.txt"]
    assert (outside / "notes.txt").read_text() == "outside notes\n"
    assert any(root.glob("docs/new*.txt")) and any(root.glob("docs/multi*.txt"))  # writes did happen, inside


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "config.txt").write_text("outside = 1\n")
    os.link(outside / "config.txt", root / "config.txt")
    return root, outside


async def test_write_edit_and_multiedit_refuse_a_hard_link_to_a_file_outside(linked: tuple[Path, Path]) -> None:
    root, outside = linked
    sandbox = Sandbox([root])
    wrote = await Write(sandbox).run({"file_path": "config.txt", "content": "pwned\n"})
    edited = await Edit(sandbox).run({"file_path": "config.txt", "old_string": "1", "new_string": "2"})
    edits = [{"old_string": "1", "new_string": "2"}]
    multi = await MultiEdit(sandbox).run({"file_path": "config.txt", "edits": edits})
    for out in (wrote, edited, multi):
        assert out.is_error and "is a hard link (the file has 2 names)" in out.text and "--allow-hardlinks" in out.text
    assert (outside / "config.txt").read_text() == "outside = 1\n"
    allowed = Sandbox([root], allow_hardlinks=True)
    assert "outside = 1" in (await Read(allowed).run({"file_path": "config.txt"})).text
    await Edit(allowed).run({"file_path": "config.txt", "old_string": "1", "new_string": "2"})
    assert (outside / "config.txt").read_text() == "outside = 2\n"  # the operator's choice


def test_a_root_replaced_after_start_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    sandbox = Sandbox([root])
    root.rename(tmp_path / "moved")
    root.mkdir()
    (root / "planted.txt").write_text("x\n")
    with pytest.raises(SandboxError, match=f"the root {root} was replaced since the server started"):
        sandbox.resolve("planted.txt")


def test_dotdot_after_a_link_goes_to_the_links_target_parent(tmp_path: Path) -> None:
    """`..` steps back along the real path, as the kernel does, never lexically."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "here.txt").write_text("x\n")
    (tmp_path / "link").symlink_to(tmp_path / "a" / "b")
    sandbox = Sandbox([tmp_path])
    assert sandbox.resolve("link/../here.txt") == tmp_path / "a" / "here.txt"
    assert sandbox.resolve("link/../here.txt") == Path(os.path.realpath(tmp_path / "link/../here.txt"))


async def test_no_descriptor_is_left_open(tree: tuple[Path, Path]) -> None:
    """Every walk, refusal and early stop closes what it opened."""
    root, _ = tree
    os.mkfifo(root / "fifo")
    (root / ".env").write_text("X=1\n")
    (root / "ln").symlink_to(root / "docs" / "notes.txt")
    sandbox = Sandbox([root])
    calls: list[tuple[type[FileTool], dict[str, Any]]] = [
        (Read, {"file_path": "docs/notes.txt"}),
        (Read, {"file_path": "swap/notes.txt"}),
        (Read, {"file_path": "fifo"}),
        (Read, {"file_path": ".env"}),
        (Read, {"file_path": "docs/missing.txt"}),
        (Grep, {"pattern": "notes", "head_limit": 1}),
        (Grep, {"pattern": "notes", "path": "ln"}),
        (Glob, {"pattern": "**/*"}),
        (LS, {"path": "."}),
        (Write, {"file_path": "docs/a/b/new.txt", "content": "x\n"}),
        (Edit, {"file_path": "docs/notes.txt", "old_string": "notes", "new_string": "Notes"}),
        (Edit, {"file_path": "docs/notes.txt", "old_string": "absent", "new_string": "x"}),
    ]
    await Read(sandbox).run({"file_path": "docs/notes.txt"})  # the worker thread and its loop exist now
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        for tool, args in calls:
            await tool(sandbox).run(args)
    assert len(os.listdir("/proc/self/fd")) == before
