"""Runs across real processes: a server killed mid-run, and background runs over HTTP and stdio."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from subagents.providers.testing import FakeMessagesServer, error, text
from tests.answers import route_json
from tests.conftest import model_env
from tests.helpers import SUBAGENTS, child_env, http_server, run_cli

pytestmark = pytest.mark.anyio


def slow_unless_quick(req: object) -> object:
    quick = text(route_json(reason="quick answer"))
    return quick if "quick" in req.last_user_text else text(route_json(reason="slow"), latency=30)  # type: ignore[attr-defined]


async def test_killed_server_leaves_an_interrupted_run(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    store = tmp_path / "runs.db"
    fake_model.set_script(slow_unless_quick)
    env = child_env(model_env(fake_model) | {"SUBAGENTS_STORE": str(store)})
    params = StdioServerParameters(
        command=SUBAGENTS[0], args=[*SUBAGENTS[1:], "serve", "--root", str(project)], env=env
    )
    async with Client(params, mode="legacy") as client, anyio.create_task_group() as tg:
        tg.start_soon(client.call_tool, "router", {"task": "slow one"})
        with anyio.fail_after(20):
            while not fake_model.requests:
                await anyio.sleep(0.05)
        found = await anyio.run_process(["pgrep", "-f", f"subagents serve --root {project}"], check=False)
        pids = found.stdout.decode().split()
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)  # no chance to record anything
        tg.cancel_scope.cancel()
    assert pids
    before = json.loads(run_cli("runs", "list", "--json", "--store", str(store)).stdout)
    assert [r["status"] for r in before] == ["running"]  # nobody has looked since the crash

    with anyio.fail_after(120):  # stdin closes at once: the server starts, marks the run, and exits (slow under load)
        restarted = await anyio.run_process([*SUBAGENTS, "serve", "--root", str(project)], env=env, input=b"")
    assert "1 runs were left running" in restarted.stderr.decode()
    after = json.loads(run_cli("runs", "list", "--json", "--store", str(store)).stdout)
    assert [r["status"] for r in after] == ["interrupted"]


@contextlib.contextmanager
def served(transport: str, project: Path, env: dict[str, str]) -> Iterator[str | StdioServerParameters]:
    if transport == "http":
        with http_server("--root", str(project), env=env) as (url, _proc):
            yield url
    else:
        yield StdioServerParameters(
            command=SUBAGENTS[0], args=[*SUBAGENTS[1:], "serve", "--root", str(project)], env=child_env(env)
        )


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_background_runs(
    mode: str, transport: str, fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script(slow_unless_quick)
    env = model_env(fake_model) | {"SUBAGENTS_STORE": str(tmp_path / "runs.db")}
    with served(transport, project, env) as target:
        async with Client(target, mode=mode) as client:
            quick = (await client.call_tool("start_agent", {"agent": "router", "task": "quick"})).structured_content
            slow = (await client.call_tool("start_agent", {"agent": "router", "task": "slow"})).structured_content
            with anyio.fail_after(20):
                while (status := (await client.call_tool("get_run", {"run_id": quick["run_id"]})).structured_content)[  # type: ignore[index]
                    "status"
                ] == "running":
                    await anyio.sleep(0.1)
            cancelled = await client.call_tool("cancel_run", {"run_id": slow["run_id"]})  # type: ignore[index]
    assert json.loads(status["report"])["reason"] == "quick answer"
    assert cancelled.structured_content["status"] == "cancelled"  # type: ignore[index]
    with anyio.fail_after(5):
        while fake_model.disconnects < 1:
            await anyio.sleep(0.05)


def test_sigterm_records_the_running_run_as_cancelled_or_interrupted(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    """A polite stop (SIGTERM, Ctrl-C) must not leave a run `running` forever."""
    fake_model.set_script(slow_unless_quick)
    store = tmp_path / "runs.db"
    env = model_env(fake_model) | {"SUBAGENTS_STORE": str(store)}
    with http_server("--root", str(project), env=env) as (url, proc):

        async def start() -> None:
            async with Client(url) as client:
                await client.call_tool("start_agent", {"agent": "router", "task": "slow"})

        anyio.run(start)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    [run] = json.loads(run_cli("runs", "list", "--json", "--store", str(store)).stdout)
    assert run["status"] in ("cancelled", "interrupted")


def test_rate_limits_are_retried_and_the_run_is_listed(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    routed = text(route_json(reason="routed"))
    fake_model.set_script([error(429, retry_after_ms=1), error(429, retry_after_ms=1), routed])
    env = model_env(fake_model) | {"SUBAGENTS_STORE": str(tmp_path / "runs.db")}
    ran = run_cli("run", "router", "pick one", "--root", str(project), env=env)
    assert ran.returncode == 0 and "routed" in ran.stdout
    [run] = json.loads(run_cli("runs", "list", "--json", env=env).stdout)
    assert run["status"] == "completed" and len(fake_model.requests) == 3


async def test_two_servers_on_one_store_cancel_each_others_runs(
    store_location: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    """Replicas (or local servers) share the store: B stops a run that A executes."""
    fake_model.set_script(slow_unless_quick)
    env = model_env(fake_model) | {"SUBAGENTS_STORE": store_location}
    with (
        http_server("--root", str(project), env=env) as (url_a, _a),
        http_server("--root", str(project), env=env) as (url_b, _b),
    ):
        async with Client(url_a) as a, Client(url_b) as b:
            slow = (await a.call_tool("start_agent", {"agent": "router", "task": "slow"})).structured_content
            with anyio.fail_after(20):
                while not fake_model.requests:
                    await anyio.sleep(0.05)
            seen = (await b.call_tool("get_run", {"run_id": slow["run_id"]})).structured_content  # type: ignore[index]
            cancelled = (await b.call_tool("cancel_run", {"run_id": slow["run_id"]})).structured_content  # type: ignore[index]
            after = (await a.call_tool("get_run", {"run_id": slow["run_id"]})).structured_content  # type: ignore[index]
        with anyio.fail_after(5):
            while fake_model.disconnects < 1:  # A stopped its model call
                await anyio.sleep(0.05)
    assert seen["status"] == "running"  # type: ignore[index]
    assert cancelled["status"] == "cancelled" and after["status"] == "cancelled"  # type: ignore[index]
