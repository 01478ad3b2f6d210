"""The Streamable HTTP deployment: who may bind where, and the checks every request passes.

Each request goes through these layers, outermost first. A layer that refuses answers at once, so
the work behind it never starts:

1. `BearerAuth` (only with a token): 401 unless `Authorization: Bearer <token>` matches.
2. The SDK's `RequestBodyLimitMiddleware`: 413 past `max_body_bytes`. It buffers the body, so the
   next layer can read it.
3. `RunCap`: 429 when this client already has `max_concurrent_runs_per_client` tools/call in flight.
4. The SDK's Streamable HTTP app at /mcp: Host allow-list (421), Origin allow-list (403), JSON-RPC
   parsing (a malformed body gets a JSON-RPC error, not a crash).

Why our own bearer middleware and not the SDK's `token_verifier`: MCPServer takes the verifier and
`AuthSettings` only in its constructor, but `mcp_server.build_server` builds one server for every
transport, and stdio has no tokens. Its `AuthSettings` also wants an OAuth issuer URL, which means
nothing for a static token. The middleware is a few lines, compares in constant time, and keeps
`build_server` unchanged. What we give up is the SDK tying a session to its principal. With one shared
token there is only one principal, so nothing is lost today.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import re
import signal
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import RequestBodyLimitMiddleware, TransportSecuritySettings
from pydantic import BaseModel, field_validator
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subagents.errors import ConfigError

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16
# RFC 6750 b64token: the characters a client can put after "Bearer " without quoting.
TOKEN_SYNTAX = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")  # as they appear in Host and Origin headers
WILDCARD_BINDS = ("0.0.0.0", "::", "")
MCP_PATH = "/mcp"
REALM = 'Bearer realm="subagents"'
MISSING_TOKEN = "Missing bearer token: send Authorization: Bearer <token>."


class HttpSecurity(BaseModel, frozen=True):
    """How the HTTP server is exposed. Defaults are safe for a local, single-user server."""

    host: str = "127.0.0.1"
    auth_token: str | None = None
    # Extra browser origins beyond loopback, e.g. https://app.example.com.
    allowed_origins: tuple[str, ...] = ()
    # Extra Host header values (host or host:port) for a deployment reached through a name.
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 1_000_000
    max_concurrent_runs_per_client: int = 4

    @field_validator("auth_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An empty SUBAGENTS_AUTH_TOKEN means "no token", not "a token of length 0". Outer whitespace
        # cannot travel in a header value, so strip it here rather than reject a token copied from a file.
        if isinstance(value, str):
            return value.strip() or None
        return value


# --- the bind check ---


def check_bind(security: HttpSecurity) -> None:
    """Raise ConfigError for a deployment we refuse to start; the message says how to fix it."""
    token = security.auth_token
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"The auth token is {len(token)} characters; use at least {MIN_TOKEN_CHARS}, "
            "e.g. the output of `openssl rand -hex 32`."
        )
    if token is not None and not TOKEN_SYNTAX.fullmatch(token):
        raise ConfigError(
            "The auth token may contain only letters, digits and - . _ ~ + / (then optional "
            "trailing =), so that clients can send it as `Authorization: Bearer <token>`."
        )
    if token is None and not is_loopback(security.host):
        raise ConfigError(
            f"Refusing to serve HTTP on {security.host} without a bearer token: anyone who can reach that "
            "address could run agents on your model key. Pass --auth-token TOKEN or set SUBAGENTS_AUTH_TOKEN "
            "(16+ characters, e.g. `openssl rand -hex 32`), or bind 127.0.0.1."
        )
    for origin in security.allowed_origins:
        if not re.fullmatch(r"https?://[^/\s]+", origin.rstrip("/")):
            raise ConfigError(f"Allowed origin {origin!r} is not scheme://host[:port], e.g. https://app.example.com.")
    if security.max_body_bytes < 1 or security.max_concurrent_runs_per_client < 1:
        raise ConfigError("The request body cap and the concurrent-run cap must both be at least 1.")


def is_loopback(host: str) -> bool:
    """Only localhost and loopback addresses count: another name may resolve anywhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- DNS-rebinding protection ---


def transport_settings(security: HttpSecurity) -> TransportSecuritySettings:
    """Host and Origin allow-lists, on for every bind (the SDK turns them on only for loopback).

    Host: loopback names on any port, the bind address itself when it is a specific address or
    name, and `allowed_hosts`. A wildcard bind (0.0.0.0, ::) adds no Host of its own: it does not
    know the name clients will use, and accepting any Host is exactly what DNS rebinding exploits. So
    behind a name the operator passes --allowed-host NAME; without it only loopback Host values are
    accepted (421 otherwise).

    Origin: a missing Origin passes (MCP clients that are not browsers send none), loopback http
    origins pass, and so does each of `allowed_origins`. The bind host is not added as an origin:
    a page served from another port of that host is another origin and gets no implicit trust.
    """
    hosts = [p for name in LOOPBACK_NAMES for p in (name, f"{name}:*")]
    if not is_loopback(security.host) and security.host not in WILDCARD_BINDS:
        hosts += host_patterns(security.host)
    hosts += [p for entry in security.allowed_hosts for p in host_patterns(entry)]
    origins = [p for name in LOOPBACK_NAMES for p in (f"http://{name}", f"http://{name}:*")]
    origins += [origin.rstrip("/").lower() for origin in security.allowed_origins]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def host_patterns(entry: str) -> list[str]:
    """Host header patterns for 'name', 'name:port', an IPv6 address or '[v6]:port'."""
    entry = entry.strip().lower()
    pinned_port = entry.startswith("[") and "]:" in entry or entry.count(":") == 1
    if pinned_port:
        return [entry]
    name = f"[{entry.strip('[]')}]" if ":" in entry else entry
    return [name, f"{name}:*"]


