"""Who is calling over MCP: the bearer token checked at the HTTP edge, and the principal a tool reads.

The HTTP edge proves who the caller is once per request and records it the SDK's way: an
`AuthenticatedUser` in `scope["user"]`, and the SDK's auth context variable, so that inside a tool
`get_access_token()` names the caller, and the SDK binds each stateful session to the principal that
opened it (a session id replayed under another credential gets 404). A token is checked by a
`TokenVerifier` (the SDK's protocol): the one `--auth-token` (principal `default`), a tokens file of
`name: sha256:<hex>` lines (`--auth-tokens`), or any verifier an embedder passes (OAuth introspection, a
JWT check), whose token's subject is the principal.

Without a token the server is loopback-only and every caller is the local user, as over stdio.
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware, get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier
from starlette.authentication import AuthCredentials
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from subagents.principals import LOCAL, Principal
from subagents.tokens import TokensFile

DEFAULT_PRINCIPAL = "default"  # the holder of the one --auth-token
REALM = 'Bearer realm="subagents"'
MISSING_TOKEN = "Missing bearer token: send Authorization: Bearer <token>."


def caller() -> Principal:
    """The principal of the request being served: the subject its token proved (the client id when the
    verifier names no subject), else the local user."""
    access = get_access_token()
    return Principal(access.subject or access.client_id) if access is not None else LOCAL


class SingleTokenVerifier:
    """A `TokenVerifier` for the one shared `--auth-token`; its holder is the principal `default`."""

    def __init__(self, token: str, principal: str = DEFAULT_PRINCIPAL) -> None:
        self._token = token.encode()
        self._principal = principal

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode("latin-1", "replace"), self._token):
            return _access(token, self._principal)
        return None


class TokensFileVerifier:
    """A `TokenVerifier` for `--auth-tokens FILE`: each token's holder is the principal its line names."""

    def __init__(self, tokens: TokensFile) -> None:
        self.tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        name = self.tokens.principal_of(token)
        return None if name is None else _access(token, name)

    def reload(self) -> bool:
        return self.tokens.reload()


class AnyVerifier:
    """Accepts a token any of `verifiers` accepts (the first that does names the principal). Every one is
    asked, so the time taken does not tell which kind of token matched."""

    def __init__(self, *verifiers: TokenVerifier) -> None:
        self.verifiers = verifiers

    async def verify_token(self, token: str) -> AccessToken | None:
        found = [await v.verify_token(token) for v in self.verifiers]
        return next((access for access in found if access is not None), None)

    def reload(self) -> bool:
        """Reload every verifier that can be (a tokens file); True if all of them did."""
        return all([reload() for v in self.verifiers if (reload := getattr(v, "reload", None)) is not None])


def _access(token: str, principal: str) -> AccessToken:
    return AccessToken(token=token, client_id=principal, subject=principal, scopes=[])


class BearerAuth:
    """Pure ASGI: every HTTP request must carry `Authorization: Bearer <token>` that `verifier` accepts."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier) -> None:
        self.app = AuthContextMiddleware(app)  # puts scope["user"] where get_access_token() reads it
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan events carry no headers and need no auth
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization")
        access = await self._verify(header) if header is not None else None
        if access is not None:
            scope["user"] = AuthenticatedUser(access)
            scope["auth"] = AuthCredentials(access.scopes)
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

    async def _verify(self, header: str) -> AccessToken | None:
        scheme, _, credentials = header.partition(" ")
        # The verifier always runs, so the time taken does not reveal whether the scheme matched.
        access = await self.verifier.verify_token(credentials.strip())
        if access is None or scheme.lower() != "bearer":
            return None
        if access.expires_at is not None and access.expires_at < time.time():
            return None
        return access


class LoopbackOnly:
    """Pure ASGI, for a server without a token: only this machine may call it.

    The bind is loopback then, so this matters behind a `--trusted-proxy`: the client uvicorn reports is
    the one the proxy forwarded, and a remote one is refused (403) rather than let in without a token.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        host = str(client[0]) if client else ""
        if scope["type"] != "http" or is_loopback_address(host):
            await self.app(scope, receive, send)
            return
        why = (
            f"This server has no auth token, so it serves only this machine, and the proxy forwarded a request "
            f"from {host or 'an unknown address'}: start it with --auth-token (or SUBAGENTS_AUTH_TOKEN) to serve "
            "other machines."
        )
        await JSONResponse({"error": "forbidden", "error_description": why}, status_code=403)(scope, receive, send)


def is_loopback_address(host: str) -> bool:
    """A loopback IP address; a name (even `localhost`, which a forwarded header can carry) is not one."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
