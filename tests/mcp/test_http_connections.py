"""Stalled HTTP connections are closed, against a real `subagents serve` and raw sockets."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
from anyio.abc import SocketStream

from tests.helpers import http_server

pytestmark = pytest.mark.anyio

GUARD_S = 30  # far past the server's 5 s read timeout: only a connection left open reaches it
HEAD = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
STALLED_BODY = HEAD + b"Accept: application/json, text/event-stream\r\nContent-Length: 200\r\n\r\n{"
ONE_REQUEST = b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def read_until_closed(stream: SocketStream, drip: bytes = b"") -> bytes:
    """Everything the server sends until it closes the connection, sending `drip` a byte at a time meanwhile."""
    received = b""

    async def send_slowly() -> None:
        for byte in drip:
            await anyio.sleep(0.5)
            try:
                await stream.send(bytes([byte]))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return

    with anyio.fail_after(GUARD_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(send_slowly)
            while True:
                try:
                    received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
            tg.cancel_scope.cancel()
    return received


async def test_connections_that_stall_or_idle_are_closed(project: Path) -> None:
    cases = {
        "sends nothing": (b"", b""),
        "stalls mid-head": (HEAD, b""),
        "trickles its head": (b"", HEAD * 3),  # a byte every 0.5 s would take 50 s
        "stalls mid-body": (STALLED_BODY, b""),
        "idles on keep-alive": (ONE_REQUEST, b""),
    }
    received: dict[str, bytes] = {}
    with http_server("--root", str(project)) as (url, _proc):
        port = urlsplit(url).port
        assert port is not None

        async def open_and_stall(name: str, first: bytes, drip: bytes) -> None:
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                stream.extra(anyio.abc.SocketAttribute.raw_socket).setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if first:
                    await stream.send(first)
                received[name] = await read_until_closed(stream, drip)

        async with anyio.create_task_group() as tg:
            for name, (first, drip) in cases.items():
                tg.start_soon(open_and_stall, name, first, drip)
        assert set(received) == set(cases)  # every one was closed by the server, none reached the guard
        assert received["idles on keep-alive"].startswith(b"HTTP/1.1 404")  # it was answered, then closed
        assert received["sends nothing"] == received["stalls mid-head"] == b""


async def test_accepted_connections_send_without_nagle_delay() -> None:
    """The listening socket `bind_socket` opens is a TCP one as asyncio knows it, so every accepted connection
    gets TCP_NODELAY: with Nagle on, each small SSE write after the response head waited ~40 ms for an ACK."""
    import asyncio

    from subagents.mcp.http import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    nodelay: list[int] = []

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nodelay.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=sock)
    async with server:
        stream = await anyio.connect_tcp("127.0.0.1", sock.getsockname()[1])
        with anyio.fail_after(GUARD_S):
            await read_until_closed(stream)
    assert nodelay and nodelay[0] != 0
