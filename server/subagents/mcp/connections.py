"""HTTP connections that stall are closed: uvicorn's h11 protocol with a read deadline.

uvicorn times out an idle keep-alive connection only until the first byte arrives, and a new
connection not at all, so a client that opens sockets and sends nothing, or half a request head, holds
them for ever. Here the client gets `timeout_keep_alive` seconds:

- to send a whole request head, from connecting or from the end of the previous response, counted once
  however slowly the bytes trickle in (so nothing sent, a stalled head and an idle keep-alive are all
  closed);
- between two pieces of a request body it is sending;
- and no limit while the server answers (an agent run streaming its progress over SSE).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

Owed = Literal["head", "body"] | None


class ReadDeadlineProtocol(H11Protocol):
    """H11Protocol that closes a connection whose client owes a request head or body for too long."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._watching: tuple[Owed, object] = (None, None)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch(progress=False)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch(progress=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch(progress=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _owed(self) -> Owed:
        if self.cycle is None or self.cycle.response_complete:
            return "head"  # between requests: the next one, or what is left of an unwanted body
        return "body" if self.conn.their_state is h11.SEND_BODY else None

    def _watch(self, *, progress: bool) -> None:
        """Start, keep or drop the deadline for what the client owes now."""
        owed = self._owed()
        watching = (owed, self.cycle)
        if watching == self._watching and not (progress and owed == "body"):
            return  # the same head still owed: trickling bytes does not buy more time
        self._cancel()
        self._watching = watching
        if owed is not None and not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.timeout_keep_alive, self._expire)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        owed = self._owed()
        if owed is None or self.transport.is_closing():
            return
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.info("closed the connection from %s: no request %s within %d s", peer, owed, self.timeout_keep_alive)
        self.transport.close()
