"""An in-process subagents server on the fake Messages API: the app, its MCP server, and connected clients.

The pytest plugin (`subagents.testing.plugin`) hands these out as fixtures; they work without pytest too::

    with FakeMessagesServer(script) as fake:
        server = InProcessServer(build_app(fake, [project], agents=[Path("agents")]))
        async with server.client() as client:
            result = await client.call_tool("api-reviewer", {"task": "Review api/users.py"})
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from subagents.app import Subagents
from subagents.budget import PriceTable
from subagents.config import Settings
from subagents.definitions.catalog import Layer, bundled_agents_dir, load_catalog
from subagents.history.store import RunStore
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.base import ModelProvider
from subagents.providers.resilience import ResilientProvider, RetryPolicy
from subagents.providers.testing import FakeMessagesServer

if TYPE_CHECKING:
    from mcp import Client
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ListRootsResult

TEST_KEY = "test-key"
Mode = Literal["legacy", "auto"]  # the handshake era (2025-11-25), or the newest both sides speak (2026-07-28)


class AgentFileError(Exception):
    """An agent file the test gave cannot be loaded: the test should fail and say why, not serve fewer agents."""


def model_env(fake: FakeMessagesServer) -> dict[str, str]:
    """The environment that points a `subagents` process (or the anthropic SDK) at the fake."""
    return {"ANTHROPIC_API_KEY": TEST_KEY, "ANTHROPIC_BASE_URL": fake.url}


def build_app(
    fake: FakeMessagesServer | None,
    roots: Sequence[Path],
    *,
    agents: Sequence[Path] = (),
    bundled: bool = False,
    store: RunStore | None = None,
    owns_store: bool = False,
    resilient: RetryPolicy | None = None,
    prices: PriceTable | None = None,
    strict: bool = False,
    **settings: Any,
) -> Subagents:
    """An app on the fake model (no fake: no credentials), reading `roots`, serving `agents` (folders or
    files, later ones win) over the bundled specialists when `bundled`. `resilient` wraps the provider in the
    retry/breaker layer. `store` must be open, unless owns_store (then the app opens and closes it). With
    `strict`, an agent file that does not load raises AgentFileError."""
    layers = [Layer("bundled", bundled_agents_dir())] if bundled else []
    layers += [Layer("agents-dir", path) for path in agents]
    catalog = load_catalog(layers, require_dirs=tuple(agents))
    if strict and catalog.errors:
        raise AgentFileError("; ".join(str(problem) for problem in catalog.errors))
    given = {"roots": tuple(root.resolve() for root in roots), "project_dir": roots[0] if roots else None}
    config = Settings(**(given | settings))
    creds = AnthropicSettings(api_key=TEST_KEY, base_url=fake.url, max_retries=0) if fake else AnthropicSettings()
    provider: ModelProvider = AnthropicProvider(creds)
    if resilient is not None:
        provider = ResilientProvider(provider, resilient, fallback_model=config.fallback_model)
    return Subagents(config, catalog, provider, store=store, prices=prices, owns_store=owns_store)


class InProcessServer:
    """One app and its MCP server, in this process. Clients share the app: it is open while any is connected."""

    def __init__(self, app: Subagents, fake: FakeMessagesServer | None = None) -> None:
        self.app = app
        self.fake = fake
        self._mcp: MCPServer | None = None
        self._open = 0

    @property
    def mcp(self) -> MCPServer:
        """The MCP server, built on first use (the `mcp` SDK is imported then, not before)."""
        if self._mcp is None:
            from subagents.mcp.server import build_server

            self._mcp = build_server(self.app)
        return self._mcp

    @property
    def roots(self) -> tuple[Path, ...]:
        return self.app.roots()

    async def __aenter__(self) -> Subagents:
        if self._open == 0:
            await self.app.__aenter__()
        self._open += 1
        return self.app

    async def __aexit__(self, *exc_info: object) -> None:
        self._open -= 1
        if self._open == 0:
            await self.app.__aexit__(None, None, None)

    @asynccontextmanager
    async def client(self, mode: Mode = "auto", **options: Any) -> AsyncIterator[Client]:
        """A connected official `mcp.Client` (`options` go to it: list_roots_callback, message_handler, …)."""
        from mcp import Client

        async with self, Client(self.mcp, mode=mode, **options) as client:
            yield client


def client_roots(*paths: Path) -> Callable[[object], Awaitable[ListRootsResult]]:
    """A `list_roots_callback` for `client()`: the client declares these folders as its roots."""
    from mcp.types import ListRootsResult, Root

    async def callback(_context: object) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=p.resolve().as_uri(), name=p.name) for p in paths])  # type: ignore[arg-type]

    return callback


PathArg = str | Path
_THE_FAKE: Any = object()  # `fake=` not given: the factory's own fake model


class ServerFactory:
    """`subagents_server(...)` in a test: in-process servers on the test's fake model.

    Relative paths are taken from the test file's folder. Called with no arguments it returns the test's
    default server (the one `mcp_client` connects to), built from the `subagents` marker's arguments."""

    def __init__(
        self,
        fake: FakeMessagesServer | None,
        *,
        base: Path,
        default_root: Path,
        scratch: Callable[[], Path],
        defaults: dict[str, Any] | None = None,
    ) -> None:
        self.fake = fake
        self._base = base
        self._default_root = default_root
        self._scratch = scratch  # a fresh folder for each server's own files (its run store)
        self._defaults = dict(defaults or {})
        self._default: InProcessServer | None = None

    def __call__(
        self,
        agents: PathArg | Sequence[PathArg] | None = None,
        roots: PathArg | Sequence[PathArg] | None = None,
        *,
        bundled: bool | None = None,
        store: bool | PathArg | RunStore | None = None,
        fake: FakeMessagesServer | None = _THE_FAKE,
        **settings: Any,
    ) -> InProcessServer:
        """A server for `agents` (folders or files) reading `roots` (default: the test's tmp_path; `()`: none
        given, as `serve` without --root, so a local client's roots apply), with the bundled specialists only
        when `bundled`. `store`: True (default) a SQLite file of its own, False none,
        a path or URL, or an open RunStore. `settings` are `subagents.config.Settings` fields."""
        given = {"agents": agents, "roots": roots, "bundled": bundled, "store": store, **settings}
        given = {key: value for key, value in given.items() if value is not None}
        if fake is _THE_FAKE and not given:
            if self._default is None:
                self._default = self._build(self.fake, self._defaults)
            return self._default
        return self._build(self.fake if fake is _THE_FAKE else fake, self._defaults | given)

    def _build(self, fake: FakeMessagesServer | None, options: dict[str, Any]) -> InProcessServer:
        options = dict(options)
        agents = [self._path(p, "agents") for p in _paths(options.pop("agents", ()))]
        given_roots = options.pop("roots", None)
        roots = [self._path(p, "roots") for p in _paths(self._default_root if given_roots is None else given_roots)]
        store, owns = self._store(options.pop("store", True))
        app = build_app(
            fake,
            roots,
            agents=agents,
            bundled=bool(options.pop("bundled", False)),
            store=store,
            owns_store=owns,
            strict=True,
            **options,
        )
        return InProcessServer(app, fake)

    def _path(self, value: PathArg, what: str) -> Path:
        path = Path(value).expanduser()
        path = path if path.is_absolute() else self._base / path
        if not path.exists():
            raise FileNotFoundError(
                f"subagents_server: {what} {str(path)!r} does not exist (relative paths are "
                "taken from the test file's folder)"
            )
        return path

    def _store(self, value: bool | PathArg | RunStore) -> tuple[RunStore | None, bool]:
        from subagents.history.store import store_for

        if value is False:
            return None, False
        if value is True:
            return store_for(self._scratch() / "runs.db"), True
        if isinstance(value, str | Path):
            return store_for(value), True
        return value, False


def _paths(value: PathArg | Sequence[PathArg]) -> list[PathArg]:
    return [value] if isinstance(value, str | Path) else list(value)
