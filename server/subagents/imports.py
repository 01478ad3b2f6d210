"""Imports that take seconds of CPU (the model SDK, jsonschema), done by a warm-up off the event loop."""

from __future__ import annotations

import contextlib
import importlib
import threading

import anyio
import anyio.from_thread
import anyio.lowlevel

# Names whose import has finished. Not `sys.modules`: a module is there from the moment its import
# starts, and touching it then (`from anthropic import ...`) would block the event loop on its lock.
_IMPORTED: set[str] = set()


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
            importlib.import_module(name)  # waits on the module's lock if another thread imports it now
            _IMPORTED.add(name)
        except BaseException as exc:  # handed to the waiting task, which raises it
            failed.append(exc)
        finally:
            with contextlib.suppress(RuntimeError):  # the event loop is gone: nobody waits any more
                anyio.from_thread.run_sync(done.set, token=token)

    threading.Thread(target=target, name=f"import {name}", daemon=True).start()
    await done.wait()
    if failed:
        raise failed[0]
