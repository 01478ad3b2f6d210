"""The HTTP deployment's guards, against real servers on 127.0.0.1: bind check, bearer token,
Host/Origin allow-lists, body cap, per-client run cap, malformed JSON-RPC."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from subagents.errors import ConfigError
from subagents.http_app import HttpSecurity, build_http_app, check_bind, transport_settings
from subagents.mcp_server import build_server
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text
from tests.conftest import make_app
from tests.helpers import free_port, run_cli

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
AGENT = "security-reviewer"


def short_report(_request: RecordedRequest) -> Reply:
    return text("No findings.")


@asynccontextmanager
async def serving(fake: FakeMessagesServer, project: Path, **security: Any) -> AsyncIterator[str]:
    """An in-process server on an OS-chosen loopback port (never a fixed one); yields the /mcp URL."""
    app = make_app(fake, project)
    asgi = build_http_app(build_server(app), HttpSecurity(**security))
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=0, log_level="warning"))
    async with app, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            server.should_exit = True


async def post(url: str, body: Any = INIT, headers: dict[str, str] | None = None) -> httpx2.Response:
    content = body if isinstance(body, bytes) else None
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(url, json=None if content else body, content=content,
                               headers=MCP_HEADERS | (headers or {}))


# --- bearer token ---


@pytest.mark.parametrize(("headers", "challenge"), [
    ({}, 'Bearer realm="subagents"'),
    ({"Authorization": "Bearer wrong-token-0123456789"}, 'Bearer realm="subagents", error="invalid_token"'),
    ({"Authorization": f"Basic {TOKEN}"}, 'Bearer realm="subagents", error="invalid_token"'),
    ({"Authorization": f"Bearer {TOKEN}x"}, 'Bearer realm="subagents", error="invalid_token"'),
], ids=["missing", "wrong", "wrong-scheme", "longer"])
async def test_a_request_without_the_token_gets_401(
    headers: dict[str, str], challenge: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    async with serving(fake_model, project, auth_token=TOKEN) as url:
        response = await post(url, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.json()["error"] == "invalid_token" and response.json()["error_description"]
    assert fake_model.requests == []


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_right_token_lets_an_mcp_client_run_an_agent(
    mode: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script(short_report)
    async with serving(fake_model, project, auth_token=TOKEN) as url:
        async with httpx2.AsyncClient(headers=AUTH, timeout=30) as http:
            async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
                tools = [t.name for t in (await client.list_tools()).tools]
                result = await client.call_tool(AGENT, {"task": "Check src/app.py"})
    assert AGENT in tools
    assert result.is_error is False and result.structured_content
    assert result.structured_content["report"] == "No findings."


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
    assert all(h.split(":")[0] in ("127.0.0.1", "localhost", "[") for h in wildcard.allowed_hosts)
    assert {"mcp.internal", "mcp.internal:*", "[fd00::7]:*"} <= set(named.allowed_hosts)
    assert not any("mcp.internal" in o for o in named.allowed_origins)


# --- body cap and malformed input ---


async def test_a_body_over_the_cap_gets_413(fake_model: FakeMessagesServer, project: Path) -> None:
    big = INIT | {"params": INIT["params"] | {"padding": "x" * 5_000}}
    async with serving(fake_model, project, max_body_bytes=4_000) as url:
        too_big = await post(url, big)
        fine = await post(url)
    assert too_big.status_code == 413
    assert fine.status_code == 200


@pytest.mark.parametrize("body", [
    b"{not json", b"\xff\xfe", b"[" * 100_000, b'{"jsonrpc":"2.0","id":1,"method":7}',
    b'[{"jsonrpc":"2.0","id":1,"method":"tools/call"}, 3]', b'"tools/call"', b"",
], ids=["syntax", "bad-utf8", "deep", "method-not-string", "batch", "scalar", "empty"])
@pytest.mark.parametrize("era", ["2025-11-25", "2026-07-28"])
async def test_malformed_json_rpc_gets_an_error_and_the_server_keeps_serving(
    body: bytes, era: str, fake_model: FakeMessagesServer, project: Path
) -> None:
    async with serving(fake_model, project) as url:
        bad = await post(url, body, headers={"MCP-Protocol-Version": era})
        good = await post(url)
    assert 400 <= bad.status_code < 500
    assert bad.json()["error"]["code"] < 0
    assert good.status_code == 200


# --- the per-client concurrent-run cap ---


async def test_the_run_cap_answers_429_and_frees_the_slot_when_a_run_ends(
    fake_model: FakeMessagesServer, project: Path
) -> None:
    fake_model.set_script([text("first", latency=2), text("second", latency=2), text("fourth")])
    reports: list[str] = []

    async def run(url: str) -> None:
        async with Client(url, mode="legacy") as client:
            result = await client.call_tool(AGENT, {"task": "Check src/app.py"})
        assert result.structured_content
        reports.append(result.structured_content["report"])

    async with serving(fake_model, project, max_concurrent_runs_per_client=2) as url:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, url)
            tg.start_soon(run, url)
            with anyio.fail_after(10):
                while len(fake_model.requests) < 2:  # both runs are now waiting on the slow model
                    await anyio.sleep(0.02)
            rejected = await post(url, modern_tool_call(AGENT), headers={"MCP-Protocol-Version": "2026-07-28"})
            async with Client(url, mode="auto") as client:
                with pytest.raises(MCPError, match=r"Too many concurrent runs for this client \(cap 2\)"):
                    await client.call_tool(AGENT, {"task": "a third"})
        await run(url)  # both slots were released when the slow runs finished
    assert rejected.status_code == 429 and rejected.headers["Retry-After"] == "1"
    assert rejected.json() == {"jsonrpc": "2.0", "id": 7, "error": {"code": -32000, "message": (
        "Too many concurrent runs for this client (cap 2); wait for one to finish or use start_agent")}}
    assert sorted(reports) == ["first", "fourth", "second"]
    assert len(fake_model.requests) == 3  # the refused calls never reached the model


def modern_tool_call(agent: str) -> dict[str, Any]:
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": agent, "arguments": {"task": "x"}, "_meta": meta}}


# --- refusing to start ---


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "mcp.example.com"])
def test_a_non_loopback_bind_without_a_token_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="--auth-token") as caught:
        check_bind(HttpSecurity(host=host))
    assert "SUBAGENTS_AUTH_TOKEN" in str(caught.value) and "127.0.0.1" in str(caught.value)


@pytest.mark.parametrize(("security", "problem"), [
    (HttpSecurity(host="0.0.0.0", auth_token="short-token"), "at least 16"),
    (HttpSecurity(auth_token="a token with spaces in it"), "only letters, digits"),
    (HttpSecurity(allowed_origins=("app.example.com",)), "scheme://host"),
    (HttpSecurity(max_concurrent_runs_per_client=0), "at least 1"),
])
def test_a_weak_token_or_bad_setting_is_refused(security: HttpSecurity, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        check_bind(security)


@pytest.mark.parametrize("security", [
    HttpSecurity(), HttpSecurity(host="localhost"), HttpSecurity(host="::1"), HttpSecurity(auth_token="  "),
    HttpSecurity(host="0.0.0.0", auth_token=TOKEN), HttpSecurity(host="10.0.0.5", auth_token=f" {TOKEN}\n"),
])
def test_loopback_or_a_strong_token_is_accepted(security: HttpSecurity) -> None:
    check_bind(security)


def test_the_cli_refuses_a_public_bind_without_a_token_before_binding(project: Path) -> None:
    started = time.monotonic()
    result = run_cli("serve", "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port()),
                     "--root", str(project), timeout=30)
    assert result.returncode == 2
    assert "--auth-token" in result.stderr and "SUBAGENTS_AUTH_TOKEN" in result.stderr
    assert time.monotonic() - started < 15
