"""Builds every dependency in one place, and runs one agent call end to end."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
from pydantic import BaseModel, ConfigDict

from subagents.backends import BackendChoice, Backends
from subagents.budget import BudgetMeter, PriceTable, RunBudget
from subagents.config import Settings
from subagents.conversation import first_user_message, follow_up
from subagents.definitions.catalog import Catalog, default_layers, load_catalog
from subagents.definitions.spec import AgentSpec
from subagents.errors import AgentNotFoundError, ModelCallError, ModelNotConfiguredError, SubagentsError
from subagents.events import EventSink, RunEvent, discard
from subagents.history.records import RunInput
from subagents.history.store import RunStore, store_for
from subagents.jobs import JobManager, StartedSink
from subagents.loop import MessageSink, RunLimits, RunResult, run_agent
from subagents.messages import Message, Usage
from subagents.principals import LOCAL, Principal, RunLimiter
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.base import ModelProvider, ModelResolver
from subagents.providers.claude_code.runner import ClaudeCodeBackend, ClaudeCodeJob
from subagents.providers.resilience import ResilientProvider, RetryPolicy
from subagents.recorder import RunRecorder
from subagents.roots import effective_roots
from subagents.tools.workspace import remove_orphaned_workspaces
from subagents.toolset import Toolset, available_tools, open_toolset

log = logging.getLogger(__name__)

RunStatus = Literal["completed", "failed", "cancelled", "budget_exceeded"]
T = TypeVar("T", int, float)


class RunOutcome(BaseModel):
    """What a caller gets back from one agent call, success or not."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    agent: str
    model: str
    status: RunStatus
    report: str
    turns: int = 0
    usage: Usage = Usage()
    cost_usd: float | None = None
    stop_reason: str | None = None
    error: str | None = None
    error_kind: str | None = None
    continued_from: str | None = None
    diff: str | None = None  # a writing agent's changes, to apply with `git apply` in the project root
    output: dict[str, Any] | None = None  # the answer as JSON, for an agent that declares an output schema
    warning: str | None = None  # e.g. the answer did not match the agent's output schema
    parent_id: str | None = None  # the pattern run this run is part of
    backend: str | None = None  # anthropic or claude-code
    billed_to: str | None = None  # who pays for the run, in words


