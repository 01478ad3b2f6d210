"""A thread that swaps a directory for a symlink and back, as fast as it can: the check-then-open race."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _exchanger() -> Callable[..., int] | None:
    """renameat2(RENAME_EXCHANGE): swaps two names atomically, the sharpest form of the race."""
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2  # type: ignore[no-any-return]
    except AttributeError:
        return None


@contextmanager
def swapping(real_dir: Path, link: Path) -> Iterator[list[int]]:
    """While inside, `real_dir` and `link` (a symlink) keep trading names; yields [swaps so far]."""
    exchange, stop, swaps = _exchanger(), threading.Event(), [0]
    a, b = bytes(real_dir), bytes(link)

    def swap() -> None:
        while not stop.is_set():
            if exchange is not None:
                assert exchange(-100, a, -100, b, 2) == 0, ctypes.get_errno()  # AT_FDCWD, RENAME_EXCHANGE
            else:
                os.rename(a, a + b".real")
                os.rename(b, a)
                os.rename(a, b)
                os.rename(a + b".real", a)
            swaps[0] += 1

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    try:
        yield swaps
    finally:
        stop.set()
        thread.join(timeout=10)
    if exchange is not None and real_dir.is_symlink():  # leave the tree as it was found
        exchange(-100, a, -100, b, 2)
