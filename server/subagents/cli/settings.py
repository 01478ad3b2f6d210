"""Settings from the command line and SUBAGENTS_* environment variables, and the app built from them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from subagents.cli.patterns import pattern_settings
from subagents.cli.tool_flags import TOOL_FLAG_DEFAULTS, tool_settings
from subagents.config import Settings, check_dirs, parse_aliases, project_dir_from_env, split_paths
from subagents.errors import ConfigError
from subagents.providers.claude_code.options import ClaudeCodeSettings

if TYPE_CHECKING:
    from subagents.app import Subagents


def settings_from_args(args: argparse.Namespace, **extra: object) -> Settings:
    """Settings from the flags a command has; the run flags (store, budgets) only `serve`, `run` and the
    pattern commands take, the tool flags those and `agents …`."""
    env = os.environ
    args = argparse.Namespace(**(vars(_RUN_FLAG_DEFAULTS) | vars(args)))
    agents_dirs = split_paths(env.get("SUBAGENTS_AGENTS_DIR")) + tuple(args.agents_dir)
    roots = check_dirs(tuple(args.root) or split_paths(env.get("SUBAGENTS_ROOTS")), "--root")
    project_dir = project_dir_from_env(env) or (roots[0] if roots else Path.cwd().resolve())
    return make_settings(
        agents_dirs=check_dirs(agents_dirs, "--agents-dir"),
        bundled=not (args.no_bundled or env.get("SUBAGENTS_NO_BUNDLED") == "1"),
        roots=roots,
        allow_hardlinks=args.allow_hardlinks or env.get("SUBAGENTS_ALLOW_HARDLINKS") == "1",
        project_dir=project_dir,
        default_model=args.model or env.get("SUBAGENTS_MODEL") or "sonnet",
        model_aliases=parse_aliases(args.model_alias, env.get("SUBAGENTS_MODEL_ALIASES")),
        store_url=args.store or env.get("SUBAGENTS_STORE") or None,
        store_enabled=not args.no_store,
        max_output_tokens=args.max_output_tokens,
        max_cost_usd=args.max_cost,
        daily_budget_usd=args.daily_budget or float_env(env, "SUBAGENTS_DAILY_BUDGET"),
        prices_file=args.prices,
        fallback_model=args.fallback_model,
        provider=args.provider or env.get("SUBAGENTS_PROVIDER") or "auto",
        claude_code=extra.pop("claude_code", None) or claude_code_settings(args),
        **({"run_timeout_s": args.timeout} if args.timeout else {}),
        **({"max_turns": args.max_turns} if args.max_turns else {}),
        **pattern_settings(args, env),
        **tool_settings(args, env),
        **extra,
    )


def claude_code_settings(args: argparse.Namespace, **overrides: object) -> ClaudeCodeSettings:
    values = {
        "warm_sessions": args.warm_sessions,
        "warm_idle_s": args.warm_idle,
        "warm_memory_mb": args.warm_memory,
        "cli_path": args.claude_cli,
        "setting_sources": tuple(dict.fromkeys(args.claude_settings)),
    }
    try:
        return ClaudeCodeSettings.model_validate(values | overrides)
    except ValidationError as exc:
        raise ConfigError(f"invalid Claude Code settings: {validation_reasons(exc)}") from None


_RUN_FLAG_DEFAULTS = argparse.Namespace(
    store=None,
    no_store=False,
    max_output_tokens=None,
    max_cost=None,
    daily_budget=None,
    prices=None,
    fallback_model=None,
    timeout=None,
    max_turns=None,
    patterns=None,
    pattern_concurrency=None,
    provider=None,
    warm_sessions=1,
    warm_idle=600.0,
    warm_memory=1024,
    claude_cli=None,
    claude_settings=[],
    **TOOL_FLAG_DEFAULTS,
)


def make_settings(**values: object) -> Settings:
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {validation_reasons(exc)}") from None


def validation_reasons(exc: ValidationError) -> str:
    return "; ".join(f"{exc.title} {'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors())


def float_env(env: Mapping[str, str], name: str) -> float | None:
    value = env.get(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number; give an amount in USD, e.g. {name}=5") from None


def build_app(settings: Settings, *, agent: str | None = None) -> Subagents:
    """The app; with `agent`, only that agent's warnings are logged (`run`, `agents show`)."""
    from subagents.app import Subagents

    return Subagents.build(settings, agent=agent)
