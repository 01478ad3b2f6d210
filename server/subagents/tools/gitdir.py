"""Repository metadata an agent must never plant: a directory git would take for a repository.

Git treats a directory as a repository (its "git dir") when it holds a `HEAD` file and `objects/` and
`refs/` directories (a bare repository), or a `HEAD` and a `commondir` file naming where those live.
Whoever later runs git there, our own diff or the user after `git apply`, gets that directory's (or
its common dir's) `config`, and a config can name programs to run (filters, hooks, fsmonitor,
pagers). So no write may complete such a directory, and no diff may carry one or a `.git` path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

GIT_DIR_MARKERS = ("HEAD", "objects", "refs")
# Characters macOS ignores in names (so ".g\u200cit" is ".git" there), as git's protectHFS lists them.
_HFS_IGNORABLE = re.compile("[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")
_NTFS_SHORT_NAME = re.compile(r"git~\d+")


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
    common = _is_file(directory / "commondir") or (new_child == "commondir" and not new_child_is_dir)
    return head and (common or (objects and refs))


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
    """Git's own test for a repository, without reading HEAD or following commondir (so it errs on the
    side of yes): HEAD, and objects/ and refs/ or a commondir file saying where they are."""
    return _would_be_git_dir(directory, "", False)


def is_git_name(name: str) -> bool:
    """True for `.git` and the names a filesystem may take for it: any case, trailing dots or spaces,
    an NTFS stream or short name (`.git::$INDEX_ALLOCATION`, `git~1`), macOS-ignored characters."""
    folded = _HFS_IGNORABLE.sub("", name).lower().split(":", 1)[0].rstrip(". ")
    return folded == ".git" or _NTFS_SHORT_NAME.fullmatch(folded) is not None


def _is_file(path: Path) -> bool:
    """A file or a symlink (git follows a symlinked HEAD), not a directory."""
    return os.path.lexists(path) and not os.path.isdir(path)


def _is_dir(path: Path) -> bool:
    return os.path.isdir(path)
