"""The Streamable HTTP deployment: who may bind where, and the checks every request passes.

Each request goes through these layers, outermost first. A layer that refuses answers at once, so
the work behind it never starts:

1. uvicorn, with `ReadDeadlineProtocol`: a connection that owes a request head (or body) for longer
   than `read_timeout_s` is closed. X-Forwarded-For is read only from a `--trusted-proxy` address;
   by default nobody is trusted, so the client is the TCP peer.
2. With a token (`--auth-token`, `--auth-tokens FILE`, or an embedder's verifier), `BearerAuth`: 401
   unless `Authorization: Bearer <token>` is valid; it names the caller's principal (`auth.py`).
   Without one, `LoopbackOnly`: 403 for a client that is not this machine (which only a trusted proxy
   can forward).
3. The SDK's `RequestBodyLimitMiddleware`: 413 past `max_body_bytes`.
4. The SDK's Streamable HTTP app at /mcp: Host allow-list (421), Origin allow-list (403), JSON-RPC
   parsing (a malformed body gets a JSON-RPC error, not a crash).

How many runs a caller may have going is not decided here but in the engine (`RunLimiter`), per
principal, for every transport: an HTTP layer sees requests, not runs, and a background run outlives
the request that started it.

Why our own bearer middleware and not the SDK's `token_verifier` + `AuthSettings`: the SDK's challenge
for a request without credentials carries `error="invalid_token"` (RFC 6750 §3.1 says it should not) and
no realm; its `AuthSettings` wants an OAuth issuer URL, which means nothing for a static token; its auth
layer runs inside our body cap, so an unauthenticated client could make us buffer a 1 MB body before
hearing 401; and MCPServer takes the verifier only in its constructor while `build_server` builds one
server for every transport. What the SDK path would give, we keep: the check goes through a
`TokenVerifier`, and the principal is stored where the SDK looks for it, so sessions are bound to their
principal and a tool reads it with `get_access_token()`, exactly as under the SDK's own auth.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import re
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.auth.provider import TokenVerifier
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import RequestBodyLimitMiddleware, TransportSecuritySettings
from pydantic import BaseModel, field_validator
from starlette.applications import Starlette

from subagents.errors import ConfigError
from subagents.mcp.auth import AnyVerifier, BearerAuth, LoopbackOnly, SingleTokenVerifier, TokensFileVerifier
from subagents.tokens import TokensFile, check_token

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")  # as they appear in Host and Origin headers
WILDCARD_BINDS = ("0.0.0.0", "::", "")
MCP_PATH = "/mcp"


class HttpSecurity(BaseModel, frozen=True):
    """How the HTTP server is exposed. Defaults are safe for a local, single-user server."""

    host: str = "127.0.0.1"
    auth_token: str | None = None  # the one shared token; its holder is the principal `default`
    auth_tokens_file: Path | None = None  # `name: sha256:<hex>` lines, one principal each (read again on SIGHUP)
    # Extra browser origins beyond loopback, e.g. https://app.example.com.
    allowed_origins: tuple[str, ...] = ()
    # Extra Host header values (host or host:port) for a deployment reached through a name.
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 1_000_000
    # Addresses or networks of reverse proxies whose X-Forwarded-For names the real client.
    trusted_proxies: tuple[str, ...] = ()
    # Seconds a client may take to send a request head (or pause within a body), and idle on keep-alive.
    read_timeout_s: int = 5

    @field_validator("auth_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An empty SUBAGENTS_AUTH_TOKEN means "no token", not "a token of length 0". Outer whitespace
        # cannot travel in a header value, so strip it here rather than reject a token copied from a file.
        if isinstance(value, str):
            return value.strip() or None
        return value


# --- the bind check ---


def check_bind(security: HttpSecurity, *, verifier: TokenVerifier | None = None) -> None:
    """Raise ConfigError for a deployment we refuse to start; the message says how to fix it."""
    token = security.auth_token
    authenticated = token is not None or security.auth_tokens_file is not None or verifier is not None
    if token is not None:
        check_token(token)
    if not authenticated and not is_loopback(security.host):
        raise ConfigError(
            f"Refusing to serve HTTP on {security.host} without a bearer token: anyone who can reach that "
            "address could run agents on your model key. Pass --auth-token TOKEN or set SUBAGENTS_AUTH_TOKEN "
            "(16+ characters, e.g. `openssl rand -hex 32`), or --auth-tokens FILE for one token per user, "
            "or bind 127.0.0.1."
        )
    for origin in security.allowed_origins:
        if not re.fullmatch(r"https?://[^/\s]+", origin.rstrip("/")):
            raise ConfigError(f"Allowed origin {origin!r} is not scheme://host[:port], e.g. https://app.example.com.")
    for proxy in security.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(
                f"Trusted proxy {proxy!r} is not an IP address or network; name the proxy's address, "
                "e.g. --trusted-proxy 127.0.0.1 or --trusted-proxy 10.0.0.0/24."
            ) from None
    if security.max_body_bytes < 1 or security.read_timeout_s < 1:
        raise ConfigError("The request body cap and the read timeout must both be at least 1.")


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


# --- the app and the server ---


def verifier_for(security: HttpSecurity, extra: TokenVerifier | None = None) -> TokenVerifier | None:
    """Who may call: the one token, the tokens file, and `extra` (an embedder's verifier); None for none."""
    verifiers: list[TokenVerifier] = []
    if security.auth_tokens_file is not None:
        verifiers.append(TokensFileVerifier(TokensFile(security.auth_tokens_file)))
    if security.auth_token is not None:
        verifiers.append(SingleTokenVerifier(security.auth_token))
    if extra is not None:
        verifiers.append(extra)
    return verifiers[0] if len(verifiers) == 1 else AnyVerifier(*verifiers) if verifiers else None


def build_http_app(server: MCPServer, security: HttpSecurity, verifier: TokenVerifier | None = None) -> Starlette:
    """Streamable HTTP at /mcp behind the layers above; `verifier` (default: from `security`) checks bearer
    tokens. Raises ConfigError for an unsafe `security`."""
    check_bind(security, verifier=verifier)
    verifier = verifier or verifier_for(security)
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=security.host,
        transport_security=transport_settings(security),
        max_request_body_size=security.max_body_bytes,
    )
    # add_middleware puts each new layer outside the previous ones: add the innermost first.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=security.max_body_bytes)
    if verifier is not None:
        app.add_middleware(BearerAuth, verifier=verifier)
    else:
        app.add_middleware(LoopbackOnly)
    return app