class Subagents:
    """The service behind every edge (MCP server, CLI): catalog, provider, run store, background jobs."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        provider: ModelProvider,
        *,
        store: RunStore | None = None,
        prices: PriceTable | None = None,
        owns_store: bool = False,
        backends: Backends | None = None,
    ) -> None:
        """`store` must be open while the app runs; with owns_store the app opens and closes it itself."""
        self.settings = settings
        self.backends = backends  # None: every agent runs on `provider` (the Messages API)
        self.catalog = catalog
        self.provider = provider
        self.store = store
        self._owns_store = owns_store and store is not None
        self.recorder = RunRecorder(store, renew_s=settings.lease_ttl_s / 4)
        self.prices = prices or PriceTable()
        self.resolver = ModelResolver(aliases=settings.model_aliases, default=settings.default_model)
        self.jobs = JobManager()
        self.limiter = RunLimiter(settings.max_concurrent_runs)
        self._running = AsyncExitStack()

    @classmethod
    def build(cls, settings: Settings, env: Mapping[str, str] | None = None, *, agent: str | None = None) -> Subagents:
        """Everything from the settings. With `agent`, the log speaks only of that agent (a one-agent command)."""
        env = os.environ if env is None else env
        layers = default_layers(
            project_dir=settings.project_dir or Path.cwd(), extra_dirs=settings.agents_dirs, bundled=settings.bundled
        )
        catalog = load_catalog(layers, require_dirs=settings.agents_dirs)
        # Our own retries (with a breaker and a fallback) replace the SDK's.
        api_settings = AnthropicSettings.from_env(dict(env), max_retries=0)
        api = AnthropicProvider(api_settings)
        provider = ResilientProvider(
            api,
            RetryPolicy(attempts=settings.retry_attempts, base_delay_s=settings.retry_base_delay_s),
            fallback_model=settings.fallback_model,
        )
        if orphans := remove_orphaned_workspaces():
            log.warning("removed %d workspaces left by servers that stopped mid-run", len(orphans))
        # Opened by __aenter__.
        store = store_for(settings.store_url, lease_ttl_s=settings.lease_ttl_s) if settings.store_enabled else None
        prices = PriceTable.from_file(settings.prices_file) if settings.prices_file else PriceTable()
        # Claude Code only where an agent may run on it: otherwise no pool and no housekeeping.
        wanted = {settings.provider, *(s.options.provider or settings.provider for s in catalog.agents.values())}
        claude_code = None
        if wanted != {"anthropic"}:
            claude_code = ClaudeCodeBackend(settings.claude_code, max_retries=settings.retry_attempts - 1)
        backends = Backends(settings.provider, api_settings, claude_code)
        app = cls(settings, catalog, provider, store=store, prices=prices, owns_store=True, backends=backends)
        app.log_startup(agent)
        return app

    async def __aenter__(self) -> Subagents:
        if self._owns_store and self.store is not None:
            await self.store.__aenter__()  # connects and migrates
        try:
            await self.recorder.recover()
            async with AsyncExitStack() as stack:
                if self.backends is not None and self.backends.claude_code is not None:
                    await stack.enter_async_context(self.backends.claude_code.running())  # outlives the jobs
                await stack.enter_async_context(self.jobs.running())
                self._running = stack.pop_all()
        except BaseException:
            await self._close_store()
            raise
        self.jobs.spawn(self._warm_up)
        self.jobs.spawn(self.recorder.supervise)
        return self

    async def _warm_up(self) -> None:
        for provider in (self.provider, getattr(self.provider, "inner", None)):
            warm = getattr(provider, "warm_up", None)
            if warm is not None:
                await warm()
        if any(spec.options.output for spec in self.catalog.agents.values()):
            # Off the event loop; a server stopping meanwhile does not wait for the import.
            await anyio.to_thread.run_sync(importlib.import_module, "jsonschema", abandon_on_cancel=True)
        await self._warm_claude_code()

    async def _warm_claude_code(self) -> None:
        """Import the SDK and pre-start sessions for the read-only agents that run on Claude Code (writers
        get a fresh copy of the project per run, so a session cannot be started for them ahead of time)."""
        claude_code = self.backends.claude_code if self.backends is not None else None
        if claude_code is None:
            return
        try:
            agents = [s for s in self.catalog.agents.values() if (await self.backend_for(s)).backend == "claude-code"]
            runs = [(spec, self.resolver.resolve(spec.model), self.limits(spec)) for spec in agents]
            await claude_code.prestart(runs, self.roots())
        except Exception:  # a warm pool only saves time: calls still start their own sessions
            log.exception("could not pre-start Claude Code sessions")

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self._running.aclose()
        finally:
            try:
                await self.aclose()
            finally:
                await self._close_store()

    async def _close_store(self) -> None:
        if self._owns_store and self.store is not None:
            await self.store.__aexit__(None, None, None)  # applies the writes still queued first

    async def backend_for(self, spec: AgentSpec) -> BackendChoice:
        """Which backend runs `spec` (its own `provider`, else the server's) and who is billed."""
        if self.backends is None:
            return BackendChoice("anthropic", "the server's model provider", "the server's model provider")
        return await self.backends.choose(spec.options.provider)

    async def aclose(self) -> None:
        for closeable in (self.provider, getattr(self.provider, "inner", None)):
            close = getattr(closeable, "aclose", None)
            if close is not None:
                await close()

    def log_startup(self, agent: str | None = None) -> None:
        if agent is not None:
            spec = self.catalog.get(agent)
            self.catalog.log_problems(self.catalog.problems_for(spec) if spec else [])
            self._log_tool_gaps([spec] if spec else [])
            return
        self.catalog.log_problems()
        self._log_tool_gaps(self.catalog.agents.values())
        log.info("serving %d agents: %s", len(self.catalog.agents), ", ".join(sorted(self.catalog.agents)))

    def _log_tool_gaps(self, specs: Iterable[AgentSpec]) -> None:
        for spec in specs:
            missing = [t for t in spec.effective_tools if t not in self.tool_names(spec)]
            if spec.tools is not None and missing:
                # Bundled agents list Bash on purpose (it is opt-in here), so that is no warning.
                level = logging.INFO if spec.layer == "bundled" else logging.WARNING
                log.log(
                    level,
                    "%s: %s not available on this server%s; the agent runs with %s",
                    spec.name,
                    ", ".join(missing),
                    " (Bash is enabled with --allow-bash PREFIX)" if "Bash" in missing else "",
                    ", ".join(self.tool_names(spec)) or "no tools",
                )

    def tool_names(self, spec: AgentSpec) -> tuple[str, ...]:
        return available_tools(spec.effective_tools, self.settings.bash)

    def agent(self, name: str) -> AgentSpec:
        spec = self.catalog.get(name)
        if spec is None:
            known = ", ".join(sorted(self.catalog.agents)) or "none"
            broken = len(self.catalog.errors)
            files = f"{broken} agent file{'s' if broken > 1 else ''}"
            hint = f" {files} could not be loaded: `subagents agents validate` says why." if broken else ""
            raise AgentNotFoundError(f"No agent named {name!r}. Loaded agents: {known}.{hint}")
        return spec

    def roots(self) -> tuple[Path, ...]:
        return self.settings.effective_roots()

    def roots_for(self, client_roots: Sequence[Path]) -> tuple[Path, ...]:
        """The client's roots when it is the local user's own client (stdio, no --root); otherwise they only
        narrow the server's roots."""
        trust = self.settings.transport == "stdio" and not self.settings.roots
        return effective_roots(self.roots(), client_roots, trust_client=trust)

    def limits(self, spec: AgentSpec) -> RunLimits:
        """The agent's own limits, where it sets them, under the server's ceilings: a file may lower a
        limit, never raise it (an agent file can come from any repository the user opens)."""
        s = self.settings
        return RunLimits(
            max_turns=min(spec.max_turns or s.default_max_turns, s.max_turns),
            max_tokens=min(spec.options.max_tokens or s.default_max_tokens, s.max_tokens_per_turn),
            temperature=spec.options.temperature,
            fallback_model=self.resolver.resolve(spec.options.fallback_model) if spec.options.fallback_model else None,
        )

    def timeout_s(self, spec: AgentSpec) -> float:
        return tightest(spec.options.timeout, self.settings.run_timeout_s) or self.settings.run_timeout_s

    def budget(self, spec: AgentSpec, principal: Principal) -> RunBudget:
        """The run's limits. A per-caller daily budget binds authenticated callers; the local user is held to
        --daily-budget. Today's spend comes from the store (`BudgetMeter.refresh`)."""
        s = self.settings
        caller = principal.scope if s.caller_daily_budget_usd else None
        return RunBudget(
            max_output_tokens=tightest(spec.options.max_output_tokens, s.max_output_tokens),
            max_cost_usd=tightest(spec.options.max_cost_usd, s.max_cost_usd),
            daily_cost_usd=s.daily_budget_usd,
            caller=caller,
            caller_daily_cost_usd=s.caller_daily_budget_usd if caller else None,
        )

    async def spent_today(self, principal: str | None) -> float:
        return await self.recorder.spent_today(principal=principal)

    def unpriced(self, models: Sequence[str | None]) -> str | None:
        """With a cost budget set, a model without a price would make the budget blind: name it."""
        s = self.settings
        if s.max_cost_usd is None and s.daily_budget_usd is None and s.caller_daily_budget_usd is None:
            return None
        return next((m for m in models if m and self.prices.price(m) is None), None)

    async def run(
        self,
        agent: str | AgentSpec,
        task: str,
        *,
        context: str | None = None,
        files: Sequence[str] = (),
        events: EventSink = discard,
        roots: Sequence[Path] | None = None,
        started: StartedSink | None = None,
        client: str | None = None,
        principal: Principal = LOCAL,
        parent_id: str | None = None,
        shared_meter: BudgetMeter | None = None,
    ) -> RunOutcome:
        """Run one agent on a new task, in one of `principal`'s run slots (TooManyRuns when none is free).
        `started` hears the run id as soon as it exists. A pattern's child names its pattern run
        (`parent_id`) and the meter its budget shares with its siblings."""
        spec = agent if isinstance(agent, AgentSpec) else self.agent(agent)
        with self.limiter.reserve(principal):
            return await self._execute(
                spec,
                [first_user_message(task, context, files)],
                RunInput(task=task, context=context, files=tuple(files)),
                principal=principal,
                events=events,
                roots=roots,
                started=started,
                client=client,
                parent_id=parent_id,
                shared_meter=shared_meter,
            )

    async def continue_run(
        self,
        run_id: str,
        message: str,
        *,
        events: EventSink = discard,
        started: StartedSink | None = None,
        client: str | None = None,
        roots: Sequence[Path] | None = None,
        principal: Principal = LOCAL,
    ) -> RunOutcome:
        """The same agent picks up its own conversation from the store and answers a follow-up, in one of
        `principal`'s run slots. Another principal's run answers like an unknown id."""
        record = await self.recorder.get(run_id, principal=principal.scope)
        if record.model == "pattern":  # orchestration.PATTERN_MODEL: a pattern has no conversation of its own
            raise SubagentsError(
                f"Run {run_id} is a {record.agent} pattern, not one agent's conversation; continue one of its "
                "children instead (get_run lists them)."
            )
        if record.status == "running":  # the store's word: the run may be executing on another replica
            raise ModelCallError(
                f"Run {run_id} is still running; wait for it (get_run) or cancel it first.", kind="busy"
            )
        spec = self.agent(record.agent)
        with self.limiter.reserve(principal):
            return await self._execute(
                spec,
                follow_up(record.transcript, message),
                RunInput(task=message),
                principal=principal,
                events=events,
                started=started,
                client=client,
                continued_from=run_id,
                roots=roots,
            )

    async def _execute(
        self,
        spec: AgentSpec,
        conversation: list[Message],
        run_input: RunInput,
        *,
        principal: Principal,
        events: EventSink,
        roots: Sequence[Path] | None = None,
        started: StartedSink | None,
        client: str | None,
        continued_from: str | None = None,
        parent_id: str | None = None,
        shared_meter: BudgetMeter | None = None,
    ) -> RunOutcome:
        model = self.resolver.resolve(spec.model)
        meter = BudgetMeter(self.budget(spec, principal), self.prices, parent=shared_meter)
        await meter.refresh(self.spent_today)
        choice = await self.backend_for(spec)
        run_id = await self.recorder.start(
            agent=spec.name,
            model=model,
            input=run_input,
            continued_from=continued_from,
            client=client,
            principal=principal.scope,
            parent_id=parent_id,
            backend=choice.backend,
            billed_to=choice.billed_to,
        )
        base = RunOutcome(
            run_id=run_id,
            agent=spec.name,
            model=model,
            status="failed",
            report="",
            continued_from=continued_from,
            parent_id=parent_id,
            backend=choice.backend,
            billed_to=choice.billed_to,
        )
        run = _Run(spec, conversation, base, model, meter, _metered(events, meter), _Progress(), choice)
        try:
            if started is not None:
                await started(run_id)
            await self.recorder.messages(run_id, conversation)

            async def on_messages(messages: Sequence[Message]) -> None:
                run.progress.add(messages)
                await self.recorder.record_turn(
                    run_id, messages, turns=run.progress.turns, usage=meter.usage, cost_usd=meter.cost_usd
                )
                await meter.refresh(self.spent_today)  # what the runs on every replica spent meanwhile

            run.on_messages = on_messages
            with self.recorder.cancellable(run_id) as asked:  # cancel_run from another process, via the store
                outcome = await self._guarded(run, roots)
            if asked.cancelled_caught:
                ended = _ended(run.partial(), "cancelled", "The run was cancelled.", "cancelled")
                outcome = ended.model_copy(update={"stop_reason": "cancelled"})
        except BaseException as exc:
            # Nothing is lost: however the run ends, it ends with a recorded status and the reason.
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                ended = _ended(run.partial(), "cancelled", "The run was cancelled.", "cancelled")
                await self._record(ended.model_copy(update={"stop_reason": "cancelled"}))
                raise
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: record, then let it stop us
                await self._record(
                    _ended(run.partial(), "failed", f"The server stopped ({type(exc).__name__}).", "stopped")
                )
                raise
            log.exception("run %s (%s) failed with an unexpected error", run_id, spec.name)
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            message = f"Internal error: {detail}. The server's log has the traceback."
            outcome = _ended(run.partial(), "failed", message, "internal")
        await self._record(outcome)
        return outcome

    async def _record(self, outcome: RunOutcome) -> None:
        await self.recorder.finish(
            outcome.run_id,
            status=outcome.status,
            report=outcome.report or None,
            error=outcome.error,
            usage=outcome.usage,
            cost_usd=outcome.cost_usd,
            turns=outcome.turns,
            stop_reason=outcome.stop_reason,
            diff=outcome.diff,
        )

    async def _guarded(self, run: _Run, roots: Sequence[Path] | None) -> RunOutcome:
        """Run the loop; every way it can end becomes an outcome (cancellation is recorded, then re-raised)."""
        if reason := run.meter.exceeded():
            return _ended(run.base, "budget_exceeded", f"Not started: {reason}.", "budget")
        limits = self.limits(run.spec)
        if unpriced := self.unpriced((run.model, limits.fallback_model, self.settings.fallback_model)):
            message = (
                f"Not started: model {unpriced!r} has no price in this server's price table, so the cost budget "
                "(--max-cost / --daily-budget) could not be enforced. Add its price with --prices FILE, or "
                "choose a priced model."
            )
            return _ended(run.base, "failed", message, "unpriced_model")
        async with AsyncExitStack() as stack:
            try:
                toolset = await stack.enter_async_context(
                    open_toolset(
                        self.tool_names(run.spec),
                        tuple(roots or self.roots()),
                        self.settings.bash,
                        allow_hardlinks=self.settings.allow_hardlinks,
                    )
                )
            except (SubagentsError, ValueError) as exc:
                return _ended(run.base, "failed", f"The agent's file tools cannot be set up: {exc}", "config")
            outcome = await self._loop(run, toolset, tuple(roots or self.roots()))
            if outcome.status == "cancelled":
                return outcome
            try:
                changes = await toolset.changes()
            except SubagentsError as exc:
                return _ended(outcome, "failed", f"The agent's changes could not be collected: {exc}", "diff")
            if changes is None:
                return outcome
            report = "\n\n".join(filter(None, (outcome.report, changes.note)))
            return outcome.model_copy(update={"diff": changes.diff, "report": report})

    async def _loop(self, run: _Run, toolset: Toolset, roots: tuple[Path, ...]) -> RunOutcome:
        spec = run.spec
        timeout = self.timeout_s(spec)
        try:
            with anyio.fail_after(timeout):
                if run.choice.require() == "claude-code":
                    result = await self._claude_code(run, toolset, roots)
                else:
                    result = await run_agent(
                        spec,
                        run.conversation,
                        model=run.model,
                        provider=self.provider,
                        tools=toolset.toolbox,
                        limits=self.limits(spec),
                        events=run.events,
                        on_messages=run.on_messages,
                        guard=run.meter,
                    )
        except ModelNotConfiguredError as exc:
            return _ended(run.base, "failed", str(exc), "not_configured")
        except ModelCallError as exc:
            return _ended(run.partial(), "failed", str(exc), exc.kind)
        except TimeoutError:
            message = f"The run took longer than its {timeout:g} s timeout and was stopped."
            return _ended(run.partial(), "failed", message, "timeout")
        return _completed(run.base, result, run.meter)

    async def _claude_code(self, run: _Run, toolset: Toolset, roots: tuple[Path, ...]) -> RunResult:
        """The run as a Claude Code session, in the writer's isolated copy or on the roots."""
        assert self.backends is not None and self.backends.claude_code is not None  # chosen only when there
        workspace = toolset.workspace
        job = ClaudeCodeJob(
            spec=run.spec,
            conversation=run.conversation,
            model=run.model,
            limits=self.limits(run.spec),
            roots=(workspace.path,) if workspace is not None else roots,
            writes=workspace is not None,
            run_id=run.base.run_id,
            continued_from=run.base.continued_from,
            events=run.events,
            on_messages=run.on_messages,
            guard=run.meter,
        )
        return await self.backends.claude_code.run(job)


class _Progress:
    """What the loop has produced so far, for partial reports."""

    def __init__(self) -> None:
        self.turns = 0
        self.last_text = ""

    def add(self, messages: Sequence[Message]) -> None:
        for message in messages:
            if message.role == "assistant":
                self.turns += 1
                if message.text.strip():
                    self.last_text = message.text.strip()


@dataclass
class _Run:
    """One run in flight: what the loop needs, and what a partial outcome is built from."""

    spec: AgentSpec
    conversation: list[Message]
    base: RunOutcome
    model: str
    meter: BudgetMeter
    events: EventSink
    progress: _Progress
    choice: BackendChoice
    on_messages: MessageSink | None = None

    def partial(self) -> RunOutcome:
        return self.base.model_copy(
            update={
                "report": self.progress.last_text,
                "turns": self.progress.turns,
                "usage": self.meter.usage,
                "cost_usd": self.meter.cost_usd,
            }
        )


def _completed(base: RunOutcome, result: RunResult, meter: BudgetMeter) -> RunOutcome:
    status: RunStatus = "budget_exceeded" if result.stop_reason == "budget_exceeded" else "completed"
    return base.model_copy(
        update={
            "status": status,
            "report": result.report,
            "turns": result.turns,
            "usage": result.usage,
            "cost_usd": meter.cost_usd,
            "stop_reason": result.stop_reason,
            "output": result.output,
            "warning": result.output_warning,
        }
    )


def _metered(events: EventSink, meter: BudgetMeter) -> EventSink:
    """The run's events, each carrying what the run has used and cost so far (for progress displays)."""
    if events is discard:
        return events

    async def sink(event: RunEvent) -> None:
        await events(event.model_copy(update={"usage": meter.usage, "cost_usd": meter.cost_usd}))

    return sink


def tightest(*limits: T | None) -> T | None:
    """The lowest of the limits that are set; None when none is (None means no limit)."""
    return min((limit for limit in limits if limit is not None), default=None)


def _ended(base: RunOutcome, status: RunStatus, message: str, kind: str) -> RunOutcome:
    if status != "cancelled":
        log.warning("run %s (%s) %s: %s", base.run_id, base.agent, status, message)
    report = f"{base.report}\n\n{message}" if base.report else f"Error: {message}"
    return base.model_copy(update={"status": status, "error": message, "error_kind": kind, "report": report})
