"""What each choice of `--patterns` costs every client, in tools/list bytes (clients carry it in context).

Builds the server with the bundled agents for each choice and measures the tools/list result as JSON, the
way it goes over the wire (about 4 bytes a token).

    python benchmarks/tools_list_bytes.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio
from mcp import Client

from subagents.app import Subagents
from subagents.config import Settings
from subagents.definitions.catalog import Layer, bundled_agents_dir, load_catalog
from subagents.mcp.server import build_server
from subagents.orchestration import PATTERNS
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings

CHOICES: list[tuple[str, tuple[str, ...]]] = [
    ("none", ()),
    *((name, (name,)) for name in PATTERNS),
    ("route,fan_out", ("route", "fan_out")),
    ("fan_out,debate", ("fan_out", "debate")),
    ("all", tuple(PATTERNS)),
]


async def tools_list_bytes(root: Path, patterns: tuple[str, ...]) -> tuple[int, int]:
    settings = Settings(roots=(root,), project_dir=root, patterns=patterns)
    app = Subagents(
        settings, load_catalog([Layer("bundled", bundled_agents_dir())]), AnthropicProvider(AnthropicSettings())
    )
    async with app, Client(build_server(app), mode="legacy") as client:
        listed = await client.session.list_tools()
    return len(listed.model_dump_json(by_alias=True, exclude_none=True)), len(listed.tools)


async def measure(root: Path) -> list[tuple[str, int, int]]:
    return [(label, *(await tools_list_bytes(root, patterns))) for label, patterns in CHOICES]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = anyio.run(measure, Path(tmp))
    base = rows[0][1]
    print("tools/list with the 4 bundled agents and the 4 run tools, by --patterns choice:\n")
    print("| --patterns | tools | bytes | added bytes | added tokens (~4 B each) |")
    print("|---|---|---|---|---|")
    for label, size, count in rows:
        default = " (default)" if label == "fan_out" else ""
        print(f"| {label}{default} | {count} | {size:,} | {size - base:,} | {(size - base) // 4:,} |")


if __name__ == "__main__":
    main()
