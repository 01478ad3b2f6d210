"""The HTTP deployment's guards, against real servers on 127.0.0.1: bind check, bearer token,
Host/Origin allow-lists, body cap, malformed JSON-RPC, a run's slot freed on hang-up."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from subagents.errors import ConfigError
from subagents.mcp.http import HttpSecurity, build_http_app, check_bind, transport_settings, uvicorn_config
from subagents.mcp.server import build_server
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text
from tests.answers import review_json
from tests.conftest import make_app
from tests.helpers import free_port, run_cli

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
AGENT = "security-reviewer"
# A raw 2026-07-28 tools/call: the era's headers mirror the body's method and tool name.
MODERN_CALL_HEADERS = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": AGENT}


def short_report(_request: RecordedRequest) -> Reply:
    return text(review_json("No findings."))


@asynccontextmanager
async def serving(
    fake: FakeMessagesServer, project: Path, settings: dict[str, Any] | None = None, **security: Any
) -> AsyncIterator[str]:
    """An in-process server, configured as `subagents serve` configures it, on an OS-chosen loopback port
    (never a fixed one); yields the /mcp URL."""
    app = make_app(fake, project, **(settings or {}))
    http_security = HttpSecurity(**security)
    server = uvicorn.Server(uvicorn_config(build_http_app(build_server(app), http_security), http_security, 0))
    async with app, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        await until(lambda: server.started)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            server.should_exit = True


async def until(condition: Callable[[], bool]) -> None:
    """Poll: uvicorn and the fake model's thread offer no event to wait on."""
    with anyio.fail_after(10):
        while True:
            if condition():
                return
            await anyio.sleep(0.01)


async def post(url: str, body: Any = INIT, headers: dict[str, str] | None = None) -> httpx2.Response:
    content = body if isinstance(body, bytes) else None
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(
            url, json=None if content else body, content=content, headers=MCP_HEADERS | (headers or {})
        )


# --- bearer token ---


INVALID = 'Bearer realm="subagents", error="invalid_token"'
REFUSED = [  # what the client sent, and the challenge it gets back
    ({}, 'Bearer realm="subagents"'),  # RFC 6750: no error code when no credentials were sent
    ({"Authorization": "Bearer wrong-token-0123456789"}, INVALID),
    ({"Authorization": f"Basic {TOKEN}"}, INVALID),
    ({"Authorization": f"Bearer {TOKEN}x"}, INVALID),
    ({"Authorization": f"Bearer {TOKEN[:-1]}"}, INVALID),
]


