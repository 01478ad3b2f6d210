"""Builds every dependency in one place, and runs one agent call end to end."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict

from subagents.config import Settings
from subagents.definitions.catalog import Catalog, default_layers, load_catalog
from subagents.definitions.spec import AgentSpec
from subagents.errors import AgentNotFoundError, ModelCallError, ModelNotConfiguredError, SandboxError
from subagents.events import EventSink, discard
from subagents.loop import RunLimits, first_user_message, run_agent
from subagents.messages import Usage
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.base import ModelProvider, ModelResolver
from subagents.tools.registry import FILE_TOOLS, Toolbox, build_tools
from subagents.tools.sandbox import Sandbox

log = logging.getLogger(__name__)

RunStatus = Literal["completed", "failed", "cancelled", "budget_exceeded"]


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
    stop_reason: str | None = None
    error: str | None = None
    error_kind: str | None = None


class Subagents:
    """The service behind every edge (MCP server, CLI): a catalog, a model provider and the roots."""

    def __init__(self, settings: Settings, catalog: Catalog, provider: ModelProvider) -> None:
        self.settings = settings
        self.catalog = catalog
        self.provider = provider
        self.resolver = ModelResolver(aliases=settings.model_aliases, default=settings.default_model)

    @classmethod
    def build(cls, settings: Settings, env: Mapping[str, str] | None = None) -> Subagents:
        env = os.environ if env is None else env
        layers = default_layers(project_dir=settings.project_dir or Path.cwd(), extra_dirs=settings.agents_dirs,
                                bundled=settings.bundled)
        catalog = load_catalog(layers, require_dirs=settings.agents_dirs)
        provider = AnthropicProvider(AnthropicSettings.from_env(dict(env)))
        app = cls(settings, catalog, provider)
        app.log_startup()
        return app

    async def __aenter__(self) -> Subagents:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        close = getattr(self.provider, "aclose", None)
        if close is not None:
            await close()

    def log_startup(self) -> None:
        self.catalog.log_problems()
        for spec in self.catalog.agents.values():
            missing = [t for t in spec.effective_tools if t not in FILE_TOOLS]
            if spec.tools is not None and missing:
                log.warning("%s: %s not enabled on this server; the agent runs with %s only", spec.name,
                            ", ".join(missing), ", ".join(self.tool_names(spec)) or "no tools")
        log.info("serving %d agents: %s", len(self.catalog.agents), ", ".join(sorted(self.catalog.agents)))

    def tool_names(self, spec: AgentSpec) -> tuple[str, ...]:
        return tuple(t for t in spec.effective_tools if t in FILE_TOOLS)

    def agent(self, name: str) -> AgentSpec:
        spec = self.catalog.get(name)
        if spec is None:
            known = ", ".join(sorted(self.catalog.agents)) or "none"
            raise AgentNotFoundError(f"No agent named {name!r}. Loaded agents: {known}.")
        return spec

    def roots(self) -> tuple[Path, ...]:
        return self.settings.effective_roots()

    def limits(self, spec: AgentSpec) -> RunLimits:
        return RunLimits(
            max_turns=spec.max_turns or self.settings.default_max_turns,
            max_tokens=spec.options.max_tokens or self.settings.default_max_tokens,
            temperature=spec.options.temperature,
        )

    async def run(
        self,
        agent: str,
        task: str,
        *,
        context: str | None = None,
        files: Sequence[str] = (),
        events: EventSink = discard,
        roots: Sequence[Path] | None = None,
    ) -> RunOutcome:
        spec = self.agent(agent)
        model = self.resolver.resolve(spec.model)
        run_id = f"run_{uuid.uuid4().hex[:12]}"
        base = RunOutcome(run_id=run_id, agent=spec.name, model=model, status="failed", report="")
        try:
            sandbox = Sandbox(tuple(roots or self.roots()))
        except (SandboxError, ValueError) as exc:
            return _failed(base, f"The file roots are not usable: {exc}", "config")
        toolbox = Toolbox(build_tools(self.tool_names(spec), sandbox))
        timeout = spec.options.timeout or self.settings.run_timeout_s
        try:
            with anyio.fail_after(timeout):
                result = await run_agent(spec, [first_user_message(task, context, files)], model=model,
                                         provider=self.provider, tools=toolbox, limits=self.limits(spec),
                                         events=events)
        except ModelNotConfiguredError as exc:
            return _failed(base, str(exc), "not_configured")
        except ModelCallError as exc:
            return _failed(base, str(exc), exc.kind)
        except TimeoutError:
            return _failed(base, f"The run took longer than its {timeout:g} s timeout and was stopped.", "timeout")
        return base.model_copy(update={
            "status": "completed", "report": result.report, "turns": result.turns, "usage": result.usage,
            "stop_reason": result.stop_reason,
        })


def _failed(base: RunOutcome, message: str, kind: str) -> RunOutcome:
    log.warning("run %s (%s) failed: %s", base.run_id, base.agent, message)
    return base.model_copy(update={"status": "failed", "error": message, "error_kind": kind,
                                   "report": f"Error: {message}"})
