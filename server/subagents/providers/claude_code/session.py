"""One Claude Code process, and the state that must belong to it alone.

A session is owned by one task (`serve`), which starts the process, reads everything it says and routes
each message to the generation (one prompt and its answer) it belongs to. Everything a run could mix
up with another run's lives on the session object: the pending messages of its current generation,
its interrupt flag and its generation counter. Cancelling one session never touches another, and a
message that arrives for a generation nobody waits on any more (the run timed out) is dropped.

Only one generation is ever open: a new prompt is refused until the previous one's result came back,
because Claude Code may fold a prompt sent mid-turn into the running turn.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import math
import sys
import time
from collections import deque
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from subagents.errors import ModelCallError
from subagents.providers.claude_code.options import SessionConfig, sdk_options
from subagents.providers.claude_code.policy import ToolPolicy

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
INTERRUPT_GRACE_S = 5.0  # how long an interrupted generation may take to hand back its result
STOP_TIMEOUT_S = 20.0
NO_RUN = "Refused: no run owns this session."

State = Literal["starting", "idle", "busy", "dead"]
_numbers = itertools.count(1)


@dataclass
class _Generation:
    number: int
    send: MemoryObjectSendStream[Any]
    settled: anyio.Event  # its result came back (or the session died)


class Session:
    """A Claude Code process for one `SessionConfig`. Start it with `serve` in a task group."""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.number = next(_numbers)  # for logs
        self.state: State = "starting"
        self.generation = 0  # bumped for every prompt sent
        self.interrupted = False  # the current generation was abandoned (cancelled, timed out, over budget)
        self.policy: ToolPolicy | None = None  # the owning run's; None refuses every tool call
        self.problem: str | None = None  # why it did not start, or died
        self.pid: int | None = None
        self.connected = False  # the process started and answered the handshake
        self.claude_session_id: str | None = None
        self.dropped = 0  # messages of abandoned generations, never delivered
        self.refusals: list[str] = []  # tool calls the policy refused, for the log
        self.last_used = time.monotonic()
        self.ready = anyio.Event()  # started, or failed to
        self.ended = anyio.Event()
        self._open: deque[_Generation] = deque()  # sent, result not back yet (never more than one)
        self._current: _Generation | None = None  # the one a run waits on
        self._client: Any = None
        self._scope = anyio.CancelScope()
        self._stderr: deque[str] = deque(maxlen=20)

    @property
    def alive(self) -> bool:
        return self.state in ("idle", "busy")

    @property
    def clean(self) -> bool:
        """Ready for a prompt: alive, nothing of an earlier generation still on its way."""
        return self.state == "idle" and not self._open

    async def serve(self) -> None:
        """The owner task: start the process, route what it says, stop it. Never raises an Exception."""
        client: Any = None
        try:
            with self._scope:
                with anyio.fail_after(START_TIMEOUT_S):
                    sdk = await import_sdk()
                    client = sdk.ClaudeSDKClient(sdk_options(self.config, self._check, self._stderr.append))
                    await client.connect()
                self._client, self.pid, self.state, self.connected = client, _pid(client), "idle", True
                self.last_used = time.monotonic()
                self.ready.set()
                log.info("claude code session %d started (pid %s) for %s", self.number, self.pid, self.config.agent)
                async for message in client.receive_messages():
                    self._route(message)
                self.problem = self.problem or "the Claude Code process ended"
        except Exception as exc:
            self.problem = self._describe(exc)
            log.warning("claude code session %d for %s: %s", self.number, self.config.agent, self.problem)
        finally:
            self._end()
            if client is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_TIMEOUT_S):
                    await client.disconnect()
            self.ended.set()

    async def ask(self, prompt: str) -> MemoryObjectReceiveStream[Any]:
        """Send a prompt as a new generation; its messages arrive on the returned stream, result last."""
        if not self.clean:
            raise ModelCallError(
                f"Claude Code session {self.number} is not ready for a prompt ({self.problem or self.state}).",
                kind="claude_code",
            )
        self.generation += 1
        self.interrupted = False
        send, receive = anyio.create_memory_object_stream[Any](math.inf)  # the generation's pending messages
        current = _Generation(self.generation, send, anyio.Event())
        self._current = current
        self._open.append(current)
        self.state = "busy"
        try:
            await self._client.query(prompt)
        except Exception as exc:
            self.close()
            raise ModelCallError(
                f"Claude Code did not take the prompt: {self._describe(exc)}", kind="claude_code"
            ) from exc
        return receive

    def done(self) -> None:
        """The run got its result: the session is idle again, its generation closed."""
        self._detach()
        if self.state == "busy" and not self._open:
            self.state = "idle"
        self.last_used = time.monotonic()

    async def abandon(self) -> bool:
        """Stop the current generation (the run was cancelled or timed out). True when the session is
        clean again: interrupted, and its result came back and was dropped."""
        self.interrupted = True
        self._detach()
        pending = self._open[0] if self._open else None
        if pending is not None and self.alive:
            with anyio.CancelScope(shield=True), anyio.move_on_after(INTERRUPT_GRACE_S):
                try:
                    await self._client.interrupt()
                except Exception as exc:  # the process is gone or wedged: it will not settle
                    log.info("claude code session %d took no interrupt: %s", self.number, exc)
                else:
                    await pending.settled.wait()
        self.done()
        settled = self.clean
        if not settled:
            log.info("claude code session %d did not settle after an interrupt; stopping it", self.number)
            self.close()
        return settled

    def fail(self, problem: str) -> None:
        """The session cannot start at all (before `serve`): say why to whoever waits for it."""
        self.problem = problem
        self._end()
        self.ended.set()

    def close(self) -> None:
        """Stop the process (the owner task disconnects it). Safe to call twice."""
        self._scope.cancel()
        if self.state != "dead":
            self.problem = self.problem or "closed"

    def _route(self, message: Any) -> None:
        from claude_agent_sdk import ResultMessage

        if not self._open:
            return  # between generations: Claude Code's own notes (state changes), nobody's answer
        generation = self._open[0]
        if isinstance(message, ResultMessage):
            self._open.popleft()
            self.claude_session_id = message.session_id
            generation.settled.set()
        current = self._current
        if current is generation and not self.interrupted:
            current.send.send_nowait(message)
        else:
            self.dropped += 1
            log.debug(
                "claude code session %d dropped a %s of generation %d (current %d)",
                self.number,
                type(message).__name__,
                generation.number,
                self.generation,
            )

    async def _check(self, tool: str, args: dict[str, Any]) -> str | None:
        refusal = NO_RUN if self.policy is None else self.policy.check(tool, args)
        if refusal is not None:
            self.refusals.append(f"{tool}: {refusal}")
            log.info("claude code session %d refused %s: %s", self.number, tool, refusal)
        return refusal

    def _detach(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            current.send.close()

    def _end(self) -> None:
        self.state = "dead"
        self.ready.set()
        self._detach()  # a waiting run sees the end of its stream
        for generation in self._open:
            generation.settled.set()

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            text = f"Claude Code did not start within {START_TIMEOUT_S:g} s"
        else:
            text = f"{type(exc).__name__}: {exc}".strip()
        tail = " | ".join(line for line in self._stderr if line.strip())[-600:]
        return f"{text} (Claude Code said: {tail})" if tail else text


async def import_sdk() -> ModuleType:
    """The SDK, imported off the event loop the first time (it takes seconds: mcp types, jsonschema).
    Callers that may start sessions side by side take a lock around the first call (see WarmPool)."""
    module = sys.modules.get("claude_agent_sdk")
    if module is None:
        module = await anyio.to_thread.run_sync(importlib.import_module, "claude_agent_sdk")
    return module


def _pid(client: Any) -> int | None:
    """The CLI's pid, for the memory budget. The SDK keeps it private, so this is best effort."""
    process = getattr(getattr(client, "_transport", None), "_process", None)
    pid = getattr(process, "pid", None)
    return pid if isinstance(pid, int) else None