async def test_a_request_without_the_token_gets_401(fake_model: FakeMessagesServer, project: Path) -> None:
    async with serving(fake_model, project, auth_token=TOKEN) as url:
        for headers, challenge in REFUSED:
            response = await post(url, headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["WWW-Authenticate"] == challenge
            assert response.json()["error"] == "invalid_token" and response.json()["error_description"]
    assert fake_model.requests == []


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_right_token_lets_an_mcp_client_run_an_agent(
    mode: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script(short_report)
    async with (
        serving(fake_model, project, auth_token=TOKEN) as url,
        httpx2.AsyncClient(headers=AUTH, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        tools = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool(AGENT, {"task": "Check src/app.py"})
    assert AGENT in tools
    assert result.is_error is False and result.structured_content
    assert result.structured_content["output"]["summary"]["reviewed"] == "No findings."


# --- DNS rebinding: Host and Origin ---


async def test_a_foreign_host_or_origin_is_refused_even_with_the_token(
    fake_model: FakeMessagesServer, project: Path
) -> None:
    async with serving(fake_model, project, auth_token=TOKEN) as url:
        good = await post(url, headers=AUTH)
        bad_host = await post(url, headers=AUTH | {"Host": "evil.example.com"})
        bad_origin = await post(url, headers=AUTH | {"Origin": "http://evil.example.com"})
        loopback_origin = await post(url, headers=AUTH | {"Origin": "http://localhost:6274"})
    assert good.status_code == 200 and loopback_origin.status_code == 200
    assert bad_host.status_code == 421 and bad_origin.status_code == 403


async def test_extra_origins_and_hosts_pass_and_nothing_else_does(
    fake_model: FakeMessagesServer, project: Path
) -> None:
    security = {"allowed_origins": ("https://app.example.com/",), "allowed_hosts": ("mcp.example.com",)}
    async with serving(fake_model, project, **security) as url:
        origin = await post(url, headers={"Origin": "https://app.example.com"})
        host = await post(url, headers={"Host": "mcp.example.com:8443"})
        other_scheme = await post(url, headers={"Origin": "http://app.example.com"})
        subdomain = await post(url, headers={"Host": "evil.mcp.example.com"})
    assert origin.status_code == 200 and host.status_code == 200
    assert other_scheme.status_code == 403 and subdomain.status_code == 421


def test_a_wildcard_bind_trusts_no_host_of_its_own_but_a_named_bind_trusts_its_name() -> None:
    wildcard = transport_settings(HttpSecurity(host="0.0.0.0", auth_token=TOKEN))
    named = transport_settings(HttpSecurity(host="mcp.internal", auth_token=TOKEN, allowed_hosts=("fd00::7",)))
    assert wildcard.enable_dns_rebinding_protection
    assert set(wildcard.allowed_hosts) == {p for h in ("127.0.0.1", "localhost", "[::1]") for p in (h, f"{h}:*")}
    assert {"mcp.internal", "mcp.internal:*", "[fd00::7]:*"} <= set(named.allowed_hosts)
    assert not any("mcp.internal" in o for o in named.allowed_origins)


# --- body cap and malformed input ---


async def test_a_body_over_the_cap_gets_413(fake_model: FakeMessagesServer, project: Path) -> None:
    big = INIT | {"params": {**INIT["params"], "padding": "x" * 5_000}}
    async with serving(fake_model, project, max_body_bytes=4_000) as url:
        too_big = await post(url, big)
        fine = await post(url)
    assert too_big.status_code == 413
    assert fine.status_code == 200


MALFORMED = [
    b"{not json",
    b"\xff\xfe",
    b"[" * 100_000,
    b'{"jsonrpc":"2.0","id":1,"method":7}',
    b'[{"jsonrpc":"2.0","id":1,"method":"tools/call"}, 3]',
    b'"tools/call"',
    b"",
    b"null",
]


async def test_malformed_json_rpc_gets_an_error_and_the_server_keeps_serving(
    fake_model: FakeMessagesServer, project: Path
) -> None:
    async with serving(fake_model, project) as url, httpx2.AsyncClient(headers=MCP_HEADERS) as http:
        for era in ("2025-11-25", "2026-07-28"):  # one server takes every bad body in turn
            for body in MALFORMED:
                bad = await http.post(url, content=body, headers={"MCP-Protocol-Version": era})
                assert 400 <= bad.status_code < 500, (era, body[:40], bad.status_code)
                assert bad.json()["error"]["code"] < 0
                assert (await http.post(url, json=INIT)).status_code == 200


# --- a run's slot ---


async def test_a_client_that_hangs_up_frees_its_slot(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script([text(review_json("abandoned"), latency=5), text(review_json("next"))])
    async with serving(fake_model, project, {"max_concurrent_runs": 1}) as url:
        async with anyio.create_task_group() as tg:
            tg.start_soon(post, url, modern_tool_call(AGENT), MODERN_CALL_HEADERS)
            await until(lambda: len(fake_model.requests) == 1)
            tg.cancel_scope.cancel()  # the client hangs up mid-run
        async with Client(url, mode="auto") as client:
            result = await client.call_tool(AGENT, {"task": "again"})
    assert result.structured_content and result.structured_content["output"]["summary"]["reviewed"] == "next"


def modern_tool_call(agent: str) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": agent, "arguments": {"task": "x"}, "_meta": meta},
    }


# --- refusing to start ---


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "mcp.example.com"])
def test_a_non_loopback_bind_without_a_token_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="--auth-token") as caught:
        check_bind(HttpSecurity(host=host))
    assert "SUBAGENTS_AUTH_TOKEN" in str(caught.value) and "127.0.0.1" in str(caught.value)


@pytest.mark.parametrize(
    ("security", "problem"),
    [
        (HttpSecurity(host="0.0.0.0", auth_token="short-token"), "at least 16"),
        (HttpSecurity(auth_token="a token with spaces in it"), "only letters, digits"),
        (HttpSecurity(allowed_origins=("app.example.com",)), "scheme://host"),
        (HttpSecurity(read_timeout_s=0), "at least 1"),
        (HttpSecurity(trusted_proxies=("*",)), "not an IP address or network"),
        (HttpSecurity(trusted_proxies=("proxy.internal",)), "--trusted-proxy 127.0.0.1"),
    ],
)
def test_a_weak_token_or_bad_setting_is_refused(security: HttpSecurity, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        check_bind(security)


@pytest.mark.parametrize(
    "security",
    [
        HttpSecurity(),
        HttpSecurity(host="localhost"),
        HttpSecurity(host="::1"),
        HttpSecurity(auth_token="  "),
        HttpSecurity(host="0.0.0.0", auth_token=TOKEN),
        HttpSecurity(host="10.0.0.5", auth_token=f" {TOKEN}\n"),
    ],
)
def test_loopback_or_a_strong_token_is_accepted(security: HttpSecurity) -> None:
    check_bind(security)


def test_the_cli_refuses_a_public_bind_without_a_token_before_binding(project: Path) -> None:
    started = time.monotonic()
    args = ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port())]
    result = run_cli(*args, "--root", str(project), timeout=30)
    assert result.returncode == 2
    assert "--auth-token" in result.stderr and "SUBAGENTS_AUTH_TOKEN" in result.stderr
    assert "serving Streamable HTTP" not in result.stderr  # refused before the socket was opened
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_read_deadline_never_cuts_a_run_that_is_answering(
    mode: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    """The deadline covers what the client owes (a request head or body), not the server's answer."""
    fake_model.set_script([text(review_json("long"), latency=3)])
    async with serving(fake_model, project, read_timeout_s=1) as url, Client(url, mode=mode) as client:
        result = await client.call_tool(AGENT, {"task": "Check src/app.py"})
    assert result.structured_content and result.structured_content["output"]["summary"]["reviewed"] == "long"
