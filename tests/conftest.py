"""Shared fixtures. No test needs a key or the network: the model is the package's fake server."""

from __future__ import annotations

import collections.abc
import os
from pathlib import Path

import pytest

from subagents.app import RunOutcome, Subagents
from subagents.budget import PriceTable
from subagents.config import Settings
from subagents.definitions.catalog import Layer, bundled_agents_dir, load_catalog
from subagents.history.store import RunStore
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.base import ModelProvider
from subagents.providers.resilience import ResilientProvider, RetryPolicy
from subagents.providers.testing import FakeMessagesServer
from subagents.tools.jail import Jail, find_jail
from tests.stores import backend, store_location

__all__ = ["backend", "store_location"]  # fixtures: each store test runs on SQLite and on PostgreSQL

# Read at import: the autouse fixture below clears SUBAGENTS_* for each test. CI sets it.
REQUIRE_BWRAP = os.environ.get("SUBAGENTS_REQUIRE_BWRAP") == "1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials, home directory or store leak into a test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "SUBAGENTS_", "CLAUDE_")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bwrap() -> Jail:
    """A working bubblewrap, for tests of Bash: they fail without one under SUBAGENTS_REQUIRE_BWRAP=1, else skip."""
    jail = find_jail()
    if isinstance(jail, str):
        if REQUIRE_BWRAP:
            pytest.fail(f"SUBAGENTS_REQUIRE_BWRAP=1, but: {jail}")
        pytest.skip(jail)
    return jail


def write_agent(directory: Path, filename: str, frontmatter: str, body: str = "You are a test agent.") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(f"---\n{frontmatter.strip()}\n---\n{body}\n", encoding="utf-8")
    return path


# --- the fake model and an app wired to it ---


TEST_KEY = "test-key"


@pytest.fixture
def fake_model() -> collections.abc.Iterator[FakeMessagesServer]:
    with FakeMessagesServer() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small repository the subagents may read."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text(
        "import sqlite3\n\ndef find(db, name):\n"
        "    return db.execute(f\"SELECT * FROM users WHERE name = '{name}'\")\n",
        encoding="utf-8",
    )
    (root / "README.md").write_text("# demo project\n", encoding="utf-8")
    return root


def model_env(fake: FakeMessagesServer) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": TEST_KEY, "ANTHROPIC_BASE_URL": fake.url}


def make_app(
    fake: FakeMessagesServer | None,
    root: Path,
    *,
    agents_dir: Path | None = None,
    bundled: bool = True,
    store: RunStore | None = None,
    resilient: RetryPolicy | None = None,
    prices: PriceTable | None = None,
    owns_store: bool = False,
    **settings: object,
) -> Subagents:
    """An app on the fake model. `resilient` wraps the provider in our retry/breaker layer. `store` must be
    open, unless owns_store (then the app opens and closes it)."""
    layers = [Layer("bundled", bundled_agents_dir())] if bundled else []
    if agents_dir is not None:
        layers.append(Layer("agents-dir", agents_dir))
    config = Settings(**({"roots": (root.resolve(),), "project_dir": root} | settings))  # type: ignore[arg-type]
    creds = AnthropicSettings(api_key=TEST_KEY, base_url=fake.url, max_retries=0) if fake else AnthropicSettings()
    provider: ModelProvider = AnthropicProvider(creds)
    if resilient is not None:
        provider = ResilientProvider(provider, resilient, fallback_model=config.fallback_model)
    return Subagents(config, load_catalog(layers), provider, store=store, prices=prices, owns_store=owns_store)


async def run_once(app: Subagents, agent: str, task: str, **kwargs: object) -> RunOutcome:
    """Run one call and close the app's HTTP client before the event loop ends."""
    async with app:
        return await app.run(agent, task, **kwargs)  # type: ignore[arg-type]
