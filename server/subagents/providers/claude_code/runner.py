"""The Claude Code backend: one subagent run as one Claude Code session, which runs the whole agent loop.

Where the API backend calls the model turn by turn (`loop.run_agent`), here a session from the warm
pool gets the task and works until its result; we confine its tools (policy.py), follow its messages
(transcript.py), and stop it on cancellation, timeout or budget. Its result is our `RunResult`, so
everything after it (outcome, run store, MCP result) is the same for both backends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from subagents.definitions.spec import AgentSpec
from subagents.errors import ModelCallError
from subagents.events import EventSink, discard
from subagents.loop import Guard, MessageSink, RunLimits, RunResult, _budget_note, _cut_short
from subagents.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
from subagents.providers.claude_code.detect import ClaudeCodeStatus, claude_code_status
from subagents.providers.claude_code.options import ClaudeCodeSettings, SessionConfig
from subagents.providers.claude_code.policy import ToolPolicy, permission_rules, session_tools, writes_allowed
from subagents.providers.claude_code.pool import WarmPool
from subagents.providers.claude_code.session import Session
from subagents.providers.claude_code.transcript import Transcript
from subagents.tools.sandbox import DEFAULT_DENY, Sandbox

log = logging.getLogger(__name__)

MAX_REPLAY_CHARS = 200_000
RECHECK_S = 30.0  # how long "not logged in" is believed before Claude Code is asked again
ERROR_KINDS = {401: "auth", 403: "auth", 404: "not_found", 429: "rate_limited", 529: "overloaded"}


@dataclass(frozen=True)
class ClaudeCodeJob:
    """One run, as the backend needs it. `roots` are where its tools may go: the run's roots, or the
    isolated copy a writing agent works in."""

    spec: AgentSpec
    conversation: Sequence[Message]
    model: str
    limits: RunLimits
    roots: tuple[Path, ...]
    writes: bool
    run_id: str
    continued_from: str | None = None
    depth: int = 1  # how deep the run is in a delegation chain (depth.py)
    events: EventSink | None = None
    on_messages: MessageSink | None = None
    guard: Guard | None = None


class ClaudeCodeBackend:
    """Runs agents on Claude Code sessions from one warm pool. One per server; `running()` owns the pool."""

    def __init__(
        self, settings: ClaudeCodeSettings, *, max_retries: int = 3, env: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.max_retries = max_retries
        self.pool = WarmPool(settings)
        self._env = env
        self._status: ClaudeCodeStatus | None = None
        self._status_at = 0.0
        self._status_lock = anyio.Lock()

    def running(self) -> AbstractAsyncContextManager[WarmPool]:
        """The pool's lifetime: enter it for as long as the server serves."""
        return self.pool.running()

    async def status(self) -> ClaudeCodeStatus:
        """Installed and logged in? Remembered once it is; while it is not, asked again every RECHECK_S."""
        async with self._status_lock:
            now = time.monotonic()
            if self._status is not None and (self._status.usable or now - self._status_at < RECHECK_S):
                return self._status
            self._status, self._status_at = await claude_code_status(self._env, self.settings.cli_path), now
            return self._status

    def config_for(
        self, spec: AgentSpec, model: str, limits: RunLimits, roots: Sequence[Path], *, writes: bool, depth: int = 1
    ) -> SessionConfig:
        """The session an agent gets: its prompt, tools, model and turn limit, working in the first root, with
        the run's delegation depth in its environment (a server started there counts on from it)."""
        real = tuple(Sandbox(tuple(roots)).roots)
        tools = session_tools(spec.effective_tools, writes=writes and writes_allowed(spec))
        return SessionConfig(
            agent=spec.name,
            model=model,
            system_prompt=spec.prompt,
            tools=tools.tools,
            cwd=real[0],
            add_dirs=real[1:],
            max_turns=limits.max_turns,
            max_output_tokens=limits.max_tokens,
            max_retries=self.max_retries,
            deny_rules=tuple(permission_rules(real, DEFAULT_DENY)),
            setting_sources=self.settings.setting_sources,
            cli_path=self.settings.cli_path,
            depth=depth,
        )

    def left_out(self, spec: AgentSpec, *, writes: bool) -> tuple[str, ...]:
        """What of the agent a Claude Code session does not honour (tools, temperature), each with the reason."""
        notes = session_tools(spec.effective_tools, writes=writes and writes_allowed(spec)).left_out
        if spec.options.temperature is not None:
            notes += ("temperature: Claude Code chooses its own sampling",)
        return notes

    async def prestart(
        self, runs: Sequence[tuple[AgentSpec, str, RunLimits]], roots: Sequence[Path], *, depth: int = 1
    ) -> None:
        """At server start, for the agents (with their model and limits) that run here: import the SDK and
        keep sessions ready for the read-only ones (a writer gets a fresh copy of the project per run, so
        its session cannot start ahead). Says which tools each agent goes without."""
        if not runs:
            return
        await self.pool.prepare()  # the SDK's import takes seconds: not in the first call's time
        for spec, _model, _limits in runs:
            if left_out := self.left_out(spec, writes=spec.writes):
                level = logging.INFO if spec.layer == "bundled" else logging.WARNING
                log.log(level, "%s on Claude Code runs without %s", spec.name, "; ".join(left_out))
        status = await self.status()
        log.info("%d agents run on Claude Code, billed to %s", len(runs), status.billed_to)
        if self.settings.warm_sessions:
            self.pool.want(
                [
                    self.config_for(s, model, limits, roots, writes=False, depth=depth)
                    for s, model, limits in runs
                    if not s.writes
                ]
            )

    async def run(self, job: ClaudeCodeJob) -> RunResult:
        """Run the job on a session: kept from the run it continues, else warm, else started now."""
        config = self.config_for(job.spec, job.model, job.limits, job.roots, writes=job.writes, depth=job.depth)
        kept = self.pool.take_kept(job.continued_from, config) if job.continued_from else None
        session = kept or (await self.pool.acquire(config, keep_warm=not job.writes))[0]
        prompt = follow_up_text(job.conversation[-1]) if kept else replay(job.conversation)
        session.policy = ToolPolicy(Sandbox(job.roots), config.tools)
        try:
            result = await self._drive(session, prompt, job)
        except BaseException:
            clean = await session.abandon()  # cancelled, timed out, failed: stop it, drop its late output
            self._after(job, session, clean)
            raise
        finally:
            session.policy = None
        self._after(job, session, True)
        return result

    def _after(self, job: ClaudeCodeJob, session: Session, clean: bool) -> None:
        session.done()
        if clean and not job.writes:  # a writer's copy is gone after the run: its session cannot continue
            self.pool.keep(job.run_id, session)
        else:
            session.close()

    async def _drive(self, session: Session, prompt: str, job: ClaudeCodeJob) -> RunResult:
        from claude_agent_sdk import AssistantMessage, ResultMessage, StreamEvent, UserMessage

        transcript = Transcript(
            agent=job.spec.name,
            model=job.model,
            max_turns=job.limits.max_turns,
            events=job.events or discard,
            on_messages=job.on_messages,
            guard=job.guard,
        )
        await transcript.start()
        async with await session.ask(prompt) as messages:
            async for message in messages:
                if isinstance(message, StreamEvent):
                    transcript.stream(message)
                elif isinstance(message, AssistantMessage):
                    await transcript.assistant(message)
                elif isinstance(message, UserMessage):
                    await transcript.user(message)
                elif isinstance(message, ResultMessage):
                    usage = await transcript.finish(message)
                    return _result(job, transcript, message, usage)
                if transcript.over_budget:
                    await session.abandon()
                    await transcript.flush()
                    report = _budget_note(transcript.last_text, transcript.over_budget)
                    return _run_result(job, transcript, report, "budget_exceeded")
        raise ModelCallError(
            f"The Claude Code session ended before the run finished: {session.problem or 'no result'}.",
            kind="claude_code",
        )


