"""What the run store adds to one agent call, SQLite and PostgreSQL.

Runs the same two-turn call (a Read, then a report) against the package's fake Messages API on
loopback, alternating store off, SQLite and (with --postgres URL or SUBAGENTS_TEST_POSTGRES_URL)
PostgreSQL in one process, and prints min/median/max and what each store adds to the median.
The machine is shared and noisy: read the differences, not the absolute numbers.

    python benchmarks/call_overhead.py --calls 200 [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio

from subagents.app import Subagents
from subagents.config import Settings
from subagents.definitions.catalog import Layer, bundled_agents_dir, load_catalog
from subagents.history.store import store_for
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.testing import FakeMessagesServer, text, tool_use


def script(request: object) -> object:
    if getattr(request, "tool_results", None):
        return text("No findings of medium severity or above.")
    return tool_use("Read", {"file_path": "app.py"})


async def measure(calls: int, root: Path, stores: dict[str, str | None], url: str) -> dict[str, list[float]]:
    catalog = load_catalog([Layer("bundled", bundled_agents_dir())])
    settings = Settings(roots=(root,), project_dir=root)
    times: dict[str, list[float]] = {label: [] for label in stores}
    provider = AnthropicProvider(AnthropicSettings(api_key="bench", base_url=url, max_retries=0))
    async with AsyncExitStack() as stack:
        apps: dict[str, Subagents] = {}
        for label, location in stores.items():
            store = None if location is None else await stack.enter_async_context(store_for(location))
            apps[label] = await stack.enter_async_context(Subagents(settings, catalog, provider, store=store))
        for i in range(calls + 5):
            for label, app in apps.items():
                start = time.perf_counter()
                outcome = await app.run("security-reviewer", "Review app.py", files=["app.py"])
                elapsed = time.perf_counter() - start
                assert outcome.status == "completed", outcome.error
                if i >= 5:  # warm-up: imports, connection pools, SQLite page cache
                    times[label].append(elapsed * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--postgres", default=os.environ.get("SUBAGENTS_TEST_POSTGRES_URL"), help="a PostgreSQL URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeMessagesServer(script) as fake:
        root = Path(tmp) / "repo"
        root.mkdir()
        (root / "app.py").write_text("def handler(request):\n    return request.args['q']\n" * 50)
        stores: dict[str, str | None] = {"store off": None, "SQLite": str(Path(tmp) / "runs.db")}
        if args.postgres:
            stores["PostgreSQL"] = args.postgres
        times = anyio.run(measure, args.calls, root, stores, fake.url)
    off = statistics.median(times["store off"])
    print(f"One security-reviewer call (2 model turns, 1 Read) on a loopback fake model, {args.calls} calls each:\n")
    print("| store | min ms | median ms | max ms | adds (median) |")
    print("|---|---|---|---|---|")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| {label} | {min(values):.2f} | {median:.2f} | {max(values):.2f} | {median - off:+.2f} ms |")


if __name__ == "__main__":
    main()
