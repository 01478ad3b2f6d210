"""The fake Messages API's prompt cache, simulated the way the API documents it.

A request is read as one sequence of blocks: the tools, then the system blocks (and the structured-output
format, which the API builds into the prompt), then every message's content blocks. A block marked
`cache_control` is a breakpoint. The prefix up to a breakpoint is written to the cache; a later request
reads the longest cached prefix it shares, found by checking each of its breakpoints and up to
`LOOKBACK_BLOCKS` block boundaries before it. So the usage the fake reports (`cache_read_input_tokens`,
`cache_creation_input_tokens`, `input_tokens`) shows whether a client places its breakpoints well.
Prefixes are keyed by model, as the real cache is. There is no minimum cacheable
length and no expiry: tests stay small and deterministic.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

LOOKBACK_BLOCKS = 20


def approx_tokens(value: Any) -> int:
    """About four characters a token, like English text; never zero."""
    chars = value if isinstance(value, str) else json.dumps(value)
    return max(1, len(chars) // 4)


@dataclass(frozen=True)
class CacheUsage:
    read: int
    written: int
    uncached: int


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    system = body.get("system")
    blocks += [{"type": "text", "text": system}] if isinstance(system, str) else list(system or [])
    if isinstance(body.get("output_config"), dict):
        # The API builds the output format into the prompt, after the system prompt: part of the prefix, so a
        # new format misses the cache for everything after it (as its documentation says).
        blocks.append({"type": "output_config", "output_config": body["output_config"]})
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        role = message.get("role") if isinstance(message, dict) else None
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for index, block in enumerate(content or []):
            if isinstance(block, dict):
                # The role belongs to the prefix: the same text as user or assistant is another prompt.
                blocks.append({**block, "_role": role} if index == 0 else block)
    return blocks


def _without_marker(block: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k != "cache_control"}


class PromptCache:
    """Cached prefixes by hash; thread-safe, as the fake serves each connection on its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: set[str] = set()

    def account(self, body: dict[str, Any]) -> CacheUsage | None:
        """How many of the request's input tokens are read from the cache, written to it, or neither;
        None when the request asks for no caching at all."""
        blocks = _blocks(body)
        marks = [i for i, b in enumerate(blocks) if "cache_control" in b]
        if body.get("cache_control") and blocks:  # the top-level switch marks the last block
            marks.append(len(blocks) - 1)
        if not marks:
            return None
        prefix_hashes, prefix_tokens = [], []
        digest, tokens = hashlib.sha256(str(body.get("model", "")).encode()), 0
        for block in blocks:
            canonical = json.dumps(_without_marker(block), sort_keys=True)  # key order changes no length
            digest.update(canonical.encode())
            tokens += approx_tokens(canonical)
            prefix_hashes.append(digest.hexdigest())
            prefix_tokens.append(tokens)
        with self._lock:
            hit = max(
                (
                    p
                    for m in marks
                    for p in range(m, max(m - LOOKBACK_BLOCKS, -1), -1)
                    if prefix_hashes[p] in self._written
                ),
                default=-1,
            )
            self._written.update(prefix_hashes[m] for m in marks)
        read = prefix_tokens[hit] if hit >= 0 else 0
        last = max(marks)
        written = prefix_tokens[last] - read if last > hit else 0
        total = approx_tokens(body)
        return CacheUsage(read=read, written=written, uncached=max(1, total - read - written))
