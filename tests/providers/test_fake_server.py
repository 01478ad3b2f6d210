"""The fake Messages API, driven by the real anthropic SDK over real HTTP."""

from __future__ import annotations

import http.client
import json
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import anyio
import pytest
from anthropic import AsyncAnthropic

from subagents.providers.testing import (
    FakeMessagesServer,
    RecordedRequest,
    Reply,
    demo_responder,
    error,
    text,
    tool_use,
    tool_uses,
)

pytestmark = pytest.mark.anyio

MODEL = "claude-test-1"
KEY = "test-key"
HELLO: Any = [{"role": "user", "content": "Hello"}]
READ_TOOL: Any = {"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def server() -> AsyncIterator[FakeMessagesServer]:
    async with FakeMessagesServer() as fake:
        yield fake


def client_for(server: FakeMessagesServer, *, max_retries: int = 0, api_key: str = KEY) -> AsyncAnthropic:
    return AsyncAnthropic(api_key=api_key, base_url=server.url, max_retries=max_retries, timeout=10.0)


async def test_text_reply_is_a_full_message(server: FakeMessagesServer) -> None:
    server.set_script([text("Hi there.")])
    async with client_for(server) as client:
        msg = await client.messages.create(model=MODEL, max_tokens=100, system="Be brief.", messages=HELLO)
    assert [(b.type, getattr(b, "text", None)) for b in msg.content] == [("text", "Hi there.")]
    assert (msg.id, msg.model, msg.stop_reason, msg.stop_sequence) == ("msg_fake_1", MODEL, "end_turn", None)
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert msg._request_id == "req_fake_1"
    [request] = server.requests
    assert (request.method, request.path, request.model) == ("POST", "/v1/messages", MODEL)
    assert request.system_text == "Be brief." and request.last_user_text == "Hello" and not request.stream
    assert request.headers["authorization"] == f"Bearer {KEY}"


async def test_tool_use_round_trip_records_the_tool_result(server: FakeMessagesServer) -> None:
    server.set_script([tool_use("Read", {"file_path": "a.py"}, preamble="Looking."), text("done")])
    async with client_for(server) as client:
        first = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, tools=[READ_TOOL])
        assert first.stop_reason == "tool_use"
        preamble, call = first.content
        assert preamble.type == "text" and preamble.text == "Looking."
        assert call.type == "tool_use" and (call.name, call.input) == ("Read", {"file_path": "a.py"})
        assert call.id.startswith("toolu_")
        result = {
            "type": "tool_result",
            "tool_use_id": call.id,
            "content": [{"type": "text", "text": "x = 1"}],
        }
        messages: list[Any] = [
            *HELLO,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [result]},
        ]
        second = await client.messages.create(model=MODEL, max_tokens=100, messages=messages, tools=[READ_TOOL])
    assert second.content[0].type == "text" and second.content[0].text == "done"
    request = server.requests[1]
    assert request.tool_results == [{"tool_use_id": call.id, "content": "x = 1", "is_error": False}]
    assert request.last_user_text == "x = 1" and request.tool_names == ["Read"]


async def test_several_tool_calls_get_distinct_ids(server: FakeMessagesServer) -> None:
    server.set_script([tool_uses([("Read", {"file_path": "a"}), ("Read", {"file_path": "b"})])])
    async with client_for(server) as client:
        msg = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    ids = [b.id for b in msg.content if b.type == "tool_use"]
    assert len(set(ids)) == 2


async def test_streamed_text_reassembles(server: FakeMessagesServer) -> None:
    words = "A longer answer, so that it arrives in several text deltas."
    server.set_script([text(words), text(words)])
    async with client_for(server) as client:
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
            pieces = [piece async for piece in stream.text_stream]
            final = await stream.get_final_message()
        raw = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True)
        kinds = [event.type async for event in raw]
    assert len(pieces) > 1 and "".join(pieces) == words
    assert final.content[0].type == "text" and final.content[0].text == words
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 1
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(kinds)
    assert server.requests[0].stream


