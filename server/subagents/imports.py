"""Imports that take seconds of CPU (the model SDK, jsonschema), done by a warm-up off the event loop.

Code that needs such a module at once, in sync code on the loop, takes it with `import_now`: both hold the
package's lock for the whole import. Without it, a submodule imported on the loop (`jsonschema.validators`)
while the warm-up imports the package meets Python's import deadlock detection, which hands one of the two
a half-made module: `cannot import name ... from partially initialized module`, a failed run.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from types import ModuleType

import anyio
import anyio.from_thread
import anyio.lowlevel

# Names whose import has finished. Not `sys.modules`: a module is there from the moment its import
# starts, and touching it then (`from anthropic import ...`) would block the event loop on its lock.
_IMPORTED: set[str] = set()
_LOCKS: dict[str, threading.Lock] = {}  # per top-level package
_LOCKS_LOCK = threading.Lock()


def _package_lock(name: str) -> threading.Lock:
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(name.partition(".")[0], threading.Lock())


def import_now(name: str) -> ModuleType:
    """The module, imported here and now; if the warm-up is importing its package, once that is done."""
    if name in _IMPORTED:
        return sys.modules[name]
    with _package_lock(name):
        module = importlib.import_module(name)
    _IMPORTED.add(name)
    return module


async def import_off_loop(name: str) -> None:
    """Import `name` in a daemon thread and wait for it. The event loop keeps serving meanwhile, and a
    process that stops first exits at once instead of waiting seconds for an import nobody needs now
    (a worker thread of anyio's is joined at exit)."""
    if name in _IMPORTED:
        return
    done, failed = anyio.Event(), []
    token = anyio.lowlevel.current_token()

    def target() -> None:
        try:
            import_now(name)
        except BaseException as exc:  # handed to the waiting task, which raises it
            failed.append(exc)
        finally:
            with contextlib.suppress(RuntimeError):  # the event loop is gone: nobody waits any more
                anyio.from_thread.run_sync(done.set, token=token)

    threading.Thread(target=target, name=f"import {name}", daemon=True).start()
    await done.wait()
    if failed:
        raise failed[0]
