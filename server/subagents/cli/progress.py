"""What a terminal shows while one run goes: a live line on a TTY, plain lines otherwise.

The live line (turn, the tool being called, tokens, cost, elapsed) is drawn with `rich`, imported only
here and only when stderr is a terminal: the server never imports it. Everything goes to stderr, so the
report on stdout can be piped.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any

from subagents.events import RunEvent
from subagents.messages import Usage


def describe(agent: str, event: RunEvent | None, elapsed_s: float) -> str:
    """`security-reviewer · turn 2/20: Read "app.py" · 1,204 in / 88 out tokens · $0.0031 · 4.2 s`"""
    if event is None:
        return f"{agent} · starting · {elapsed_s:.1f} s"
    step = event.message.removeprefix(f"turn {event.turn}/{event.max_turns}: ")
    parts = [agent, f"turn {event.turn}/{event.max_turns}: {step}"]
    if event.usage is not None:
        parts.append(tokens(event.usage))
    if event.cost_usd is not None or event.usage is not None:
        parts.append(cost(event.cost_usd))
    parts.append(f"{elapsed_s:.1f} s")
    return " · ".join(parts)


def tokens(usage: Usage) -> str:
    read = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    return f"{read:,} in / {usage.output_tokens:,} out tokens"


def cost(cost_usd: float | None) -> str:
    return "cost unknown" if cost_usd is None else f"${cost_usd:.4f}"


class RunProgress:
    """An event sink for `Subagents.run`, used as a context manager around the run."""

    def __init__(self, agent: str, *, stream: IO[str] | None = None, live: bool | None = None) -> None:
        self.agent = agent
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.last: RunEvent | None = None
        self._live: Any = None
        self._spinner: Any = None
        self._want_live = self.stream.isatty() if live is None else live

    def line(self) -> str:
        return describe(self.agent, self.last, time.monotonic() - self.started)

    async def __call__(self, event: RunEvent) -> None:
        previous, self.last = self.last, event
        if self._live is None and (previous is None or previous.message != event.message):
            print(f"subagents: {self.line()}", file=self.stream, flush=True)

    def __enter__(self) -> RunProgress:
        if self._want_live:
            self._start_live()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()  # the line goes away; the summary line replaces it
            self._live = None

    def _start_live(self) -> None:
        try:
            from rich.console import Console
            from rich.live import Live
            from rich.spinner import Spinner
        except ImportError:  # installed without rich: plain lines
            return
        self._spinner = Spinner("dots", style="cyan")
        progress = self

        class _Line:
            def __rich__(self) -> Any:
                progress._spinner.update(text=progress.line())
                return progress._spinner

        console = Console(file=self.stream, highlight=False)
        self._live = Live(_Line(), console=console, refresh_per_second=8, transient=True)
        self._live.start()
