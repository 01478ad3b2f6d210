"""The per-caller run cap, attacked through real `subagents serve` processes over HTTP and stdio.

The cap is keyed by who the caller proved to be (the token's principal, else the local user), never by
a header the client writes; background runs hold their slot until they end; polling holds none.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text
from tests.answers import review_json
from tests.conftest import model_env
from tests.helpers import SUBAGENTS, child_env, http_server

pytestmark = pytest.mark.anyio

AGENT = "security-reviewer"
TOKEN = "s3cret-token-0123456789"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def refusal(principal: str, in_flight: int, cap: int) -> str:
    return (
        f"Caller {principal!r} already has {in_flight} of its {cap} concurrent agent runs going (the server's "
        "--max-concurrent-runs), so this run cannot start: wait for one to finish, or poll your background "
        "runs with get_run until they end, then try again."
    )


class HeldReplies:
    """A fake-model script that holds every reply until `release()`, so runs stay in flight exactly as long as
    a test needs (a fixed latency would race a slow machine). A task containing "quick" is answered at once."""

    def __init__(self) -> None:
        self._open = threading.Event()

    def __call__(self, request: RecordedRequest) -> Reply:
        if "quick" not in request.last_user_text:
            self._open.wait(60)
        return text(review_json(f"report on: {request.last_user_text[:40]}"))

    def release(self) -> None:
        self._open.set()


@asynccontextmanager
async def client_of(url: str, mode: str, headers: dict[str, str]) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


async def wait_for(condition: Any, limit_s: float = 20) -> None:
    with anyio.fail_after(limit_s):
        while not condition():
            await anyio.sleep(0.02)


def error_text(result: CallToolResult) -> str:
    assert result.is_error and result.structured_content, result
    return str(result.structured_content["error"])


async def until_finished(client: Client, run_id: str) -> dict[str, Any]:
    with anyio.fail_after(30):
        while True:
            status = (await client.call_tool("get_run", {"run_id": run_id})).structured_content
            assert status is not None
            if status["status"] != "running":
                return status
            await anyio.sleep(0.05)


# --- X-Forwarded-For is not an identity ---


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_rotating_x_forwarded_for_does_not_escape_the_cap(
    mode: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    held = HeldReplies()
    fake_model.set_script(held)
    results: dict[int, CallToolResult] = {}

    async def review(n: int) -> None:  # each call claims to come from another client
        async with client_of(url, mode, {"X-Forwarded-For": f"203.0.113.{n}"}) as client:
            results[n] = await client.call_tool(AGENT, {"task": f"review {n}"})

    args = ("--root", str(project), "--max-concurrent-runs", "2")
    with http_server(*args, env=model_env(fake_model)) as (url, _proc):
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(review, 1)
                tg.start_soon(review, 2)
                await wait_for(lambda: len(fake_model.requests) == 2)  # both runs wait on the model
                with anyio.fail_after(20):  # unrefused, it would wait on the held model too
                    await review(3)
                held.release()
        finally:
            held.release()
    assert error_text(results[3]) == refusal("local", 2, 2)
    assert [results[n].is_error for n in (1, 2)] == [False, False]
    assert len(fake_model.requests) == 2  # the refused call never reached the model


# --- background runs hold their slot ---


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_thirty_background_runs_against_a_cap_of_four_start_exactly_four(
    mode: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    held = HeldReplies()
    fake_model.set_script(held)
    env = model_env(fake_model) | {"SUBAGENTS_AUTH_TOKEN": TOKEN}
    with http_server("--root", str(project), "--max-concurrent-runs", "4", env=env) as (url, _proc):
        try:
            async with client_of(url, mode, {"Authorization": f"Bearer {TOKEN}"}) as client:
                results = [
                    await client.call_tool("start_agent", {"agent": AGENT, "task": f"review part {n}"})
                    for n in range(30)
                ]
                started = [r.structured_content["run_id"] for r in results if r.structured_content and not r.is_error]
                held.release()  # the four runs end; their slots are free again
                finished = [await until_finished(client, run_id) for run_id in started]
                after = await client.call_tool("start_agent", {"agent": AGENT, "task": "one more"})
                assert after.structured_content
                last = await until_finished(client, after.structured_content["run_id"])
        finally:
            held.release()
    assert len(started) == 4
    assert [error_text(r) for r in results[4:]] == [refusal("default", 4, 4)] * 26  # the token's principal
    assert [s["status"] for s in finished] == ["completed"] * 4
    assert last["status"] == "completed" and "one more" in last["report"]
    assert len(fake_model.requests) == 5


async def test_polling_reading_and_cancelling_take_no_slot(fake_model: FakeMessagesServer, project: Path) -> None:
    held = HeldReplies()
    fake_model.set_script(held)
    holder: list[CallToolResult] = []
    with http_server("--root", str(project), "--max-concurrent-runs", "1", env=model_env(fake_model)) as (url, _):
        try:
            async with Client(url) as client:
                quick = await client.call_tool(AGENT, {"task": "quick look"})
                assert quick.structured_content
                run_id = quick.structured_content["run_id"]

                async def hold_the_slot() -> None:
                    holder.append(await client.call_tool(AGENT, {"task": "slow review"}))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(hold_the_slot)
                    await wait_for(lambda: len(fake_model.requests) == 2)
                    polls: list[Any] = []

                    async def poll() -> None:
                        polls.append(await client.call_tool("get_run", {"run_id": run_id}))

                    async with anyio.create_task_group() as pollers:  # many at once, as a client polls
                        for _ in range(5):
                            pollers.start_soon(poll)
                    cancelled = await client.call_tool("cancel_run", {"run_id": run_id})
                    recent = await client.read_resource("subagents://runs")
                    refused = await client.call_tool("start_agent", {"agent": AGENT, "task": "another"})
                    held.release()
        finally:
            held.release()
    assert [p.structured_content["status"] for p in polls] == ["completed"] * 5
    assert cancelled.structured_content and cancelled.structured_content["status"] == "completed"
    assert run_id in recent.contents[0].text  # type: ignore[union-attr]
    assert error_text(refused) == refusal("local", 1, 1)  # the slot is the held run's, not the polls'
    assert holder[0].is_error is False


# --- stdio: the local user, same cap ---


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_cap_holds_over_stdio(mode: str, fake_model: FakeMessagesServer, project: Path) -> None:
    held = HeldReplies()
    fake_model.set_script(held)
    params = StdioServerParameters(
        command=SUBAGENTS[0],
        args=[*SUBAGENTS[1:], "serve", "--root", str(project), "--max-concurrent-runs", "1"],
        env=child_env(model_env(fake_model)),
        cwd=str(project),
    )
    try:
        async with Client(params, mode=mode) as client:
            background = await client.call_tool("start_agent", {"agent": AGENT, "task": "slow review"})
            assert background.structured_content
            await wait_for(lambda: len(fake_model.requests) == 1)
            with anyio.fail_after(20):
                refused = await client.call_tool(AGENT, {"task": "a second review"})
            held.release()
            finished = await until_finished(client, background.structured_content["run_id"])
            again = await client.call_tool(AGENT, {"task": "quick second look"})
    finally:
        held.release()
    assert error_text(refused) == refusal("local", 1, 1)
    assert finished["status"] == "completed"
    assert again.is_error is False


# --- a trusted proxy's X-Forwarded-For ---


@pytest.mark.parametrize(
    ("proxies", "forwarded_status"),
    [
        ((), 200),  # nobody is trusted: the client is the TCP peer, 127.0.0.1
        (("--trusted-proxy", "10.9.9.9"), 200),  # another proxy is trusted, not this peer
        (("--trusted-proxy", "127.0.0.1"), 403),  # this peer is: the forwarded client is remote
    ],
)
async def test_x_forwarded_for_is_honoured_only_from_a_named_trusted_proxy(
    proxies: tuple[str, ...], forwarded_status: int, project: Path
) -> None:
    with http_server("--root", str(project), *proxies) as (url, _proc):
        async with httpx2.AsyncClient(headers=MCP_HEADERS, timeout=30) as http:
            forwarded = await http.post(url, json=INIT, headers={"X-Forwarded-For": "203.0.113.7"})
            direct = await http.post(url, json=INIT)
    assert direct.status_code == 200
    assert forwarded.status_code == forwarded_status
    if forwarded_status == 403:  # no token, so only this machine may call: says why and what to do
        why = forwarded.json()["error_description"]
        assert "203.0.113.7" in why and "--auth-token" in why
