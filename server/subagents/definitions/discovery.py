"""Where Claude Code 2.1 finds agent files: which `.claude/agents` folders, and which files in them.

Checked against Claude Code itself (tests/definitions/test_discovery.py):
- From a working directory, every `.claude/agents` between it and the repository root (the nearest
  folder with a `.git`) is scanned; the closest one wins. Outside a repository the walk goes up to the
  filesystem root. It never reaches the home folder, whose `.claude/agents` is the user layer.
- In a folder, every `*.md` file at any depth counts, hidden folders and files too; symlinked folders
  and files are followed, each folder is scanned once (so a link loop ends), and a file reached twice
  through links loads once.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from subagents.definitions.loader import Problem

MAX_FOLDERS = 10_000  # a guard against a folder that is not an agents folder (`--agents-dir /`)


def project_agent_dirs(start: Path, *, home: Path) -> list[Path]:
    """Every `.claude/agents` from `start` up to its repository root, farthest first so the closest wins."""
    folder = Path(os.path.abspath(start))
    home = Path(os.path.abspath(home))
    found: list[Path] = []
    for candidate in (folder, *folder.parents):
        if candidate == home:
            break
        found.append(candidate / ".claude" / "agents")
        if (candidate / ".git").exists():
            break
    return found[::-1]


@dataclass
class Scan:
    files: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def scan_agent_files(directory: Path) -> Scan:
    """The markdown files in a folder, recursively, in sorted order, as Claude Code finds them."""
    scan = Scan()
    if directory.is_file():
        scan.files.append(directory)  # `subagents agents validate one-agent.md`
        return scan
    if not directory.is_dir():
        return scan
    seen_folders: set[tuple[int, int]] = set()
    pending = [directory]
    found: list[tuple[Path, tuple[int, int]]] = []
    while pending:
        folder = pending.pop()
        if len(seen_folders) >= MAX_FOLDERS:
            scan.problems.append(
                Problem(directory, "warning", f"stopped after {MAX_FOLDERS} folders; is this an agents folder?")
            )
            break
        try:
            info = folder.stat()
        except OSError as exc:
            scan.problems.append(Problem(folder, "warning", f"cannot read this folder ({exc.strerror})"))
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen_folders:
            scan.problems.append(Problem(folder, "info", "a folder already scanned through another path (a link)"))
            continue
        seen_folders.add(key)
        pending += sorted(_entries(folder, found, scan.problems), reverse=True)
    return _unique_files(found, scan)


def _entries(folder: Path, found: list[tuple[Path, tuple[int, int]]], problems: list[Problem]) -> list[Path]:
    """Record the folder's markdown files in `found`; return its subfolders."""
    subfolders: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        problems.append(Problem(folder, "warning", f"cannot read this folder ({exc.strerror})"))
        return subfolders
    for entry in entries:
        path = Path(entry.path)
        try:
            info = entry.stat()  # follows a symlink
        except OSError:
            if entry.name.endswith(".md"):
                problems.append(Problem(path, "warning", "a broken symlink; nothing to load"))
            continue
        if stat.S_ISDIR(info.st_mode):
            subfolders.append(path)
        elif stat.S_ISREG(info.st_mode) and entry.name.endswith(".md"):
            found.append((path, (info.st_dev, info.st_ino)))
    return subfolders


def _unique_files(found: list[tuple[Path, tuple[int, int]]], scan: Scan) -> Scan:
    """Sorted by path as Claude Code sorts them; a file reached twice through links loads from its first path."""
    first_path: dict[tuple[int, int], Path] = {}
    for path, key in sorted(found, key=lambda item: str(item[0])):
        if key in first_path:
            scan.problems.append(Problem(path, "info", f"the same file as {first_path[key]} (a link); loaded once"))
            continue
        first_path[key] = path
        scan.files.append(path)
    return scan