def uvicorn_config(asgi: Starlette, security: HttpSecurity, port: int) -> uvicorn.Config:
    """How uvicorn serves the app: read deadlines, and proxy headers from the trusted proxies only."""
    import uvicorn

    from subagents.mcp.connections import ReadDeadlineProtocol

    # uvicorn logs through the root logger (stderr, in the --log-format asked for); its access log would go
    # to stdout, so it is off.
    return uvicorn.Config(
        asgi,
        host=security.host,
        port=port,
        http=ReadDeadlineProtocol,
        timeout_keep_alive=security.read_timeout_s,
        # Explicit, so uvicorn's default (trust X-Forwarded-For from 127.0.0.1) and FORWARDED_ALLOW_IPS do not apply.
        proxy_headers=bool(security.trusted_proxies),
        forwarded_allow_ips=list(security.trusted_proxies),
        log_level="warning",
        log_config=None,
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=5,  # open tool calls are cancelled (and recorded) after this
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, opened before anything else starts, so a port in use is one sentence, not a
    traceback from inside the server. Raises ConfigError with the fix."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on connections whose socket says TCP,
    # and with Nagle on every SSE write after a response head waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(bind_problem(host, port, exc)) from None
    sock.set_inheritable(True)
    return sock


def bind_problem(host: str, port: int, exc: OSError) -> str:
    """What went wrong binding host:port, and what to do about it."""
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Port {port} on {host} is already in use (another `subagents serve`?). Stop that process, or "
            "pick a free port with --port N."
        )
    if exc.errno == errno.EACCES:
        return f"Binding {where} needs privileges this user lacks: pick a port above 1023 with --port N."
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine: pass --host with one of its addresses, or 127.0.0.1."
    if isinstance(exc, socket.gaierror):
        return f"--host {host!r} does not resolve to an address: pass an IP address or a resolvable name."
    return f"Cannot listen on {where}: {exc.strerror or exc}. Pick another --host or --port."


def mcp_url(security: HttpSecurity, port: int) -> str:
    shown = f"[{security.host}]" if ":" in security.host else security.host
    return f"http://{shown}:{port}{MCP_PATH}"


async def serve_http(
    server: MCPServer,
    security: HttpSecurity,
    port: int,
    *,
    sock: socket.socket | None = None,
    on_listening: Callable[[str], None] | None = None,
    verifier: TokenVerifier | None = None,
) -> None:
    """Serve until cancelled or signalled; SIGHUP reads the tokens file again. Checks the bind before opening
    any socket; `sock`, when given, is the socket `bind_socket` already opened on `port`. `on_listening` hears
    the URL once clients can connect. `verifier` checks bearer tokens (default: `verifier_for(security)`)."""
    import uvicorn

    class _Server(uvicorn.Server):
        # uvicorn re-raises SIGTERM/SIGINT after its shutdown, which kills the process before the runs in
        # flight are recorded. We watch the signals ourselves and ask uvicorn for a graceful stop.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if on_listening is not None and not self.should_exit:
                on_listening(mcp_url(security, port))

    verifier = verifier or verifier_for(security)
    asgi = build_http_app(server, security, verifier)
    if security.host in WILDCARD_BINDS and not security.allowed_hosts:
        log.warning(
            "bound to every interface with no --allowed-host: only requests whose Host is "
            "localhost or a loopback address are accepted (others get 421)"
        )
    config = uvicorn_config(asgi, security, port)
    log.info(
        "serving Streamable HTTP at %s (bearer token %s; X-Forwarded-For trusted from %s)",
        mcp_url(security, port),
        "required" if verifier is not None else "off: loopback only",
        ", ".join(security.trusted_proxies) or "nobody",
    )
    sock = sock or bind_socket(security.host, port)
    uv = _Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_on_signal, uv)
        if (reload := getattr(verifier, "reload", None)) is not None:
            tg.start_soon(_reload_on_sighup, reload)
        await uv.serve(sockets=[sock])
        tg.cancel_scope.cancel()


async def _stop_on_signal(uv: Any) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s; stopping", signal.Signals(signum).name)
            uv.should_exit = True
            return


async def _reload_on_sighup(reload: Callable[[], bool]) -> None:
    with anyio.open_signal_receiver(signal.SIGHUP) as signals:
        async for _ in signals:
            reload()
