"""Builds every dependency in one place, and runs one agent call end to end (the run itself: execution.py)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TypeVar

import anyio

from subagents.backends import BackendChoice, Backends
from subagents.budget import BudgetMeter, PriceTable, RunBudget
from subagents.config import Settings
from subagents.conversation import first_user_message, follow_up
from subagents.definitions.catalog import Catalog, default_layers, load_catalog, select_agents
from subagents.definitions.spec import AgentSpec
from subagents.depth import run_depth
from subagents.errors import AgentNotFoundError, ModelCallError, SubagentsError
from subagents.events import EventSink, discard
from subagents.execution import Nesting, RunOutcome, RunStatus, execute
from subagents.grants import Backend, ToolGrant, grant_tools
from subagents.history.records import RunInput
from subagents.history.store import RunStore, store_for
from subagents.imports import import_off_loop
from subagents.jobs import JobManager, StartedSink
from subagents.loop import RunLimits
from subagents.principals import LOCAL, Principal, RunLimiter
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.base import ModelProvider, ModelResolver
from subagents.providers.claude_code.runner import ClaudeCodeBackend
from subagents.providers.resilience import ResilientProvider, RetryPolicy
from subagents.recorder import RunRecorder
from subagents.roots import effective_roots
from subagents.tools.workspace import Workspace, remove_orphaned_workspaces

__all__ = ["RunOutcome", "RunStatus", "Subagents", "tightest"]

log = logging.getLogger(__name__)

T = TypeVar("T", int, float)


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
        # False: the warm-up waits for `warm_up()` (a server calls it once the client has its tool list).
        self.warm_up_on_enter = True
        self._warming = False
        self.after_warm_up: Callable[[], None] | None = None  # the serving process freezes the collector's view

    @classmethod
    def build(cls, settings: Settings, env: Mapping[str, str] | None = None, *, agent: str | None = None) -> Subagents:
        """Everything from the settings. With `agent`, the log speaks only of that agent (a one-agent command)."""
        env = os.environ if env is None else env
        layers = default_layers(
            project_dir=settings.project_dir or Path.cwd(), extra_dirs=settings.agents_dirs, bundled=settings.bundled
        )
        catalog = select_agents(load_catalog(layers, require_dirs=settings.agents_dirs), settings.agents_filter)
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
        if self.warm_up_on_enter:
            self.warm_up()
        self.jobs.spawn(self.recorder.supervise)
        return self

    def warm_up(self, delay_s: float = 0.0) -> None:
        """Start the warm-up (the SDK and jsonschema imports, pre-started Claude Code sessions), once, after
        `delay_s`: it takes seconds of CPU, which a client waiting for the tool list should not share."""
        if self._warming:
            return
        self._warming = True
        self.jobs.spawn(functools.partial(self._warm_up, delay_s))

    async def _warm_up(self, delay_s: float = 0.0) -> None:
        await anyio.sleep(delay_s)
        try:
            for provider in (self.provider, getattr(self.provider, "inner", None)):
                warm = getattr(provider, "warm_up", None)
                if warm is not None:
                    await warm()
            if any(spec.options.output for spec in self.catalog.agents.values()):
                await import_off_loop("jsonschema")
            await self._warm_claude_code()
        finally:  # a warm-up step that failed leaves the rest of start-up's objects to freeze all the same
            if self.after_warm_up is not None:
                self.after_warm_up()

    async def _warm_claude_code(self) -> None:
        """Import the SDK and pre-start sessions for the read-only agents that run on Claude Code (writers
        get a fresh copy of the project per run, so a session cannot be started for them ahead of time)."""
        claude_code = self.backends.claude_code if self.backends is not None else None
        if claude_code is None:
            return
        try:
            agents = [s for s in self.catalog.agents.values() if (await self.backend_for(s)).backend == "claude-code"]
            runs = [(spec, self.resolver.resolve(spec.model), self.limits(spec)) for spec in agents]
            await claude_code.prestart(runs, self.roots(), depth=run_depth(self.settings))
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

    def swap_catalog(self, catalog: Catalog, touched: Iterable[AgentSpec]) -> None:
        """Serve `catalog` from now on (a live reload). A run in flight keeps the AgentSpec it started with."""
        self.catalog = catalog
        self._log_tool_gaps(touched)

    def _log_tool_gaps(self, specs: Iterable[AgentSpec]) -> None:
        for spec in specs:
            grant = self.grant(spec)
            if not grant.lacking:
                continue
            level = logging.INFO if grant.as_shipped(spec) else logging.WARNING
            runs = (
                "calls are refused" if grant.refused else f"the agent runs with {', '.join(grant.tools) or 'no tools'}"
            )
            lacks = ", ".join(lack.explained() for lack in grant.lacking)
            where = spec.source or spec.name
            log.log(level, "%s: %s: not available on this server: %s; %s", where, spec.name, lacks, runs)

    def grant(self, spec: AgentSpec, *, depth: int | None = None, backend: Backend = "anthropic") -> ToolGrant:
        """What `spec` gets on this server (on `backend`, in a run `depth` deep; None: a client's call), and
        what it lacks: the one answer every edge shows."""
        return grant_tools(spec, self.settings, depth=depth, backend=backend)

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
        depth: int | None = None,
        workspace: Workspace | None = None,
    ) -> RunOutcome:
        """Run one agent on a new task, in one of `principal`'s run slots (TooManyRuns when none is free).
        `started` hears the run id as soon as it exists. A child (of a pattern, or of a run that hands it work
        with Task) names its parent run (`parent_id`), the parent's meter its budget counts against too,
        its `depth`, and for a Task child of a writer, the parent's isolated copy it works in."""
        spec = agent if isinstance(agent, AgentSpec) else self.agent(agent)
        with self.limiter.reserve(principal):
            return await execute(
                self,
                spec,
                [first_user_message(task, context, files)],
                RunInput(task=task, context=context, files=tuple(files)),
                events=events,
                roots=roots,
                started=started,
                client=client,
                principal=principal,
                nesting=Nesting(parent_id=parent_id, depth=depth, meter=shared_meter, workspace=workspace),
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
            return await execute(
                self,
                spec,
                follow_up(record.transcript, message),
                RunInput(task=message),
                events=events,
                roots=roots,
                started=started,
                client=client,
                principal=principal,
                continued_from=run_id,
            )


def tightest(*limits: T | None) -> T | None:
    """The lowest of the limits that are set; None when none is (None means no limit)."""
    return min((limit for limit in limits if limit is not None), default=None)
