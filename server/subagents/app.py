"""Builds every dependency in one place, and runs one agent call end to end."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import anyio
from pydantic import BaseModel, ConfigDict

from subagents.budget import BudgetMeter, PriceTable, RunBudget
from subagents.config import Settings
from subagents.conversation import first_user_message, follow_up
from subagents.definitions.catalog import Catalog, default_layers, load_catalog, select_agents
from subagents.definitions.spec import AgentSpec
from subagents.delegation import Delegation, Nesting
from subagents.errors import AgentNotFoundError, ModelCallError, ModelNotConfiguredError, SubagentsError
from subagents.events import EventSink, discard
from subagents.grants import ToolGrant, grant_tools
from subagents.history.records import RunInput
from subagents.history.store import RunStore
from subagents.jobs import JobManager, StartedSink
from subagents.loop import MessageSink, RunLimits, RunResult, run_agent
from subagents.messages import Message, Usage
from subagents.principals import LOCAL, Principal, RunLimiter
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.base import ModelProvider, ModelResolver
from subagents.providers.resilience import ResilientProvider, RetryPolicy
from subagents.recorder import RunRecorder
from subagents.roots import effective_roots
from subagents.tools.base import Tool
from subagents.tools.registry import Toolbox
from subagents.tools.web import web_tool_specs
from subagents.toolset import Toolset, open_toolset

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
    unavailable_tools: tuple[str, ...] = ()  # tools the agent's file names that it did not get here


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
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.provider = provider
        self.store = store
        self.recorder = RunRecorder(store)
        self.prices = prices or PriceTable()
        self.resolver = ModelResolver(aliases=settings.model_aliases, default=settings.default_model)
        self.jobs = JobManager()
        self.limiter = RunLimiter(settings.max_concurrent_runs)
        self._jobs_cm: AbstractAsyncContextManager[JobManager] | None = None

    @classmethod
    def build(cls, settings: Settings, env: Mapping[str, str] | None = None, *, agent: str | None = None) -> Subagents:
        """Everything from the settings. With `agent`, the log speaks only of that agent (a one-agent command)."""
        env = os.environ if env is None else env
        layers = default_layers(
            project_dir=settings.project_dir or Path.cwd(), extra_dirs=settings.agents_dirs, bundled=settings.bundled
        )
        catalog = select_agents(load_catalog(layers, require_dirs=settings.agents_dirs), settings.agents_filter)
        # Our own retries (with a breaker and a fallback) replace the SDK's.
        api = AnthropicProvider(AnthropicSettings.from_env(dict(env), max_retries=0))
        provider = ResilientProvider(
            api,
            RetryPolicy(attempts=settings.retry_attempts, base_delay_s=settings.retry_base_delay_s),
            fallback_model=settings.fallback_model,
        )
        store = None
        if settings.store_enabled:
            store = RunStore(settings.store_path or RunStore.default_path())
            if interrupted := store.mark_interrupted():
                log.warning("%d runs were left running by a server that stopped; marked interrupted", interrupted)
        prices = PriceTable.from_file(settings.prices_file) if settings.prices_file else PriceTable()
        app = cls(settings, catalog, provider, store=store, prices=prices)
        app.log_startup(agent)
        return app

    async def __aenter__(self) -> Subagents:
        self._jobs_cm = self.jobs.running()
        await self._jobs_cm.__aenter__()
        self.jobs.spawn(self._warm_up)
        return self

    async def _warm_up(self) -> None:
        for provider in (self.provider, getattr(self.provider, "inner", None)):
            warm = getattr(provider, "warm_up", None)
            if warm is not None:
                await warm()

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self._jobs_cm is not None:
                await self._jobs_cm.__aexit__(None, None, None)
        finally:
            await self.aclose()

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
            grant = self.grant(spec)
            if not grant.lacking:
                continue
            # Bundled agents list Bash on purpose (it is opt-in here), so that is no warning.
            level = logging.INFO if spec.layer == "bundled" and not grant.refused else logging.WARNING
            runs = (
                "calls are refused" if grant.refused else f"the agent runs with {', '.join(grant.tools) or 'no tools'}"
            )
            lacks = ", ".join(lack.explained() for lack in grant.lacking)
            where = spec.source or spec.name
            log.log(level, "%s: %s: not available on this server: %s; %s", where, spec.name, lacks, runs)

    def grant(self, spec: AgentSpec, *, depth: int = 1) -> ToolGrant:
        """What `spec` gets on this server, and what it lacks: the one answer every edge shows."""
        return grant_tools(spec, self.settings, depth=depth)

    def tool_names(self, spec: AgentSpec) -> tuple[str, ...]:
        return self.grant(spec).tools

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

    def budget(self, spec: AgentSpec, spent_today: float) -> RunBudget:
        return RunBudget(
            max_output_tokens=tightest(spec.options.max_output_tokens, self.settings.max_output_tokens),
            max_cost_usd=tightest(spec.options.max_cost_usd, self.settings.max_cost_usd),
            daily_cost_usd=self.settings.daily_budget_usd,
            spent_today_usd=spent_today,
        )

    def unpriced(self, models: Sequence[str | None]) -> str | None:
        """With a cost budget set, a model without a price would make the budget blind: name it."""
        if self.settings.max_cost_usd is None and self.settings.daily_budget_usd is None:
            return None
        return next((m for m in models if m and self.prices.price(m) is None), None)

    async def run(
        self,
        agent: str,
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
    ) -> RunOutcome:
        """Run one agent on a new task, in one of `principal`'s run slots (TooManyRuns when none is free).
        `started` hears the run id as soon as it exists; `parent_id` records it as that run's child."""
        spec = self.agent(agent)
        with self.limiter.reserve(principal):
            return await self._execute(
                spec,
                [first_user_message(task, context, files)],
                RunInput(task=task, context=context, files=tuple(files)),
                events=events,
                roots=roots,
                started=started,
                client=client,
                principal=principal,
                nesting=Nesting(parent_id=parent_id),
            )

    async def run_delegated(
        self, agent: str, task: str, nesting: Nesting, *, events: EventSink, client: str | None, principal: Principal
    ) -> RunOutcome:
        """A run another run hands work to (Task): its child, one level deeper, in a run slot of its own."""
        spec = self.agent(agent)
        with self.limiter.reserve(principal):
            return await self._execute(
                spec,
                [first_user_message(task)],
                RunInput(task=task),
                events=events,
                roots=nesting.roots,
                started=None,
                client=client,
                principal=principal,
                nesting=nesting,
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
        `principal`'s run slots."""
        record = await self.recorder.get(run_id)
        job = self.jobs.get(run_id)
        if record.status == "running" and job is not None and not job.done.is_set():
            raise ModelCallError(
                f"Run {run_id} is still running; wait for it (get_run) or cancel it first.", kind="busy"
            )
        spec = self.agent(record.agent)
        with self.limiter.reserve(principal):
            return await self._execute(
                spec,
                follow_up(record.transcript, message),
                RunInput(task=message),
                events=events,
                started=started,
                client=client,
                continued_from=run_id,
                roots=roots,
                principal=principal,
            )

    async def _execute(
        self,
        spec: AgentSpec,
        conversation: list[Message],
        run_input: RunInput,
        *,
        events: EventSink,
        roots: Sequence[Path] | None = None,
        started: StartedSink | None,
        client: str | None,
        continued_from: str | None = None,
        principal: Principal = LOCAL,
        nesting: Nesting | None = None,
    ) -> RunOutcome:
        nesting = nesting or Nesting()
        model = self.resolver.resolve(spec.model)
        spent = await self.recorder.spent_today() if self.settings.daily_budget_usd else 0.0
        meter = BudgetMeter(self.budget(spec, spent).within(*nesting.left), self.prices)
        run_id = await self.recorder.start(
            agent=spec.name,
            model=model,
            input=run_input,
            continued_from=continued_from,
            client=client,
            parent_id=nesting.parent_id,
        )
        grant = self.grant(spec, depth=nesting.depth)
        base = RunOutcome(
            run_id=run_id,
            agent=spec.name,
            model=model,
            status="failed",
            report="",
            continued_from=continued_from,
            unavailable_tools=tuple(lack.name for lack in grant.lacking),
        )
        run = _Run(spec, conversation, base, model, meter, events, _Progress(), grant, principal, client, nesting)
        try:
            if started is not None:
                await started(run_id)
            await self.recorder.messages(run_id, conversation)

            async def on_messages(messages: Sequence[Message]) -> None:
                run.progress.add(messages)
                await self.recorder.messages(run_id, messages)
                await self.recorder.progress(
                    run_id, turns=run.progress.turns, usage=meter.usage, cost_usd=meter.cost_usd
                )

            run.on_messages = on_messages
            outcome = await self._guarded(run, roots)
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
            outcome = _ended(run.partial(), "failed", f"Internal error: {type(exc).__name__}: {exc}", "internal")
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
        if run.grant.refused:
            return _ended(run.base, "failed", run.grant.refusal(run.spec.name), "tools_unavailable")
        async with AsyncExitStack() as stack:
            local = [t for t in run.grant.local if t != run.grant.delegation]
            try:
                toolset = await stack.enter_async_context(
                    open_toolset(local, tuple(roots or self.roots()), self.settings.bash, shared=run.nesting.workspace)
                )
            except (SubagentsError, ValueError) as exc:
                return _ended(run.base, "failed", f"The agent's file tools cannot be set up: {exc}", "config")
            outcome = await self._loop(run, self._toolbox(run, toolset))
            if outcome.status == "cancelled":
                return outcome
            try:
                diff = await toolset.diff()
            except SubagentsError as exc:
                return _ended(outcome, "failed", f"The agent's changes could not be collected: {exc}", "diff")
            return outcome if diff is None else outcome.model_copy(update={"diff": diff})

    def _toolbox(self, run: _Run, toolset: Toolset) -> Toolbox:
        """The run's own tools, then its Task tool (when it may delegate), then the API's web tools."""
        extra: dict[str, Tool] = {}
        if run.grant.delegation is not None:
            delegation = Delegation(
                run_id=run.base.run_id,
                nesting=run.nesting,
                grant=run.grant,
                toolset=toolset,
                meter=run.meter,
                events=run.events,
                principal=run.principal,
                client=run.client,
                run_delegated=self.run_delegated,
            )
            extra[run.grant.delegation] = delegation.tool(self.catalog, self.grant)
            run.events = delegation.parent_event
        return toolset.toolbox.extended(extra, web_tool_specs(run.grant.web, self.settings.web))

    async def _loop(self, run: _Run, toolbox: Toolbox) -> RunOutcome:
        spec = run.spec
        timeout = self.timeout_s(spec)
        try:
            with anyio.fail_after(timeout):
                result = await run_agent(
                    spec,
                    run.conversation,
                    model=run.model,
                    provider=self.provider,
                    tools=toolbox,
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
    grant: ToolGrant
    principal: Principal
    client: str | None
    nesting: Nesting
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
        }
    )


def tightest(*limits: T | None) -> T | None:
    """The lowest of the limits that are set; None when none is (None means no limit)."""
    return min((limit for limit in limits if limit is not None), default=None)


def _ended(base: RunOutcome, status: RunStatus, message: str, kind: str) -> RunOutcome:
    if status != "cancelled":
        log.warning("run %s (%s) %s: %s", base.run_id, base.agent, status, message)
    report = f"{base.report}\n\n{message}" if base.report else f"Error: {message}"
    return base.model_copy(update={"status": status, "error": message, "error_kind": kind, "report": report})
