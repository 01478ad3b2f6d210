"""The servers a figure compares, as commands, plus what they need: agent folders of any size, a fresh store,
free ports, and the memory of a process tree read from /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import httpx2

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable
AGENT = """---
name: {name}
description: Reviews {topic} for correctness and risk; use after changing {topic}. Give it a self-contained task.
tools: Read, Grep, Glob
model: sonnet
---
You review {topic}. For each finding give file:line, the problem and a minimal fix.
"""


def agents_dir(root: Path, count: int) -> Path:
    """`count` agent files; with the four bundled ones left out, the catalog holds exactly `count`."""
    folder = root / f"agents-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"agent-{i:03d}.md").write_text(AGENT.format(name=f"agent-{i:03d}", topic=f"module {i}"))
    return folder


def ours(agents: int, tmp: Path, *extra: str) -> list[str]:
    """`subagents serve` with `agents` agents: the bundled four, or a generated folder without them."""
    args = [PY, "-m", "subagents", "serve", "--root", str(REPO), "--store", str(tmp / "runs.db")]
    if agents != 4:
        args += ["--no-bundled", "--agents-dir", str(agents_dir(tmp, agents))]
    return [*args, *extra]


def bare(tools: int, *extra: str) -> list[str]:
    return [PY, str(HERE / "bare_server.py"), "--tools", str(tools), *extra]


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SUBAGENTS_", "CLAUDE_"))}
    return env | dict(extra or {})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_http(url: str) -> None:
    with anyio.fail_after(30):
        async with httpx2.AsyncClient() as http:
            while True:
                try:
                    await http.get(url, timeout=1)
                    return
                except httpx2.HTTPError:
                    await anyio.sleep(0.05)


@asynccontextmanager
async def http_server(command: list[str], env: dict[str, str]) -> AsyncIterator[str]:
    """Serve `command` (a server taking --transport http --port P) and yield its /mcp URL."""
    port = free_port()
    args = [*command, "--transport", "http", "--port", str(port)]
    proc = await anyio.open_process(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        await wait_http(url)
        yield url
    finally:
        proc.terminate()
        with anyio.move_on_after(15):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    total, seen, stack = 0, set(), [pid]
    children = _children()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss_kib(p)
        stack += children.get(p, [])
    return total / 1024


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@contextmanager
def project(tmp: Path) -> Iterator[Path]:
    """A small repository for calls that read files."""
    root = tmp / "repo"
    root.mkdir(exist_ok=True)
    (root / "app.py").write_text("def handler(request):\n    return request.args['q']\n" * 50)
    yield root
