"""The warm pool: Claude Code sessions started before a call needs them, within a memory budget.

Start-up (spawning the CLI and its handshake) is most of a short call's wait. The pool keeps
`warm_sessions` clean sessions ready for every `SessionConfig` in use (an agent, its model and its
roots), replaces one that dies, and stops those nobody used for `warm_idle_s`. A session serves one
run only; afterwards it may be kept for that run's continuation (`continue_run`), never for another
run. Every session is a process (about 160 MB here, more with MCP children), so no session is started
for warmth once the live ones reach `warm_memory_mb`; a call with no warm session still starts one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from subagents.errors import ModelCallError
from subagents.providers.claude_code.options import ClaudeCodeSettings, SessionConfig
from subagents.providers.claude_code.session import Session, import_sdk

log = logging.getLogger(__name__)

SESSION_MB_GUESS = 200  # until a session's own size is measured
TICK_S = 1.0
RETRY_START_S = 30.0  # after a warm session failed to start, wait this long before trying again
REFILL_DELAY_S = 3.0  # a call's own start gets the CPU first; its replacement starts after this


class WarmPool:
    """Pre-started sessions by config, and finished sessions kept for their run's continuation."""

    def __init__(self, settings: ClaudeCodeSettings) -> None:
        self.settings = settings
        self._warm: dict[SessionConfig, list[Session]] = {}  # starting or clean, nobody's yet
        self._wanted: dict[SessionConfig, float] = {}  # configs to keep warm -> when last used
        self._kept: dict[str, Session] = {}  # run id -> the session that ran it
        self._live: set[Session] = set()
        self._start_at: dict[SessionConfig, float] = {}  # no warm start for a config before this time
        self._tg: TaskGroup | None = None
        self._wake = anyio.Event()
        self._import = anyio.Lock()  # two threads importing the SDK at once see it half made
        self.started = 0  # sessions started, for benchmarks and tests
        self.served_warm = 0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[WarmPool]:
        """Own every session's task for as long as the server runs; stop them all on the way out."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._maintain)
            try:
                yield self
            finally:
                self._tg = None
                for session in list(self._live):
                    session.close()
                tg.cancel_scope.cancel()

    def want(self, configs: Iterable[SessionConfig]) -> None:
        """Keep sessions ready for these configs (until they go unused for warm_idle_s)."""
        now = time.monotonic()
        for config in configs:
            self._wanted[config] = now
        self._wake.set()

    async def acquire(self, config: SessionConfig, *, keep_warm: bool = True) -> tuple[Session, bool]:
        """A clean session for `config`, and whether it was pre-started. Waits for a cold start if needed.
        `keep_warm`: have another ready for the next call (not for a writer's one-off copy of the project)."""
        if keep_warm:
            self.want([config])
        warm = self._warm.get(config, [])
        session = next((s for s in warm if s.clean), None) or next((s for s in warm if s.state == "starting"), None)
        pre_started = session is not None
        if session is not None:
            warm.remove(session)
        else:
            session = self._start(config)
        self._start_at[config] = max(self._start_at.get(config, 0.0), time.monotonic() + REFILL_DELAY_S)
        await session.ready.wait()
        if not session.clean:
            raise ModelCallError(
                f"Claude Code could not start a session for {config.agent}: {session.problem}", kind="claude_code"
            )
        self.served_warm += pre_started
        return session, pre_started

    def keep(self, run_id: str, session: Session) -> None:
        """After a run: keep its session for a continuation if it is clean and the budget has room."""
        if session.clean and self._room(extra=0):
            self._kept[run_id] = session
            session.last_used = time.monotonic()
        else:
            session.close()

    def take_kept(self, run_id: str, config: SessionConfig) -> Session | None:
        """The session that ran `run_id`, if it is still clean and configured exactly as `config`."""
        session = self._kept.pop(run_id, None)
        if session is None:
            return None
        if session.clean and session.config == config:
            return session
        session.close()
        return None

    def ready(self) -> list[Session]:
        """The pre-started sessions waiting for a run, all configs."""
        return [s for sessions in self._warm.values() for s in sessions if s.clean]

    def memory_mb(self) -> int:
        """What the live sessions use now (resident memory of each CLI and its children)."""
        return sum(self._size_mb(s) for s in self._live)

    def _start(self, config: SessionConfig) -> Session:
        if self._tg is None:
            raise ModelCallError("The Claude Code pool is not running (the server is stopping).", kind="claude_code")
        session = Session(config)
        self._live.add(session)
        self.started += 1
        self._tg.start_soon(self._own, session)
        return session

    async def prepare(self) -> None:
        """Import the SDK (seconds, in a worker thread), once, before any session needs it."""
        async with self._import:
            await import_sdk()

    async def _own(self, session: Session) -> None:
        try:
            await self.prepare()
        except Exception as exc:  # the extra is broken: no session can start, and the server goes on
            session.fail(f"claude-agent-sdk could not be imported ({type(exc).__name__}: {exc})")
        try:
            if session.state == "starting":
                await session.serve()
        finally:
            self._live.discard(session)
            if not session.connected:  # not a crash to repair at once: starting it again would fail again
                self._start_at[session.config] = time.monotonic() + RETRY_START_S
            self._wake.set()  # a dead warm session gets replaced

    async def _maintain(self) -> None:
        """Reap what nobody uses, drop the dead, refill what is wanted; wake on changes or each tick."""
        while True:
            try:
                self._reap(time.monotonic())
                self._refill()
            except Exception:  # housekeeping must never take the server down
                log.exception("claude code pool maintenance failed; trying again")
            with anyio.move_on_after(TICK_S):
                await self._wake.wait()
            self._wake = anyio.Event()

    def _reap(self, now: float) -> None:
        idle = self.settings.warm_idle_s
        for config, last in list(self._wanted.items()):
            if now - last <= idle:
                continue
            warm = self._warm.get(config, [])
            for session in [s for s in warm if s.clean and now - s.last_used > idle]:  # idle since it started
                warm.remove(session)
                session.close()
            if not warm:  # nobody used the agent for warm_idle_s: stop keeping it warm
                del self._wanted[config]
        for sessions in self._warm.values():
            sessions[:] = [s for s in sessions if s.state in ("starting", "idle")]
        for run_id, session in list(self._kept.items()):
            if not session.clean or now - session.last_used > idle:
                del self._kept[run_id]
                session.close()

    def _refill(self) -> None:
        if self.settings.warm_sessions == 0:
            return
        now = time.monotonic()
        for config in list(self._wanted):
            if self._start_at.get(config, 0.0) > now:
                continue
            warm = self._warm.setdefault(config, [])
            while len(warm) < self.settings.warm_sessions and self._room_for_warmth():
                warm.append(self._start(config))
                log.info("pre-starting a claude code session for %s (%d MB in use)", config.agent, self.memory_mb())

    def _room_for_warmth(self) -> bool:
        """Room for one more warm session, made by stopping kept sessions (oldest first) if need be: a
        warm session helps every next call, a kept one only a continuation that may never come."""
        if self._room(extra=1):
            return True
        if self._kept:
            oldest = min(self._kept, key=lambda run_id: self._kept[run_id].last_used)
            self._kept.pop(oldest).close()  # its memory counts until the process is gone: next tick
        return False

    def _room(self, *, extra: int) -> bool:
        """Would `extra` more sessions fit the memory budget?"""
        sizes = [self._size_mb(s) for s in self._live]
        per_session = max(sizes, default=SESSION_MB_GUESS)
        return sum(sizes) + extra * per_session <= self.settings.warm_memory_mb

    @staticmethod
    def _size_mb(session: Session) -> int:
        measured = _tree_rss_mb(session.pid) if session.pid is not None else None
        return measured if measured else SESSION_MB_GUESS  # 0: exiting (a zombie has no resident memory)


def _tree_rss_mb(pid: int) -> int | None:
    """Resident memory of a process and its descendants (MCP servers, shells), from /proc; None elsewhere."""
    total_kb, stack, seen = 0, [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            if current == pid:
                return None
            continue
        total_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        stack += [int(c) for c in children if c.isdigit()]
    return total_kb // 1024
