"""The Anthropic Messages API provider, on the official async SDK.

`anthropic` is imported on first use: it costs over a second here, and `initialize` and
`tools/list` must not pay for it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import anyio

from subagents.errors import ModelCallError, ModelNotConfiguredError
from subagents.imports import import_off_loop
from subagents.messages import (
    ContentBlock,
    Message,
    ModelRequest,
    ModelResponse,
    RedactedThinkingBlock,
    ServerToolResultBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

NO_CREDENTIALS = (
    "No model configured. Either give the server an API key: set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN) "
    "in its environment, and ANTHROPIC_BASE_URL for a Messages-API-compatible endpoint; in Claude Code: "
    "claude mcp add subagents -e ANTHROPIC_API_KEY=sk-... -- subagents serve. Or run subagents on your "
    "Claude Code login: pip install 'subagents[claude-code]', log in once with `claude`, and serve with "
    "--provider claude-code (the default, auto, picks it when no key is set)."
)
EPHEMERAL = {"type": "ephemeral"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnthropicSettings:
    api_key: str | None = None
    auth_token: str | None = None
    base_url: str | None = None
    max_retries: int = 2
    timeout_s: float = 600.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> AnthropicSettings:
        env = dict(os.environ) if env is None else env
        return cls(
            api_key=_env_value(env, "ANTHROPIC_API_KEY"),
            auth_token=_env_value(env, "ANTHROPIC_AUTH_TOKEN"),
            base_url=_env_value(env, "ANTHROPIC_BASE_URL"),
            **overrides,
        )

    @property
    def configured(self) -> bool:
        return bool(self.api_key or self.auth_token)


_PINNED: list[object] = []


def _pin_stream_generics() -> None:
    """Keep `ParsedMessage[ResponseFormatT]` alive. The SDK's stream accumulator evaluates it at run time on
    every message, and pydantic's cache of parametrised generics is weak, so with no reference of ours the
    class is rebuilt for each model call (a few ms of CPU)."""
    if _PINNED:
        return
    try:
        from anthropic.lib.streaming import _messages
        from anthropic.types.parsed_message import ParsedMessage

        _PINNED.append(ParsedMessage[_messages.ResponseFormatT])  # type: ignore[name-defined]
    except (ImportError, AttributeError, TypeError):  # another SDK version: only the saving is lost
        log.debug("could not pin the SDK's ParsedMessage generic", exc_info=True)


def _env_value(env: dict[str, str], name: str) -> str | None:
    """Empty, or a `${VAR}` placeholder a client config left unexpanded, means not set."""
    value = env.get(name, "").strip()
    if not value or (value.startswith("${") and value.endswith("}")):
        return None
    return value


class AnthropicProvider:
    def __init__(self, settings: AnthropicSettings, *, cache_conversation: bool = True) -> None:
        self._settings = settings
        self._client: AsyncAnthropic | None = None
        self._cache_conversation = cache_conversation  # False only to measure what the cache saves

    async def warm_up(self) -> None:
        """Import the SDK in a worker thread, so the first call does not stall the event loop (and every
        other request of an HTTP server) for the second or more the import takes."""
        if self._settings.configured:
            await import_off_loop("anthropic")

    async def _get_client(self) -> AsyncAnthropic:
        if not self._settings.configured:
            raise ModelNotConfiguredError(NO_CREDENTIALS)
        if self._client is None:
            await self.warm_up()
        if self._client is None:  # checked again: another call may have made it during the await
            from anthropic import AsyncAnthropic

            _pin_stream_generics()
            s = self._settings
            self._client = AsyncAnthropic(
                api_key=s.api_key,
                auth_token=s.auth_token,
                base_url=s.base_url,
                max_retries=s.max_retries,
                timeout=s.timeout_s,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def complete(self, request: ModelRequest) -> ModelResponse:
        client = await self._get_client()
        import anthropic

        try:
            # Streaming keeps long generations under the SDK's non-streaming time guard and lets a
            # cancelled run close the connection at once.
            manager = client.messages.stream(**to_api_kwargs(request, cache_conversation=self._cache_conversation))
            stream = await manager.__aenter__()
            try:
                message = await stream.get_final_message()
            finally:
                # Shielded: on cancellation the stream's own close would be cancelled too, leaving the
                # connection open until garbage collection (by then, maybe on a closed event loop).
                with anyio.move_on_after(5, shield=True):
                    await manager.__aexit__(None, None, None)
        except anthropic.APIStatusError as exc:
            raise status_error(exc) from None
        except anthropic.APITimeoutError:
            raise ModelCallError(f"The model API at {self._where} timed out.", kind="timeout") from None
        except anthropic.APIConnectionError as exc:
            raise ModelCallError(
                f"Cannot reach the model API at {self._where}: {exc}. Check ANTHROPIC_BASE_URL and the network.",
                kind="connection",
            ) from None
        return from_api_message(message.model_dump(mode="json"))

    @property
    def _where(self) -> str:
        return self._settings.base_url or "api.anthropic.com"


def to_api_kwargs(request: ModelRequest, *, cache_conversation: bool = True) -> dict[str, Any]:
    """The Messages API request, with the API's four cache breakpoints used: after the tool list, after the
    system prompt, and on the newest two user turns. So turn N reads turns 1…N-1 from the cache: the newest
    mark writes the whole conversation, and the one before it is still found when a turn added more than
    the API's 20-block lookback (a turn with many tool calls)."""
    messages = [message_to_api(m) for m in request.messages]
    if cache_conversation:
        for index in [i for i, m in enumerate(messages) if m["role"] == "user"][-2:]:
            _mark_last_cacheable(messages[index]["content"])
    kwargs: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "system": [{"type": "text", "text": request.system, "cache_control": EPHEMERAL}],
        "messages": messages,
    }
    if request.tools or request.server_tools:
        tools = [_once(t, t.model_dump) for t in request.tools]
        tools += [{"type": t.type, "name": t.name, **t.options} for t in request.server_tools]
        tools[-1] = {**tools[-1], "cache_control": EPHEMERAL}  # a copy: the others are shared between calls
        kwargs["tools"] = tools
    # The Messages API version this SDK speaks (2026-10-21) refuses sampling parameters on every model,
    # so `temperature` is not sent; the loader warns an agent file that sets it.
    if request.output_schema is not None and (schema := _api_schema_of(_json_key(request.output_schema))) is not None:
        kwargs["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    return kwargs


_BUILT: dict[int, tuple[object, Any]] = {}
_MAX_BUILT = 512


def _once(source: object, build: Callable[[], Any]) -> Any:
    """What `build` makes of `source` (a tool's spec), made once per object: the file tools' specs are
    the same objects on every call. Never to be mutated: the SDK copies a request before it sends it."""
    hit = _BUILT.get(id(source))
    if hit is not None and hit[0] is source:  # the object is held here, so its id is not reused meanwhile
        return hit[1]
    if len(_BUILT) >= _MAX_BUILT:  # specs made per run (Task, Bash) come and go
        _BUILT.clear()
    value = build()
    _BUILT[id(source)] = (source, value)
    return value


def _json_key(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=256)
def _api_schema_of(key: str) -> dict[str, Any] | None:
    """An agent's schema as sent, transformed once (a request's copy of the schema is new every turn, so it
    is known by its JSON). Shared between calls, so never mutated."""
    return api_schema(json.loads(key))


def api_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The schema in the subset the API's structured outputs take (the SDK's own transform: objects closed,
    unsupported keywords moved into descriptions; our validator still checks them). None when the SDK cannot
    transform it: then the answer is only validated, and retried once, without constrained decoding."""
    from anthropic import transform_schema

    try:
        return transform_schema(schema)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("output schema not sent as structured output (%s); the answer is validated instead", exc)
        return None


def _mark_last_cacheable(blocks: list[dict[str, Any]]) -> None:
    """Thinking blocks cannot carry a breakpoint, nor can empty text."""
    for block in reversed(blocks):
        if block.get("type") in ("text", "tool_result", "tool_use") and (block.get("type") != "text" or block["text"]):
            block["cache_control"] = EPHEMERAL
            return


def message_to_api(message: Message) -> dict[str, Any]:
    return {"role": message.role, "content": [b.model_dump() for b in message.content]}


def from_api_message(data: dict[str, Any]) -> ModelResponse:
    blocks = [b for b in (_block(raw) for raw in data.get("content") or []) if b is not None]
    usage = data.get("usage") or {}
    server = usage.get("server_tool_use") or {}
    return ModelResponse(
        model=data.get("model", ""),
        content=tuple(blocks),
        stop_reason=data.get("stop_reason") or "end_turn",
        usage=Usage(
            input_tokens=usage.get("input_tokens") or 0,
            output_tokens=usage.get("output_tokens") or 0,
            cache_read_input_tokens=usage.get("cache_read_input_tokens") or 0,
            cache_creation_input_tokens=usage.get("cache_creation_input_tokens") or 0,
            web_search_requests=server.get("web_search_requests") or 0,
            web_fetch_requests=server.get("web_fetch_requests") or 0,
        ),
    )


def _block(block: dict[str, Any]) -> ContentBlock | None:
    kind = block.get("type")
    if kind == "text":
        return TextBlock(text=block.get("text", ""))
    if kind == "tool_use":
        return ToolUseBlock(id=block["id"], name=block["name"], input=block.get("input") or {})
    if kind == "thinking":
        return ThinkingBlock(thinking=block.get("thinking", ""), signature=block.get("signature", ""))
    if kind == "redacted_thinking":
        return RedactedThinkingBlock(data=block.get("data", ""))
    # The API's own tools (web search, web fetch): kept in the transcript and sent back, never run here.
    if kind == "server_tool_use":
        return ServerToolUseBlock(id=block["id"], name=block["name"], input=block.get("input") or {})
    if kind in ("web_search_tool_result", "web_fetch_tool_result"):
        content = _without_nulls(block.get("content"))
        return ServerToolResultBlock(type=kind, tool_use_id=block["tool_use_id"], content=content)
    return None  # no other kind is asked for


def _without_nulls(value: Any) -> Any:
    """The SDK's dump fills every optional field the API left out with null; send back only what it sent."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


