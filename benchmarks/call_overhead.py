"""What the run store adds to one agent call.

Runs the same two-turn call (a Read, then a report) against the package's fake Messages API on
loopback, alternating store on and store off in one process, and prints medians and their ratio.
The machine is shared and noisy: read the ratio, not the absolute numbers.

    python benchmarks/call_overhead.py --calls 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from subagents.app import Subagents
from subagents.config import Settings
from subagents.definitions.catalog import Layer, bundled_agents_dir, load_catalog
from subagents.history.store import RunStore
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.testing import FakeMessagesServer, text, tool_use

NO_FINDINGS = json.dumps(  # the reviewer answers in JSON that matches its output schema
    {
        "findings": [],
        "also_noted": [],
        "summary": {
            "reviewed": "app.py",
            "result": "No findings of medium severity or above.",
            "fix_first": "nothing urgent",
            "not_covered": "runtime configuration",
        },
    }
)


def script(request: object) -> object:
    if getattr(request, "tool_results", None):
        return text(NO_FINDINGS)
    return tool_use("Read", {"file_path": "app.py"})


async def measure(calls: int, root: Path, store_path: Path, url: str) -> dict[str, list[float]]:
    catalog = load_catalog([Layer("bundled", bundled_agents_dir())])
    settings = Settings(roots=(root,), project_dir=root)
    times: dict[str, list[float]] = {"store on": [], "store off": []}
    provider = AnthropicProvider(AnthropicSettings(api_key="bench", base_url=url, max_retries=0))
    with_store = Subagents(settings, catalog, provider, store=RunStore(store_path))
    without = Subagents(settings, catalog, provider, store=None)
    async with with_store, without:
        for i in range(calls + 5):
            for label, app in (("store on", with_store), ("store off", without)):
                start = time.perf_counter()
                outcome = await app.run("security-reviewer", "Review app.py", files=["app.py"])
                elapsed = time.perf_counter() - start
                assert outcome.status == "completed", outcome.error
                if i >= 5:  # warm-up: imports, connection pool, SQLite page cache
                    times[label].append(elapsed * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeMessagesServer(script) as fake:
        root = Path(tmp) / "repo"
        root.mkdir()
        (root / "app.py").write_text("def handler(request):\n    return request.args['q']\n" * 50)
        times = anyio.run(measure, args.calls, root, Path(tmp) / "runs.db", fake.url)
    on, off = statistics.median(times["store on"]), statistics.median(times["store off"])
    print(f"One security-reviewer call (2 model turns, 1 Read) on a loopback fake model, {args.calls} calls each:\n")
    print("| store | median ms | p90 ms |")
    print("|---|---|---|")
    for label, values in times.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"| {label} | {statistics.median(values):.2f} | {p90:.2f} |")
    print(f"\nratio store on / off: {on / off:.2f}  (the store adds {on - off:.2f} ms a call)")


if __name__ == "__main__":
    main()
