"""The pytest plugin, loaded through the `pytest11` entry point: fixtures to test agents offline.

- `fake_model`: the package's fake Messages API (`subagents.providers.testing.FakeMessagesServer`); give it a
  script with `set_script`, read what it received in `requests`.
- `subagents_server`: a factory of in-process servers on that fake; `subagents_server()` is the test's default
  server, configured by `@pytest.mark.subagents(agents=..., roots=..., bundled=..., **settings)`.
- `mcp_client`: the official `mcp.Client`, connected to the default server, in the era `mcp_mode` names
  ("auto", the default, or "legacy"; parametrize `mcp_mode` to run a test in both).

This module imports only pytest: the package is imported when a test asks for a fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mcp import Client

    from subagents.providers.testing import FakeMessagesServer
    from subagents.testing.harness import Mode, ServerFactory

MARKER = (
    "subagents(agents=..., roots=..., bundled=False, store=True, **settings): how the subagents_server and "
    "mcp_client fixtures build the test's default server (relative paths: from the test file's folder)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


@pytest.fixture
def fake_model() -> Iterator[FakeMessagesServer]:
    """The fake Messages API, started for this test; every request fails loudly until a script is set."""
    from subagents.providers.testing import FakeMessagesServer

    with FakeMessagesServer() as fake:
        yield fake


@pytest.fixture
def mcp_mode() -> Mode:
    """The protocol era `mcp_client` speaks: "auto" (2026-07-28) or "legacy" (the 2025-11-25 handshake)."""
    return "auto"


@pytest.fixture
def subagents_server(
    request: pytest.FixtureRequest,
    fake_model: FakeMessagesServer,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerFactory:
    """In-process servers on `fake_model`, reading the test's `tmp_path` unless told other roots."""
    from subagents.testing.harness import ServerFactory

    marker = request.node.get_closest_marker("subagents")
    if marker is not None and marker.args:
        raise pytest.UsageError("@pytest.mark.subagents takes keyword arguments only, e.g. agents='agents'")
    return ServerFactory(
        fake_model,
        base=request.path.parent,
        default_root=tmp_path,
        scratch=lambda: tmp_path_factory.mktemp("subagents-server"),
        defaults=dict(marker.kwargs) if marker is not None else {},
    )


@pytest.fixture
async def mcp_client(subagents_server: ServerFactory, mcp_mode: Mode) -> AsyncIterator[Client]:
    """An MCP client connected to the test's default server (`subagents_server()`)."""
    async with subagents_server().client(mode=mcp_mode) as client:
        yield client


both_eras = pytest.mark.parametrize("mcp_mode", ["legacy", "auto"])
"""Runs a test once in each protocol era: `mcp_client` (and `mcp_mode`) speak 2025-11-25, then 2026-07-28."""
