"""An offline fake of the Anthropic Messages API, for testing agents with no key and no network.

`FakeMessagesServer` is a real HTTP server on 127.0.0.1, so the `anthropic` SDK, Claude Code or
`subagents` itself talk to it as they would to the real API: auth headers, retries, streaming and
cancellation all run for real. A script decides each answer::

    script = [tool_use("Read", {"file_path": "src/app.py"}), text("No findings.")]
    async with FakeMessagesServer(script) as fake:
        client = AsyncAnthropic(api_key="test-key", base_url=fake.url)
        ...
    assert fake.requests[1].tool_results[0]["is_error"] is False

A script is a sequence of `Reply` consumed in order, or a function from `RecordedRequest` to
`Reply`. Token usage is approximate (about 4 characters a token). Prompt caching is simulated block by
block, as the API documents it (`fake_cache.PromptCache`): the prefix up to each `cache_control`
breakpoint is written, and a later request reads the longest cached prefix it shares.

`python -m subagents.providers.testing` serves `demo_responder` and prints one line,
`FAKE_MESSAGES_API_URL=http://127.0.0.1:PORT`, on stdout.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, Self

import anyio.to_thread

from subagents.providers.demo_model import DEMO_NOTE, demo_responder
from subagents.providers.fake_cache import PromptCache, approx_tokens
from subagents.providers.fake_server import (
    Block,
    FakeHTTPServer,
    RecordedRequest,
    Reply,
    Script,
    Wire,
    error,
    json_wire,
    logger,
    message_json,
    stream_events,
)

__all__ = [
    "DEMO_NOTE",
    "FakeMessagesServer",
    "RecordedRequest",
    "Reply",
    "Script",
    "demo_responder",
    "error",
    "main",
    "text",
    "tool_use",
    "tool_uses",
]


def text(s: str, *, stop_reason: str = "end_turn", usage: dict[str, int] | None = None, latency: float = 0.0) -> Reply:
    return Reply(content=({"type": "text", "text": s},), stop_reason=stop_reason, usage=usage, latency_s=latency)


def tool_use(
    name: str,
    input: dict[str, Any],
    *,
    id: str | None = None,
    preamble: str | None = None,
    latency: float = 0.0,
    usage: dict[str, int] | None = None,
) -> Reply:
    """One tool call (stop_reason "tool_use"), optionally after some text. Without `id` the server
    assigns a fresh one."""
    return _tool_reply([(name, input, id)], preamble, latency, usage)


def tool_uses(
    calls: Sequence[tuple[str, dict[str, Any]]],
    *,
    preamble: str | None = None,
    latency: float = 0.0,
    usage: dict[str, int] | None = None,
) -> Reply:
    """Several tool calls in one assistant turn."""
    return _tool_reply([(name, args, None) for name, args in calls], preamble, latency, usage)


def _tool_reply(
    calls: list[tuple[str, dict[str, Any], str | None]],
    preamble: str | None,
    latency: float,
    usage: dict[str, int] | None,
) -> Reply:
    blocks: list[Block] = [{"type": "text", "text": preamble}] if preamble else []
    blocks += [{"type": "tool_use", "id": id_, "name": name, "input": dict(args)} for name, args, id_ in calls]
    return Reply(content=tuple(blocks), stop_reason="tool_use", usage=usage, latency_s=latency)


def _fatal(problem: str) -> Reply:
    """A 500 the SDK must not retry: a broken script should fail the test at once and say why."""
    return error(500, message=f"FakeMessagesServer: {problem}", should_retry=False)


class FakeMessagesServer:
    """The fake Messages API. `with` or `async with` starts it on a background thread and stops it.

    With `api_key`, requests need `Authorization: Bearer <key>` or `x-api-key: <key>`. Without a
    script, every /v1/messages request fails loudly with a 500 until `set_script` is called.
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
    ) -> None:
        self._address = (host, port)
        self._api_key = api_key
        self._lock = threading.Lock()
        self._script = script
        self._position = 0  # the next reply of a sequence script
        self._message_requests = 0
        self._requests: list[RecordedRequest] = []
        self._disconnects = 0
        self._cache = PromptCache()
        self._usages: list[dict[str, int]] = []
        self._http: FakeHTTPServer | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The base URL to give the SDK (it POSTs to {url}/v1/messages)."""
        if self._url is None:
            raise RuntimeError("FakeMessagesServer has not started: call start() or use it in a with block")
        return self._url

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def usages(self) -> list[dict[str, int]]:
        """The usage reported with each message reply, in order: what a client was billed, cache included."""
        with self._lock:
            return list(self._usages)

    @property
    def disconnects(self) -> int:
        """How many clients hung up before or while their reply was sent (cancelled calls)."""
        with self._lock:
            return self._disconnects

    def set_script(self, script: Script | None) -> None:
        with self._lock:
            self._script, self._position = script, 0

    def start(self) -> Self:
        if self._http is None:
            self._http = FakeHTTPServer(self._address, self._serve, self._count_disconnect)
            self._url = self._http.url
            self._http.start()
            logger.info("fake Messages API listening on %s", self._url)
        return self

    def stop(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            http.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await anyio.to_thread.run_sync(self.stop)  # stopping joins threads: keep the event loop free

    # --- called on the server's threads ---

    def _serve(self, request: RecordedRequest, problem: str | None) -> Wire:
        with self._lock:
            self._requests.append(request)
            number = len(self._requests)
        reply = self._route(request, problem)
        headers = {"request-id": f"req_fake_{number}", **reply.headers}
        if not reply.is_message:
            body = reply.body if reply.body is not None else error(reply.status).body
            return json_wire(reply.status, body, headers, reply.latency_s)
        message = message_json(request, reply, number, self._cache.account(request.body))
        with self._lock:
            self._usages.append(dict(message["usage"]))
        if not request.stream:
            return json_wire(reply.status, message, headers, reply.latency_s)
        sse = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
        return Wire(reply.status, {**sse, **headers}, list(stream_events(message)), reply.latency_s)

    def _route(self, request: RecordedRequest, problem: str | None) -> Reply:
        if not self._authorized(request.headers):
            return error(401, message="invalid x-api-key")
        route = (request.method, request.path)
        if route == ("POST", "/v1/messages/count_tokens"):
            return Reply(body={"input_tokens": approx_tokens(request.body)})
        if route != ("POST", "/v1/messages"):
            return error(404, message=f"FakeMessagesServer: no route for {request.method} {request.path}")
        return error(400, message=problem) if problem else self._scripted(request)

    def _authorized(self, headers: dict[str, str]) -> bool:
        key = self._api_key
        return key is None or key == headers.get("x-api-key") or f"Bearer {key}" == headers.get("authorization")

    def _scripted(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._message_requests += 1
            script, number = self._script, self._message_requests
            if script is None:
                return _fatal("no script set; call set_script(...)")
            if not callable(script):
                if self._position >= len(script):
                    return _fatal(f"script exhausted after {len(script)} replies (request {number} unexpected)")
                self._position += 1
                return script[self._position - 1]
        try:  # outside the lock: a script function may be slow
            reply = script(request)
        except Exception as exc:
            logger.exception("fake Messages API script failed")
            return _fatal(f"script raised {type(exc).__name__}: {exc}")
        return reply if isinstance(reply, Reply) else _fatal(f"script returned {reply!r}, not a Reply")

    def _count_disconnect(self) -> None:
        with self._lock:
            self._disconnects += 1


# --- python -m subagents.providers.testing ---


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m subagents.providers.testing",
        description="Serve a fake Anthropic Messages API answered by the offline demo model.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", help="refuse requests that do not carry this key")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with FakeMessagesServer(demo_responder, host=args.host, port=args.port, api_key=args.api_key) as server:
        print(f"FAKE_MESSAGES_API_URL={server.url}", flush=True)
        while not stop.wait(0.5):  # a timed wait, so the signal handler always gets to run
            pass
    logger.info("fake Messages API stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
