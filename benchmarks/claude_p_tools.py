"""Does `claude -p` see our tools? How often, for each way of configuring the server, and how long our
`initialize` takes against a bare MCP SDK server.

Claude Code 2.1 starts a `-p` session without waiting long for stdio MCP servers: one that has not
answered in time is missing for the whole session. This script runs N `claude -p hi` sessions per
configuration, each with its model on the package's fake, and counts the sessions whose first model
request offered `mcp__subagents__*` tools. It needs Claude Code from tests/interop/setup.sh.

    python -m benchmarks.claude_p_tools [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Summary
from subagents.providers.testing import FakeMessagesServer, text

REPO = Path(__file__).resolve().parents[1]
TOOLS = Path(os.environ.get("SUBAGENTS_INTEROP_DIR") or REPO / ".interop") / "node_modules"
SERVER = [sys.executable, "-m", "subagents", "serve"]
BARE = [sys.executable, "-c", "from mcp.server.mcpserver import MCPServer; MCPServer('bare').run()"]
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}},
}
CONFIGS = {
    "plain entry": ({}, {}),
    'with "alwaysLoad": true (what install writes)': ({"alwaysLoad": True}, {}),
    "plain, MCP_CONNECTION_NONBLOCKING=false": ({}, {"MCP_CONNECTION_NONBLOCKING": "false"}),
}


def initialize_ms(command: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(json.dumps(INIT) + "\n")
    proc.stdin.flush()
    proc.stdout.readline()
    elapsed = (time.perf_counter() - started) * 1000
    proc.stdin.close()
    proc.wait(timeout=30)
    return elapsed


def session_sees_tools(claude: str, extra: dict[str, object], env_extra: dict[str, str]) -> bool:
    with tempfile.TemporaryDirectory(prefix="claude-p-") as tmp, FakeMessagesServer(lambda _: text("ok")) as fake:
        home, project = Path(tmp), Path(tmp) / "project"
        project.mkdir()
        entry = {"type": "stdio", "command": SERVER[0], "args": [*SERVER[1:], "--no-store"], **extra}
        (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"subagents": entry}}))
        (project / ".claude").mkdir()
        (project / ".claude" / "settings.local.json").write_text('{"enabledMcpjsonServers": ["subagents"]}')
        (home / ".claude.json").write_text(json.dumps({"projects": {str(project): {"hasTrustDialogAccepted": True}}}))
        env = {
            "HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "ENABLE_TOOL_SEARCH": "false",  # tools offered up front, so the first request shows them
            "ANTHROPIC_BASE_URL": fake.url,
            "ANTHROPIC_API_KEY": "sk-ant-bench-dummy",
            **env_extra,
        }
        subprocess.run([claude, "-p", "hi"], env=env, cwd=project, capture_output=True, timeout=180)
        main = [r for r in fake.requests if len(r.tool_names) > 3]
        return bool(main) and any(n.startswith("mcp__subagents__") for n in main[0].tool_names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    found = sorted(TOOLS.glob("@anthropic-ai/claude-code-*/claude"))
    if not found:
        print(f"Claude Code is not installed in {TOOLS}: run tests/interop/setup.sh", file=sys.stderr)
        return 2
    ours = [initialize_ms([*SERVER, "--no-store"]) for _ in range(args.runs)]
    bare = [initialize_ms(BARE) for _ in range(args.runs)]
    print(f"spawn → initialize answered (ms), min / median / max, {os.getloadavg()[0]:.1f} load")
    print(f"  subagents serve: {Summary.of(ours).show()}\n  bare MCPServer:  {Summary.of(bare).show()}\n")
    print("| configuration | sessions whose model saw mcp__subagents__* |\n|---|---|")
    for label, (extra, env_extra) in CONFIGS.items():
        seen = sum(session_sees_tools(str(found[0]), extra, env_extra) for _ in range(args.runs))
        print(f"| {label} | {seen}/{args.runs} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
