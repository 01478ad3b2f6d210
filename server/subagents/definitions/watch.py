"""Watching the agent folders (watchfiles, imported when watching starts): one wake-up per burst of changes.

Every folder under a layer folder that exists is watched on its own (at most MAX_WATCHED), symlinked ones
followed as discovery follows them; a folder made or removed restarts the watch. A layer folder that does
not exist yet (a project without `.claude/agents`) is looked for again
about once a second, and the watch restarts when the set of folders changes. The work stays bounded
however many events arrive: watchfiles folds a burst into one set (`step` of quiet, at most `debounce`
long), the caller handles one set at a time, and after each it pauses at least as long as it worked.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from subagents.definitions.catalog import Layer

log = logging.getLogger(__name__)

STEP_MS = 100  # quiet time that ends a burst
DEBOUNCE_MS = 800  # the longest a burst is collected before it is handled
CHECK_MS = 1000  # how often a folder that does not exist yet is looked for
MIN_PAUSE_S = 0.2  # after handling a burst, rest at least this long (and at least as long as it took)
MAX_FAILURES = 3  # watches in a row that fail to start (say, the system's inotify limit): then stop watching
MAX_WATCHED = 1_000  # folders watched at most: an agents folder with more is not one (a planted link to /)


def watched_folders(layers: Sequence[Layer]) -> tuple[Path, ...]:
    """The layer folders that exist now (a layer that is one file: its folder)."""
    found: list[Path] = []
    for layer in layers:
        path = layer.path.expanduser()
        folder = path if path.is_dir() else path.parent if path.is_file() else None
        if folder is not None and folder not in found:
            found.append(folder)
    return tuple(found)


def watched_tree(folders: Sequence[Path]) -> tuple[tuple[str, ...], bool]:
    """Every folder under `folders`, symlinked ones followed as discovery follows them, each once, at most
    MAX_WATCHED; and whether that cut it short. Each is watched on its own, not recursively: the watcher's
    own recursion follows links without end, so a link to / planted in a repository's `.claude/agents`
    would walk and watch the whole filesystem (11 s and the user's inotify watches for a link to /usr)."""
    found: list[str] = []
    seen: set[str] = set()
    for top in folders:
        for root, subfolders, _files in os.walk(top, followlinks=True):
            real = os.path.realpath(root)
            if real in seen:  # a link loop, or a folder linked twice
                subfolders.clear()
                continue
            seen.add(real)
            found.append(root)
            if len(found) >= MAX_WATCHED:
                return tuple(found), True
    return tuple(found), False


def relevant(_change: Any, path: str) -> bool:
    """A markdown file, or something that is not a file (a folder, or a path that is gone): editors' swap
    and backup files do not wake the server."""
    return path.endswith(".md") or not os.path.isfile(path)


async def watch_agent_folders(
    layers: Callable[[], Sequence[Layer]],
    on_change: Callable[[], Awaitable[object]],
    *,
    stop: anyio.Event,
    on_watching: Callable[[], None] = lambda: None,
) -> None:
    """Call `on_change` after each burst of changes under the folders of `layers()`, until `stop` is set.
    `on_watching` hears when the first watch is in place. Each watch begins with one `on_change`, for what
    changed before it was in place (between the start-up load and the watch, or a restart)."""
    # Off the event loop: a client's first requests do not wait for it.
    awatch = (await anyio.to_thread.run_sync(importlib.import_module, "watchfiles")).awatch

    restarted, failures, warned = True, 0, False
    while not stop.is_set():
        folders = watched_folders(layers())
        if not folders:
            on_watching()
            with anyio.move_on_after(CHECK_MS / 1000):
                await stop.wait()
            if watched_folders(layers()):
                await on_change()  # a folder appeared, perhaps with agents in it already
            continue
        tree = await anyio.to_thread.run_sync(watched_tree, folders)
        if tree[1] and not warned:
            warned = True
            log.warning(
                "live reload watches only the first %d folders under %s; is a symlink in it pointing elsewhere?",
                MAX_WATCHED,
                ", ".join(map(str, folders)),
            )
        try:
            async for changes in awatch(
                *tree[0],
                watch_filter=relevant,
                recursive=False,
                step=STEP_MS,
                debounce=DEBOUNCE_MS,
                rust_timeout=CHECK_MS,
                yield_on_timeout=True,
                stop_event=stop,
            ):
                on_watching()  # the first yield comes once the watch is in place (a change, or the timeout)
                failures = 0
                moved = watched_folders(layers()) != folders
                if changes or moved or restarted:  # after a restart: what changed before this watch began
                    await _handle(on_change)
                    moved = (
                        moved or await anyio.to_thread.run_sync(watched_tree, folders) != tree
                    )  # folders came or went
                restarted = moved
                if moved:
                    break  # watch the new set of folders
        except (OSError, RuntimeError) as exc:  # a folder went away between looking and watching: look again
            failures += 1
            if failures >= MAX_FAILURES:
                log.warning(
                    "live reload stopped: the agent folders cannot be watched (%s); restart the server to pick "
                    "up changes to agent files",
                    exc,
                )
                return
            log.debug("restarting the agent folder watch: %s", exc)
            with anyio.move_on_after(CHECK_MS / 1000):
                await stop.wait()


async def _handle(on_change: Callable[[], Awaitable[object]]) -> None:
    started = time.monotonic()
    await on_change()
    await anyio.sleep(max(MIN_PAUSE_S, time.monotonic() - started))
