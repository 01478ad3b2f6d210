"""Conversation caching: the input tokens of a 10-turn run (nine Reads, then a report) with the rolling cache
breakpoint on the newest turns, next to breakpoints on the system prompt and tools only (before). The fake
Messages API simulates the prompt cache as the API documents it, so its usage is the measurement."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.harness import Figure, Row
from subagents.app import Subagents
from subagents.budget import PriceTable
from subagents.config import Settings
from subagents.definitions.catalog import Layer, bundled_agents_dir, load_catalog
from subagents.messages import Usage
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text, tool_use

TURNS = 10


# The security reviewer declares an output schema: the last turn answers in it, so the run is TURNS turns.
REPORT = json.dumps(
    {
        "findings": [],
        "also_noted": [],
        "summary": {
            "reviewed": "app.py",
            "result": "0 critical, 0 high, 0 medium, 0 low",
            "fix_first": "-",
            "not_covered": "-",
        },
    }
)


def script(request: RecordedRequest) -> Reply:
    done = sum(1 for m in request.messages if m.get("role") == "assistant")
    return text(REPORT) if done >= TURNS - 1 else tool_use("Read", {"file_path": "app.py", "offset": done * 10 + 1})


async def one_run(root: Path, cached: bool) -> dict[str, int]:
    with FakeMessagesServer(script) as fake:
        provider = AnthropicProvider(
            AnthropicSettings(api_key="bench", base_url=fake.url, max_retries=0), cache_conversation=cached
        )
        app = Subagents(
            Settings(roots=(root,), project_dir=root), load_catalog([Layer("b", bundled_agents_dir())]), provider
        )
        async with app:
            outcome = await app.run("security-reviewer", "Review app.py")
        assert outcome.turns == TURNS, (outcome.turns, outcome.status, outcome.error)
        usages = fake.usages
    keys = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    return {k: sum(u[k] for u in usages) for k in keys}


async def figure(tmp: Path) -> list[Figure]:
    root = tmp / "repo"
    root.mkdir(exist_ok=True)
    (root / "app.py").write_text(
        "".join(f"def handler_{i}(request):\n    return request.args['q']\n" for i in range(200))
    )
    now, before = await one_run(root, True), await one_run(root, False)
    fig = Figure(
        "conversation caching",
        f"a {TURNS}-turn run, tokens summed over turns",
        ("cached conversation", "system + tools only"),
    )
    for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        fig.add(Row(key, f"{now[key]:,}", f"{before[key]:,}"))
    price = PriceTable().price("claude-sonnet-5-5")
    assert price is not None
    costs = [price.cost(Usage(output_tokens=0, **u)) for u in (now, before)]
    fig.add(
        Row("input cost at Sonnet 5.5 prices", f"${costs[0]:.4f}", f"${costs[1]:.4f}", f"{costs[0] / costs[1]:.2f}")
    )
    cut = 1 - now["input_tokens"] / before["input_tokens"]
    fig.add(Row("uncached input tokens saved", f"{cut:.0%}", "", "", "≥ 70%", cut >= 0.7))
    fig.notes.append("input_tokens are the tokens billed at the full input price; cache reads cost a tenth")
    return [fig]