def _result(job: ClaudeCodeJob, transcript: Transcript, result: Any, usage: Any) -> RunResult:
    if result.subtype == "error_max_turns":
        return _run_result(job, transcript, _cut_short(transcript.last_text, job.limits.max_turns), "max_turns")
    if result.is_error:
        status = result.api_error_status
        detail = "; ".join(result.errors or []) or result.result or result.subtype
        raise ModelCallError(
            f"Claude Code could not finish the run ({result.subtype}): {str(detail)[:1000]}",
            kind=ERROR_KINDS.get(status, "server_error" if status else "claude_code"),
            status=status,
        )
    report = result.result if isinstance(result.result, str) and result.result.strip() else transcript.last_text
    return _run_result(job, transcript, report, result.stop_reason or "end_turn")


def _run_result(job: ClaudeCodeJob, transcript: Transcript, report: str, stop_reason: str) -> RunResult:
    return RunResult(
        agent=job.spec.name,
        model=job.model,
        report=report.strip(),
        turns=transcript.turns,
        usage=transcript.usage,
        stop_reason=stop_reason,
        transcript=tuple(transcript.messages),
    )


def follow_up_text(message: Message) -> str:
    """A continuation's new user turn (its last text: `conversation.follow_up` puts it there), for the
    session that still holds the conversation."""
    return next((b.text for b in reversed(message.content) if isinstance(b, TextBlock)), "")


def replay(conversation: Sequence[Message]) -> str:
    """The conversation as one prompt: the task itself, or (a continuation on a new session) the
    earlier turns as text, then the new user turn."""
    *earlier, last = conversation
    if not earlier:
        return "\n\n".join(b.text for b in last.content if isinstance(b, TextBlock))
    lines = [_line(message) for message in earlier]
    history = "\n".join(line for line in lines if line)[-MAX_REPLAY_CHARS:]
    return (
        "This continues an earlier run of yours. Its conversation so far, replayed as text:\n"
        f"<earlier-conversation>\n{history}\n</earlier-conversation>\n\n{follow_up_text(last)}"
    )


def _line(message: Message) -> str:
    parts = []
    for block in message.content:
        if isinstance(block, TextBlock) and block.text.strip():
            parts.append(f"[{'you' if message.role == 'assistant' else 'user'}] {block.text.strip()}")
        elif isinstance(block, ToolUseBlock):
            parts.append(f"[you called {block.name}] {block.input}")
        elif isinstance(block, ToolResultBlock):
            parts.append(f"[tool result{' (error)' if block.is_error else ''}] {block.content[:4000]}")
    return "\n".join(parts)