async def test_streamed_tool_use_reassembles(server: FakeMessagesServer) -> None:
    args = {"file_path": "src/some/long/path/module.py", "limit": 20}
    server.set_script([tool_use("Read", args, id="toolu_given", preamble="Reading.")])
    async with (
        client_for(server) as client,
        client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO, tools=[READ_TOOL]) as stream,
    ):
        deltas = [
            e.delta.partial_json
            async for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        final = await stream.get_final_message()
    assert len(deltas) > 1 and json.loads("".join(deltas)) == args
    preamble, call = final.content
    assert preamble.type == "text" and preamble.text == "Reading."
    assert call.type == "tool_use" and (call.id, call.name, call.input) == ("toolu_given", "Read", args)
    assert final.stop_reason == "tool_use"


async def test_rate_limits_are_retried_after_retry_after_ms(server: FakeMessagesServer) -> None:
    server.set_script([error(429, retry_after_ms=1), error(429, retry_after_ms=1), text("ok")])
    started = time.monotonic()
    async with client_for(server, max_retries=2) as client:
        msg = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    elapsed = time.monotonic() - started
    assert msg.content[0].type == "text" and msg.content[0].text == "ok"
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1", "2"]
    assert elapsed < 0.6  # without the header the SDK's own backoff waits over a second


async def test_persistent_overload_raises_overloaded_error(server: FakeMessagesServer) -> None:
    server.set_script(lambda request: error(529, retry_after_ms=1))
    async with client_for(server, max_retries=1) as client:
        with pytest.raises(anthropic.OverloadedError) as caught:
            await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert caught.value.status_code == 529 and caught.value.type == "overloaded_error"
    assert len(server.requests) == 2


async def test_api_key_is_checked() -> None:
    async with FakeMessagesServer([text("welcome")], api_key="right-key") as server:
        async with client_for(server, api_key="wrong-key") as client:
            with pytest.raises(anthropic.AuthenticationError) as caught:
                await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
        assert caught.value.type == "authentication_error"
        async with client_for(server, api_key="right-key") as client:
            msg = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert msg.content[0].type == "text" and msg.content[0].text == "welcome"


async def test_exhausted_script_fails_loudly_without_retries(server: FakeMessagesServer) -> None:
    server.set_script([text("one")])
    async with client_for(server, max_retries=2) as client:
        await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
        with pytest.raises(anthropic.InternalServerError) as caught:
            await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert "script exhausted after 1 replies (request 2 unexpected)" in str(caught.value)
    assert len(server.requests) == 2  # x-should-retry: false stopped the SDK retrying


async def test_a_failing_script_function_says_why(server: FakeMessagesServer) -> None:
    def broken(request: RecordedRequest) -> Reply:
        raise ValueError("no answer for " + request.last_user_text)

    server.set_script(broken)
    async with client_for(server, max_retries=2) as client:
        with pytest.raises(anthropic.InternalServerError, match="ValueError: no answer for Hello"):
            await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert len(server.requests) == 1


async def test_cancelled_call_is_seen_as_a_disconnect(server: FakeMessagesServer) -> None:
    server.set_script([text("late", latency=5), text("prompt", latency=0.05)])
    async with client_for(server) as client:
        with anyio.move_on_after(0.2) as scope:
            await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
        assert scope.cancelled_caught
        for _ in range(100):  # the server counts on its own thread: poll for up to a second
            if server.disconnects:
                break
            await anyio.sleep(0.01)
        assert server.disconnects == 1
        msg = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert msg.content[0].type == "text" and msg.content[0].text == "prompt"
    assert server.disconnects == 1  # a slow reply the client waited for is no disconnect


async def test_prompt_caching_is_simulated(server: FakeMessagesServer) -> None:
    server.set_script(lambda request: text("ok"))
    system: Any = [
        {
            "type": "text",
            "text": "You are a long system prompt. " * 20,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    async with client_for(server) as client:
        first = await client.messages.create(model=MODEL, max_tokens=100, system=system, messages=HELLO)
        second = await client.messages.create(model=MODEL, max_tokens=100, system=system, messages=HELLO)
        plain = await client.messages.create(model=MODEL, max_tokens=100, system="x", messages=HELLO)
    assert first.usage.cache_creation_input_tokens and not first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens and not second.usage.cache_creation_input_tokens
    assert not plain.usage.cache_read_input_tokens and not plain.usage.cache_creation_input_tokens


def get_json(url: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_other_paths_answer_json_and_sync_with_works() -> None:
    with FakeMessagesServer([]) as server:
        assert get_json(server.url + "/")[0] == 404
        status, body = get_json(server.url + "/v1/models")
        assert status == 404 and body["error"]["type"] == "not_found_error"
        status, body = get_json(server.url + "/v1/messages/count_tokens", {"model": MODEL, "messages": HELLO})
        assert status == 200 and body["input_tokens"] > 0
        assert [r.path for r in server.requests] == ["/", "/v1/models", "/v1/messages/count_tokens"]


def test_a_request_cut_off_by_a_dying_client_is_not_a_request() -> None:
    """A killed process can leave its last request half sent: nothing was asked, so nothing is recorded or
    scripted (tests that count the model's requests per task would otherwise see one without a task)."""
    with FakeMessagesServer([text("one")]) as server:
        address = urllib.parse.urlsplit(server.url)
        body = json.dumps({"model": MODEL, "max_tokens": 10, "messages": HELLO}).encode()
        head = f"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-length: {len(body)}\r\n\r\n"
        for sent in (b"", body[:10]):
            with socket.create_connection((address.hostname or "", address.port or 0), timeout=5) as sock:
                sock.sendall(head.encode() + sent)
            deadline = time.monotonic() + 5
            while server.disconnects < (1 if not sent else 2) and time.monotonic() < deadline:
                time.sleep(0.01)
        assert server.disconnects == 2
        assert server.requests == []
        status, reply = get_json(server.url + "/v1/messages", {"model": MODEL, "max_tokens": 10, "messages": HELLO})
        assert status == 200 and reply["content"][0]["text"] == "one"  # the script was not spent on them


def test_connections_are_kept_alive() -> None:
    with FakeMessagesServer([text("one"), text("two")]) as server:
        address = urllib.parse.urlsplit(server.url)
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=5)
        body = json.dumps({"model": MODEL, "max_tokens": 10, "messages": HELLO})
        replies, sockets = [], []
        for _ in range(2):
            connection.request("POST", "/v1/messages", body, {"content-type": "application/json"})
            replies.append(json.loads(connection.getresponse().read())["content"][0]["text"])
            sockets.append(connection.sock)
        connection.close()
    assert replies == ["one", "two"]
    assert sockets[0] is not None and sockets[0] is sockets[1]


async def test_demo_responder_reads_the_named_file_then_reports(server: FakeMessagesServer) -> None:
    server.set_script(demo_responder)
    task: Any = [{"role": "user", "content": "Review ./src/app.py (see https://example.com/x.html) please."}]
    async with client_for(server) as client:
        first = await client.messages.create(model=MODEL, max_tokens=100, messages=task, tools=[READ_TOOL])
        call = first.content[0]
        assert call.type == "tool_use" and (call.name, call.input) == ("Read", {"file_path": "./src/app.py"})
        result = {"type": "tool_result", "tool_use_id": call.id, "content": "\n\nimport sqlite3\nrest"}
        messages: list[Any] = [
            *task,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [result]},
        ]
        second = await client.messages.create(model=MODEL, max_tokens=100, messages=messages, tools=[READ_TOOL])
    report = second.content[0]
    assert second.stop_reason == "end_turn" and report.type == "text"
    assert report.text.startswith("## Report (offline demo model)\n")
    assert "`./src/app.py`: import sqlite3" in report.text and "ANTHROPIC_API_KEY" in report.text


def test_demo_responder_without_a_read_tool_reports_at_once() -> None:
    request = RecordedRequest("POST", "/v1/messages", {}, {"messages": [{"role": "user", "content": "see a/b.py"}]})
    reply = demo_responder(request)
    assert reply.stop_reason == "end_turn" and "No files were read" in reply.content[0]["text"]
    assert demo_responder(request) == reply  # deterministic


async def test_module_entry_point_prints_its_url_and_serves() -> None:
    command = [sys.executable, "-m", "subagents.providers.testing", "--api-key", KEY]
    process = await anyio.open_process(command, stderr=None)  # its log lands in pytest's captured stderr
    try:
        assert process.stdout is not None
        line = b""
        with anyio.fail_after(10):
            while not line.endswith(b"\n"):
                line += await process.stdout.receive()
        match = re.fullmatch(r"FAKE_MESSAGES_API_URL=(http://127\.0\.0\.1:\d+)\n", line.decode())
        assert match, line
        async with AsyncAnthropic(api_key=KEY, base_url=match[1], max_retries=0) as client:
            msg = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
        assert msg.content[0].type == "text" and "offline demo model" in msg.content[0].text
        process.terminate()
        with anyio.fail_after(5):
            assert await process.wait() == 0
        rest = b"".join([chunk async for chunk in process.stdout])
        assert rest == b""  # exactly one line on stdout
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()
