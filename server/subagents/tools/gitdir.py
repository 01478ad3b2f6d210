"""Repository metadata an agent must never plant: a directory git would take for a repository.

Git treats a directory as a repository (its "git dir") when it holds a `HEAD` file and `objects/` and
`refs/` directories: a bare repository. Whoever later runs git there, our own diff or the user after
`git apply`, gets that directory's `config`, and a config can name programs to run (filters, hooks,
fsmonitor, pagers). So no write may complete that triple, and no diff may carry one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

GIT_DIR_MARKERS = ("HEAD", "objects", "refs")


def planted_git_dir(target: Path, root: Path, *, creating_dir: bool = False) -> Path | None:
    """The directory that would look like a git repository once `target` (a file, or a directory when
    `creating_dir`) exists under `root`; None when no directory would."""
    try:
        rel = target.relative_to(root)
    except ValueError:
        return None
    parts = rel.parts
    for depth in range(len(parts)):
        directory = root.joinpath(*parts[:depth])
        child = parts[depth]
        is_last = depth == len(parts) - 1
        child_is_dir = not is_last or creating_dir
        if _would_be_git_dir(directory, child, child_is_dir):
            return directory
    return None


def _would_be_git_dir(directory: Path, new_child: str, new_child_is_dir: bool) -> bool:
    head = _is_file(directory / "HEAD") or (new_child == "HEAD" and not new_child_is_dir)
    objects = _is_dir(directory / "objects") or (new_child == "objects" and new_child_is_dir)
    refs = _is_dir(directory / "refs") or (new_child == "refs" and new_child_is_dir)
    return head and objects and refs


def git_dirs_in(paths: Iterable[str], top: Path) -> set[Path]:
    """Directories under `top` that look like git repositories and hold one of `paths` (relative to
    `top`) or are one of their ancestors: what a diff must leave out."""
    found: set[Path] = set()
    checked: set[Path] = set()
    for rel in paths:
        directory = (top / rel).parent
        while directory.is_relative_to(top) and directory not in checked:
            checked.add(directory)
            if is_git_dir(directory):
                found.add(directory)
            if directory == top:
                break
            directory = directory.parent
    return found


def is_git_dir(directory: Path) -> bool:
    """Git's own test for a bare repository, without reading HEAD: HEAD, objects/ and refs/."""
    return _is_file(directory / "HEAD") and _is_dir(directory / "objects") and _is_dir(directory / "refs")


def _is_file(path: Path) -> bool:
    """A file or a symlink (git follows a symlinked HEAD), not a directory."""
    return os.path.lexists(path) and not os.path.isdir(path)


def _is_dir(path: Path) -> bool:
    return os.path.isdir(path)
