"""What tracing costs: `subagents serve` with its span code but no tracer provider configured (how it runs
without the `otel` extra, or without OTEL_EXPORTER_OTLP_ENDPOINT), next to the same server from before the
span code existed (the commit before `server/subagents/telemetry.py` was added), for cold start and per-call
time, interleaved in one run. Both run from a `git archive` of their commit (HEAD, and the baseline) on
PYTHONPATH, so both import from the same kind of place. An informative row shows the cost with traces on, sent over
OTLP/HTTP to a collector on loopback that drops them.

    python -m benchmarks.tracing_overhead [--baseline REF] [--calls N] [--starts N]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio

from benchmarks.call_overhead import NO_FINDINGS, connect, timed_calls
from benchmarks.cold_start import KEY, one_start
from benchmarks.harness import Figure, Row, Summary, pair_ratios, percentile
from benchmarks.servers import REPO, base_env, ours
from subagents.messages import ModelRequest
from subagents.providers.testing import FakeMessagesServer, text
from subagents.telemetry import chat_span

SPAN_CODE = "server/subagents/telemetry.py"


def baseline_ref() -> str:
    """The commit before the span code was added."""
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", SPAN_CODE],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not added:
        raise SystemExit(f"{SPAN_CODE} is not in this clone's history: give --baseline REF")
    return f"{added[-1]}^"


def extract(ref: str, into: Path) -> Path:
    """The package's source at `ref`, for PYTHONPATH (it comes before the editable install's path)."""
    command = ["git", "archive", ref, "server", "agents", "claude_config"]
    archive = subprocess.run(command, cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "server"


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def collector() -> Iterator[str]:
    """An OTLP/HTTP endpoint on loopback that accepts and drops every export."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def cold(tmp: Path, sources: tuple[Path, Path], starts: int) -> Row:
    env = base_env(KEY) | {"PYTHONPATH": str(sources[0])}
    old = env | {"PYTHONPATH": str(sources[1])}
    mine, base = [], []
    for i in range(starts + 1):  # the first pair warms the page cache
        a = (await one_start(ours(4, tmp), env))[0]
        b = (await one_start(ours(4, tmp), old))[0]
        if i:
            mine.append(a)
            base.append(b)
    ratio = Summary.of(pair_ratios(mine, base))
    return Row(
        "cold start, spawn → tools/list (ms)",
        Summary.of(mine).show(),
        Summary.of(base).show(),
        ratio.show(digits=3),
        "≤ 1.05×",
        ratio.median <= 1.05,
    )


async def calls(tmp: Path, sources: tuple[Path, Path], count: int, traced: bool) -> Row:
    with FakeMessagesServer(lambda request: text(NO_FINDINGS)) as fake, collector() as endpoint:
        env = base_env({"ANTHROPIC_API_KEY": "bench", "ANTHROPIC_BASE_URL": fake.url, "PYTHONPATH": str(sources[0])})
        old = env | {"PYTHONPATH": str(sources[1])}
        if traced:
            env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        async with (
            connect(ours(4, tmp), env, False, None) as a,
            connect(ours(4, tmp / "old"), old, False, None) as b,
        ):
            mine, base = await timed_calls(a, b, "security-reviewer", "security-reviewer", count)
    added = Summary.of([a - b for a, b in zip(mine, base, strict=True)])  # pair by pair: drift cancels
    label = "one call, traces on (OTLP to loopback)" if traced else "one call, no tracer provider"
    return Row(
        f"{label} (ms)",
        f"{percentile(mine, 0.5):.2f} ({Summary.of(mine).show(digits=2)})",
        f"{percentile(base, 0.5):.2f} ({Summary.of(base).show(digits=2)})",
        f"{added.median:+.2f} ms (min {min(mine) - min(base):+.2f})",
        "" if traced else "≤ +0.5 ms",
        None if traced else added.median <= 0.5,
    )


def noop_spans(count: int) -> Row:
    """The span code's cost per span with no provider, in process: a model turn opens one, a tool call one."""
    request = ModelRequest(model="m", system="s", messages=())
    loops = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            with chat_span(request):
                pass
        loops.append((time.perf_counter() - start) / count * 1e6)
    base = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            with nullcontext():
                pass
        base.append((time.perf_counter() - start) / count * 1e6)
    ours_us, base_us = Summary.of(loops), Summary.of(base)
    return Row(
        "a span with no provider, in process (µs)",
        ours_us.show(digits=3),
        base_us.show(digits=3) + " (nullcontext)",
        f"{ours_us.median - base_us.median:+.3f} µs",
        "≤ +2 µs",
        ours_us.median - base_us.median <= 2.0,
    )


async def figure(tmp: Path, starts: int, count: int, ref: str | None = None) -> list[Figure]:
    ref = ref or baseline_ref()
    sources = (extract("HEAD", tmp / "head"), extract(ref, tmp / "baseline"))
    (tmp / "old").mkdir(exist_ok=True)
    columns = ("HEAD, with span code", f"before it ({ref[:12]})")
    fig = Figure("tracing overhead", "stdio, 4 agents, min / median / max", columns)
    fig.add(await cold(tmp, sources, starts))
    fig.add(await calls(tmp, sources, count, traced=False))
    fig.add(await calls(tmp, sources, count, traced=True))
    fig.add(noop_spans(100_000))
    fig.notes.append(f"{starts} starts and {count} calls each, interleaved; calls after 10 warm-up calls.")
    return [fig]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="the git ref to compare with (default: before the span code)")
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--starts", type=int, default=9)
    args = parser.parse_args()

    async def go() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for fig in await figure(Path(tmp), args.starts, args.calls, args.baseline):
                print(fig.render())

    anyio.run(go)


if __name__ == "__main__":
    main()