_KINDS = {
    400: "bad_request",
    401: "auth",
    403: "permission",
    404: "not_found",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
    529: "overloaded",
}
_ADVICE = {
    "auth": "the API key was rejected; check ANTHROPIC_API_KEY",
    "permission": "the key may not use this model or endpoint",
    "not_found": "the model id may be wrong; check the agent's model: field or --model",
    "rate_limited": "rate limited by the API; try again later or lower concurrency",
    "overloaded": "the API is overloaded; try again later",
    "bad_request": "the API rejected the request",
    "too_large": "the request is too large; pass fewer or smaller files",
}


def status_error(exc: Any) -> ModelCallError:
    status = int(getattr(exc, "status_code", 0) or 0)
    kind = _KINDS.get(status, "server_error" if status >= 500 else "unknown")
    detail = getattr(exc, "api_message", None) or getattr(exc, "message", None) or str(exc)
    advice = _ADVICE.get(kind, "the model API failed")
    return ModelCallError(
        f"Model API error {status} ({kind}): {advice}. API said: {detail}",
        kind=kind,
        status=status,
        retry_after_s=retry_after(getattr(exc, "response", None)),
    )


def retry_after(response: Any) -> float | None:
    """Seconds the API asked us to wait: `retry-after-ms`, else `retry-after` in seconds."""
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name, ""))
        except ValueError:
            continue
        if value >= 0:
            return value * scale
    return None
