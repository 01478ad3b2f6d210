"""Watching the agent folders (watchfiles, imported when watching starts): one wake-up per burst of changes.

Every layer folder that exists is watched recursively; watchfiles follows symlinked folders, as discovery
does. A layer folder that does not exist yet (a project without `.claude/agents`) is looked for again
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
from subagents.definitions.discovery import MAX_FOLDERS

log = logging.getLogger(__name__)

STEP_MS = 100  # quiet time that ends a burst
DEBOUNCE_MS = 800  # the longest a burst is collected before it is handled
CHECK_MS = 1000  # how often a folder that does not exist yet is looked for
MIN_PAUSE_S = 0.2  # after handling a burst, rest at least this long (and at least as long as it took)
MAX_FAILURES = 3  # watches in a row that fail to start (say, the system's inotify limit): then stop watching


def watched_folders(layers: Sequence[Layer]) -> tuple[Path, ...]:
    """The layer folders that exist now (a layer that is one file: its folder)."""
    found: list[Path] = []
    for layer in layers:
        path = layer.path.expanduser()
        folder = path if path.is_dir() else path.parent if path.is_file() else None
        if folder is not None and folder not in found:
            found.append(folder)
    return tuple(found)


def linked_folders(folders: Sequence[Path]) -> frozenset[str]:
    """The folders under `folders` reached through a symlink: a watch follows the links there when it
    begins, not a link made later, so a new one restarts it. Bounded as discovery is."""
    found: set[str] = set()
    walked = 0
    for top in folders:
        for root, subfolders, _files in os.walk(top, followlinks=True):
            walked += 1
            if walked > MAX_FOLDERS:
                return frozenset(found)
            found.update(p for name in subfolders if os.path.islink(p := os.path.join(root, name)))
    return frozenset(found)


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

    restarted, failures = True, 0
    while not stop.is_set():
        folders = watched_folders(layers())
        if not folders:
            on_watching()
            with anyio.move_on_after(CHECK_MS / 1000):
                await stop.wait()
            if watched_folders(layers()):
                await on_change()  # a folder appeared, perhaps with agents in it already
            continue
        links = await anyio.to_thread.run_sync(linked_folders, folders)
        try:
            async for changes in awatch(
                *folders,
                watch_filter=relevant,
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
                    moved = moved or await anyio.to_thread.run_sync(linked_folders, folders) != links
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
