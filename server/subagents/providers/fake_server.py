"""The fake Messages API's parts: what a request and a reply are, the wire format, the HTTP transport.

The public face is `subagents.providers.testing`; import from there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from subagents.providers.fake_cache import CacheUsage, approx_tokens

logger = logging.getLogger("subagents.providers.testing")

Block = dict[str, Any]
POLL_S = 0.02  # how often a latency sleep checks whether the client hung up
CHUNK_CHARS = 16  # streamed text and tool input arrive in deltas of this many characters


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def content_blocks(content: Any) -> list[Block]:
    """Message content as blocks: the API accepts a bare string for a single text block."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else _dicts(content)


def content_text(content: Any) -> str:
    """The text of a string or of a list of text blocks (system prompts, tool_result content)."""
    return "\n".join(str(b.get("text", "")) for b in content_blocks(content) if b.get("type") == "text")


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the server received it. `path` has no query string."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def system_text(self) -> str:
        return content_text(self.body.get("system", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return _dicts(self.body.get("messages"))

    @property
    def tools(self) -> list[dict[str, Any]]:
        return _dicts(self.body.get("tools"))

    @property
    def tool_names(self) -> list[str]:
        return [str(t.get("name", "")) for t in self.tools]

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream", False))

    @property
    def output_schema(self) -> dict[str, Any] | None:
        """The JSON schema of `output_config.format`, when the request asks for structured output."""
        config = self.body.get("output_config")
        fmt = config.get("format") if isinstance(config, dict) else None
        schema = fmt.get("schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
        return schema if isinstance(schema, dict) else None

    @property
    def last_user_text(self) -> str:
        """The text of the last user message, tool results included."""
        blocks = self._last_user_blocks()
        return "\n".join(
            content_text(b.get("content", "")) if b.get("type") == "tool_result" else content_text([b])
            for b in blocks
            if b.get("type") in ("text", "tool_result")
        )

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """The tool_result blocks of the last user message, their content flattened to text."""
        return [tool_result(b) for b in self._last_user_blocks() if b.get("type") == "tool_result"]

    def _last_user_blocks(self) -> list[Block]:
        users = [m for m in self.messages if m.get("role") == "user"]
        return content_blocks(users[-1].get("content")) if users else []


def tool_result(block: Block) -> dict[str, Any]:
    content = content_text(block.get("content", ""))
    return {
        "tool_use_id": block.get("tool_use_id"),
        "content": content,
        "is_error": bool(block.get("is_error")),
    }


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    A message reply has `content` blocks as the API sends them (a tool_use block whose `id` is
    None gets a fresh id when sent). A reply with a `body` sends that JSON as is, with `status`.
    `usage` overrides the computed token counts key by key.
    """

    status: int = 200
    content: tuple[Block, ...] = ()
    stop_reason: str | None = "end_turn"
    usage: dict[str, Any] | None = None  # e.g. {"server_tool_use": {"web_search_requests": 1}}
    headers: dict[str, str] = field(default_factory=dict)
    latency_s: float = 0.0
    body: dict[str, Any] | None = None

    @property
    def is_message(self) -> bool:
        return self.body is None and self.status < 400


Script = Callable[[RecordedRequest], Reply] | Sequence[Reply]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error(
    status: int,
    *,
    type: str | None = None,
    message: str | None = None,
    retry_after_ms: int | None = None,
    retry_after_s: float | None = None,
    should_retry: bool | None = None,
    latency: float = 0.0,
) -> Reply:
    """An API error. `should_retry` sets `x-should-retry`, which overrides the SDK's status rule."""
    kind = type or ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    headers = {}
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    if retry_after_s is not None:
        headers["retry-after"] = f"{retry_after_s:g}"
    if should_retry is not None:
        headers["x-should-retry"] = str(should_retry).lower()
    body = {"type": "error", "error": {"type": kind, "message": message or f"fake {kind} ({status})"}}
    return Reply(status=status, stop_reason=None, headers=headers, latency_s=latency, body=body)


# --- the wire format ---


def has_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(has_key(v, key) for v in value.values())
    return isinstance(value, list) and any(has_key(v, key) for v in value)


def _usage(request: RecordedRequest, content: list[Block], cache: CacheUsage | None) -> dict[str, int]:
    """Token counts; `cache` is None when the request asks for no caching."""
    output = approx_tokens("".join(b.get("text", "") + json.dumps(b.get("input", "")) for b in content))
    if cache is None:
        return {
            "input_tokens": approx_tokens(request.body),
            "output_tokens": output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
    return {
        "input_tokens": cache.uncached,
        "output_tokens": output,
        "cache_creation_input_tokens": cache.written,
        "cache_read_input_tokens": cache.read,
    }


def message_json(request: RecordedRequest, reply: Reply, number: int, cache: CacheUsage | None) -> dict[str, Any]:
    content = [dict(b) for b in reply.content]
    for index, block in enumerate(content):
        if block.get("type") == "tool_use" and not block.get("id"):
            block["id"] = f"toolu_fake_{number}_{index}"
    return {
        "id": f"msg_fake_{number}",
        "type": "message",
        "role": "assistant",
        "model": request.model or "fake-model",
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": {**_usage(request, content, cache), **(reply.usage or {})},
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _pieces(s: str) -> list[str]:
    return [s[i : i + CHUNK_CHARS] for i in range(0, len(s), CHUNK_CHARS)]


def _block_events(index: int, block: Block) -> Iterator[bytes]:
    start: Block = block  # blocks other than text and tool_use arrive whole in their start event
    deltas: list[Block] = []
    if block.get("type") == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
    elif block.get("type") == "tool_use":
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(json.dumps(block["input"]))]
    yield _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
    for delta in deltas:
        yield _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})


def stream_events(message: dict[str, Any]) -> Iterator[bytes]:
    """The server-sent events the Messages API sends for `message` when asked to stream."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    yield _sse("message_start", {"type": "message_start", "message": start})
    yield _sse("ping", {"type": "ping"})
    for index, block in enumerate(message["content"]):
        yield from _block_events(index, block)
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    final_usage = {"output_tokens": usage["output_tokens"]}
    yield _sse("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage})
    yield _sse("message_stop", {"type": "message_stop"})


class Wire(NamedTuple):
    """An HTTP response, ready to send after `latency_s`."""

    status: int
    headers: dict[str, str]
    chunks: list[bytes]
    latency_s: float = 0.0


def json_wire(status: int, body: Any, headers: dict[str, str], latency_s: float = 0.0) -> Wire:
    return Wire(status, {"content-type": "application/json", **headers}, [json.dumps(body).encode()], latency_s)


# --- the HTTP transport ---

Serve = Callable[[RecordedRequest, str | None], Wire]  # (request, why its body is unusable) -> response


class FakeHTTPServer(ThreadingHTTPServer):
    """HTTP/1.1 with keep-alive on a background thread; `serve` answers every request."""

    daemon_threads = True
    request_queue_size = 1024  # socketserver's 5 drops connections when 64 clients connect at once

    def __init__(self, address: tuple[str, int], serve: Serve, on_disconnect: Callable[[], None]) -> None:
        self.serve, self.on_disconnect = serve, on_disconnect
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="fake-messages-api", daemon=True)
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup, which can stall offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop serving and hang up on kept-alive clients, so no handler thread lingers."""
        self.stopping.set()
        self.shutdown()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()
        self._thread.join(timeout=5)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: FakeHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    def _handle(self) -> None:
        read = self._read_body()
        if read is None:  # the client died mid-request (a killed process): it made no request to record or answer
            return self._client_left()
        body, problem = read
        headers = {name.lower(): value for name, value in self.headers.items()}
        wire = self.server.serve(RecordedRequest(self.command, urlsplit(self.path).path, headers, body), problem)
        if wire.latency_s > 0 and not self._client_waited(wire.latency_s):
            return self._client_left()
        try:
            self.send_response(wire.status)
            for name, value in wire.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(sum(map(len, wire.chunks))))
            self.end_headers()
            for chunk in wire.chunks:
                self.wfile.write(chunk)
        except OSError:
            self._client_left()

    def _read_body(self) -> tuple[dict[str, Any], str | None] | None:
        """The JSON body and what is wrong with it; None when the client hung up before sending all of it."""
        try:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if len(raw) < length:
                return None
            body = json.loads(raw) if raw else {}
        except OSError:
            return None
        except ValueError as exc:
            return {}, f"request body is not JSON: {exc}"
        return (body, None) if isinstance(body, dict) else ({}, "request body must be a JSON object")

    def _client_waited(self, seconds: float) -> bool:
        """Sleep through a reply's latency; False as soon as the client hangs up (a cancelled call)
        or the server stops (a stopped server answers nothing more)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(left, POLL_S))
            if self.server.stopping.is_set() or (readable and self._peer_closed()):
                return False
            if readable:  # the client sent more bytes: wait without spinning on them
                time.sleep(min(left, POLL_S))
        return True

    def _peer_closed(self) -> bool:
        try:
            return not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def _client_left(self) -> None:
        self.close_connection = True
        if not self.server.stopping.is_set():
            self.server.on_disconnect()