# --- bearer auth ---


class BearerAuth:
    """Pure ASGI: every HTTP request must carry `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan events carry no headers and need no auth
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization")
        if header is not None and self._matches(header):
            await self.app(scope, receive, send)
            return
        # RFC 6750 §3.1: no error code in the challenge when the request had no credentials at all.
        challenge = REALM if header is None else f'{REALM}, error="invalid_token"'
        why = MISSING_TOKEN if header is None else "The bearer token is not valid."
        response = JSONResponse(
            {"error": "invalid_token", "error_description": why},
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )
        await response(scope, receive, send)

    def _matches(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        # compare_digest always runs, so the time taken does not reveal whether the scheme matched.
        same = hmac.compare_digest(credentials.strip().encode("latin-1", "replace"), self.token)
        return same and scheme.lower() == "bearer"


# --- the per-client concurrent-run cap ---


class RunCap:
    """Pure ASGI: at most `cap` tools/call requests in flight per client; past it, 429.

    A client is its IP address (uvicorn trusts X-Forwarded-For only from 127.0.0.1, i.e. from a
    local reverse proxy). Why not the token: there is one shared token, so it cannot tell clients
    apart. Why not Mcp-Session-Id: the server issues a session to anyone who asks, and the 2026 era has
    none at all, so a session cap could be dodged by opening another. The address is the one
    identity a client cannot choose. Behind a remote proxy every client shares the proxy's address.

    It expects a bounded body, so it sits inside RequestBodyLimitMiddleware. Only one event loop
    touches the counter, and no await falls between its check and its update, so no lock is needed.
    """

    def __init__(self, app: ASGIApp, cap: int) -> None:
        self.app = app
        self.cap = cap
        self.in_flight: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, replay = await buffer_body(receive)
        runs, request_id = count_tool_calls(body)
        client = client_key(scope)
        if runs and self.in_flight[client] + runs > self.cap:
            log.warning("client %s is at its cap of %d concurrent runs; answered 429", client, self.cap)
            await too_many_runs(self.cap, request_id)(scope, replay, send)
            return
        self.in_flight[client] += runs
        try:
            # Returns once the response is complete (for SSE: once the result is sent), or on disconnect.
            await self.app(scope, replay, send)
        finally:
            self.in_flight[client] -= runs
            if self.in_flight[client] <= 0:
                del self.in_flight[client]


async def buffer_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole request body, and give back a `receive` that replays it to the inner app."""
    chunks: list[bytes] = []
    pending: deque[Message] = deque()
    while True:
        message = await receive()
        pending.append(message)
        if message["type"] != "http.request":  # e.g. http.disconnect: the inner app must see it too
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return b"".join(chunks), replay


def count_tool_calls(body: bytes) -> tuple[int, Any]:
    """How many tools/call messages the body holds (a single message or a batch), and the id to
    answer with. Anything unparsable counts as none: the SDK answers it with a JSON-RPC error."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):  # bad UTF-8 and huge int literals are ValueErrors too
        return 0, None
    messages = decoded if isinstance(decoded, list) else [decoded]
    calls = [m for m in messages if isinstance(m, dict) and m.get("method") == "tools/call"]
    ids = [m.get("id") for m in calls]
    request_id = ids[0] if len(ids) == 1 and isinstance(ids[0], (str, int)) else None
    return len(calls), request_id


def client_key(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def too_many_runs(cap: int, request_id: Any) -> JSONResponse:
    message = f"Too many concurrent runs for this client (cap {cap}); wait for one to finish or use start_agent"
    return JSONResponse(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32000, "message": message}},
        status_code=429,
        headers={"Retry-After": "1"},
    )


# --- the app and the server ---


def build_http_app(server: MCPServer, security: HttpSecurity) -> Starlette:
    """Streamable HTTP at /mcp behind the layers above. Raises ConfigError for an unsafe `security`."""
    check_bind(security)
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=security.host,
        transport_security=transport_settings(security),
        max_request_body_size=security.max_body_bytes,
    )
    # add_middleware puts each new layer outside the previous ones: add the innermost first.
    app.add_middleware(RunCap, cap=security.max_concurrent_runs_per_client)
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=security.max_body_bytes)
    if security.auth_token is not None:
        app.add_middleware(BearerAuth, token=security.auth_token)
    return app


async def serve_http(server: MCPServer, security: HttpSecurity, port: int) -> None:
    """Serve until cancelled or signalled. Checks the bind before opening any socket."""
    import uvicorn

    class _Server(uvicorn.Server):
        # uvicorn re-raises SIGTERM/SIGINT after its shutdown, which kills the process before the runs in
        # flight are recorded. We watch the signals ourselves and ask uvicorn for a graceful stop.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    asgi = build_http_app(server, security)
    if security.host in WILDCARD_BINDS and not security.allowed_hosts:
        log.warning(
            "bound to every interface with no --allowed-host: only requests whose Host is "
            "localhost or a loopback address are accepted (others get 421)"
        )
    # uvicorn logs to stderr; its access log would go to stdout, so it is off.
    config = uvicorn.Config(
        asgi,
        host=security.host,
        port=port,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=5,  # open tool calls are cancelled (and recorded) after this
    )
    shown = f"[{security.host}]" if ":" in security.host else security.host
    log.info(
        "serving Streamable HTTP at http://%s:%d%s (bearer token %s)",
        shown,
        port,
        MCP_PATH,
        "required" if security.auth_token else "off: loopback only",
    )
    uv = _Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_on_signal, uv)
        await uv.serve()
        tg.cancel_scope.cancel()


async def _stop_on_signal(uv: Any) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s; stopping", signal.Signals(signum).name)
            uv.should_exit = True
            return
