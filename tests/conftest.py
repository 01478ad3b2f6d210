"""Shared fixtures. No test needs a key or the network: the model is the package's fake server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from subagents.app import RunOutcome, Subagents
from subagents.budget import PriceTable
from subagents.history.sqlite import SQLiteRunStore
from subagents.history.store import RunStore
from subagents.providers.resilience import RetryPolicy
from subagents.providers.testing import FakeMessagesServer
from subagents.testing.harness import TEST_KEY, build_app, model_env
from subagents.tools.jail import Jail, find_jail
from tests.stores import backend, store_location

# Fixtures (each store test runs on SQLite and on PostgreSQL), and the harness's names tests import from here.
__all__ = ["TEST_KEY", "backend", "model_env", "store_location"]

# Read at import: the autouse fixture below clears SUBAGENTS_* for each test. CI sets it.
REQUIRE_BWRAP = os.environ.get("SUBAGENTS_REQUIRE_BWRAP") == "1"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """One worker more than the cores: most tests wait on a server process or a socket, not the CPU."""
    return min((os.cpu_count() or 1) + 1, 8)


# The files whose tests take longest (each starts `subagents` processes), longest first. xdist hands tests
# out in collection order, so these start at once on every worker and the short tests fill the end,
# instead of a four-minute README run starting last and leaving the other workers idle.
SLOW_FIRST = (
    "tests/test_readme.py",
    "tests/testing/test_wheel.py",
    "tests/orchestration/test_team_restart.py",
    "tests/test_queue_replicas.py",
    "tests/test_hostile_glob_server.py",
    "tests/test_serve_runs.py",
    "tests/cli/test_first_ten.py",
    "tests/mcp/test_principals_http.py",
    "tests/mcp/test_run_caps.py",
    "tests/cli/test_cli.py",
    "tests/evals/test_eval_cli.py",
    "tests/test_serve.py",
    "tests/test_otel_serve.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the longest tests first, so that the suite does not end on one of them alone."""
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


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


# --- an app on the fake model: the public plugin's code (subagents.testing), with this suite's defaults ---
# The `fake_model` fixture itself comes from the plugin (the package's pytest11 entry point).


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
    """An app on the fake model, reading `root`, with the bundled agents. `resilient` wraps the provider in our
    retry/breaker layer. `store` must be open, unless owns_store (then the app opens and closes it). A `roots`
    setting replaces the root (`roots=()`: none given, so the client's roots, else `root` as the project)."""
    roots = settings.pop("roots", [root])
    return build_app(
        fake,
        roots,  # type: ignore[arg-type]
        project_dir=root,
        agents=[agents_dir] if agents_dir is not None else [],
        bundled=bundled,
        store=store,
        owns_store=owns_store,
        resilient=resilient,
        prices=prices,
        **settings,
    )


async def run_once(app: Subagents, agent: str, task: str, **kwargs: object) -> RunOutcome:
    """Run one call and close the app's HTTP client before the event loop ends."""
    async with app:
        return await app.run(agent, task, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RunStore]:
    """A fresh SQLite run store per test, for tests that read back what the runs recorded."""
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        yield store
