"""The warm-up's imports: off the event loop, and never a reason for a stopping process to wait."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from subagents.imports import import_now, import_off_loop

pytestmark = pytest.mark.anyio


def slow_module(where: Path, name: str, body: str) -> None:
    where.mkdir(exist_ok=True)
    (where / f"{name}.py").write_text(body, encoding="utf-8")


@asynccontextmanager
async def ticking() -> AsyncIterator[list[int]]:
    """While inside, a task counts its 10 ms sleeps: how often the event loop got to run it."""
    ticks = [0]

    async def tick() -> None:
        while True:
            await anyio.sleep(0.01)
            ticks[0] += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        yield ticks
        tg.cancel_scope.cancel()


async def test_the_event_loop_serves_while_the_import_runs_and_the_module_is_there_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_module(tmp_path / "mods", "slow_ok_mod", "import time\ntime.sleep(0.5)\nVALUE = 42\n")
    monkeypatch.syspath_prepend(tmp_path / "mods")

    async with ticking() as ticks:
        await import_off_loop("slow_ok_mod")
    assert sys.modules["slow_ok_mod"].VALUE == 42
    assert ticks[0] > 5  # the loop kept running while the thread imported


async def test_callers_at_once_all_wait_for_the_whole_import_and_the_loop_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_module(tmp_path / "mods", "slow_shared_mod", "import time\ntime.sleep(0.5)\nVALUE = 7\n")
    monkeypatch.syspath_prepend(tmp_path / "mods")
    seen: list[int] = []

    async def caller() -> None:
        await import_off_loop("slow_shared_mod")
        seen.append(sys.modules["slow_shared_mod"].VALUE)  # the module is whole, not half-imported

    async with ticking() as ticks, anyio.create_task_group() as callers:
        callers.start_soon(caller)
        await anyio.sleep(0.1)  # the first import is under way: its module is in sys.modules already
        callers.start_soon(caller)
        callers.start_soon(caller)
    assert seen == [7, 7, 7]
    assert ticks[0] > 5


async def test_a_submodule_wanted_on_the_loop_while_the_warm_up_imports_its_package_comes_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As jsonschema: the package imports its submodule, which imports the package. Two threads importing
    # the two at once meet Python's deadlock detection, and one gets a half-made module (a failed run).
    package = tmp_path / "mods" / "slow_pkg_xyz"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import time\ntime.sleep(0.4)\nfrom slow_pkg_xyz.sub import helper\n")
    (package / "sub.py").write_text("import slow_pkg_xyz\n\ndef helper():\n    return 'whole'\n")
    monkeypatch.syspath_prepend(tmp_path / "mods")
    async with anyio.create_task_group() as tg:
        tg.start_soon(import_off_loop, "slow_pkg_xyz")  # the warm-up
        await anyio.sleep(0.1)  # under way, holding the package's import lock
        assert import_now("slow_pkg_xyz.sub").helper() == "whole"  # a run's parse_output, meanwhile
    assert sys.modules["slow_pkg_xyz"].helper() == "whole"


async def test_an_import_that_fails_raises_in_the_waiting_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow_module(tmp_path / "mods", "broken_mod_xyz", "raise ImportError('no such thing here')\n")
    monkeypatch.syspath_prepend(tmp_path / "mods")
    with pytest.raises(ImportError, match="no such thing here"):
        await import_off_loop("broken_mod_xyz")


def test_a_process_that_stops_mid_import_exits_without_waiting_for_it(tmp_path: Path) -> None:
    mods = tmp_path / "mods"
    slow_module(mods, "endless_mod", "import time\ntime.sleep(600)\n")
    script = textwrap.dedent(
        f"""
        import sys, anyio
        sys.path.insert(0, {str(mods)!r})
        from subagents.imports import import_now, import_off_loop

        async def main():
            with anyio.move_on_after(0.3):
                await import_off_loop("endless_mod")
            print("stopped")

        anyio.run(main)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped" and done.stderr == ""
