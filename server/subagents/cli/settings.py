"""Settings from the command line and SUBAGENTS_* environment variables, and the app built from them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from subagents.config import Settings, check_dirs, parse_aliases, project_dir_from_env, split_paths
from subagents.errors import ConfigError
from subagents.tools.bash import BashPolicy
from subagents.tools.web import WebPolicy

if TYPE_CHECKING:
    from subagents.app import Subagents


def settings_from_args(args: argparse.Namespace, **extra: object) -> Settings:
    env = os.environ
    agents_dirs = split_paths(env.get("SUBAGENTS_AGENTS_DIR")) + tuple(args.agents_dir)
    roots = check_dirs(tuple(args.root) or split_paths(env.get("SUBAGENTS_ROOTS")), "--root")
    project_dir = project_dir_from_env(env) or (roots[0] if roots else Path.cwd().resolve())
    return make_settings(
        agents_dirs=check_dirs(agents_dirs, "--agents-dir"),
        bundled=not (args.no_bundled or env.get("SUBAGENTS_NO_BUNDLED") == "1"),
        roots=roots,
        project_dir=project_dir,
        default_model=args.model or env.get("SUBAGENTS_MODEL") or "sonnet",
        model_aliases=parse_aliases(args.model_alias, env.get("SUBAGENTS_MODEL_ALIASES")),
        store_path=args.store or (Path(env["SUBAGENTS_STORE"]) if env.get("SUBAGENTS_STORE") else None),
        store_enabled=not args.no_store,
        max_output_tokens=args.max_output_tokens,
        max_cost_usd=args.max_cost,
        daily_budget_usd=args.daily_budget or _float_env(env, "SUBAGENTS_DAILY_BUDGET"),
        prices_file=args.prices,
        fallback_model=args.fallback_model,
        bash=bash_policy(args),
        web=web_policy(args),
        max_delegation_depth=args.max_delegation_depth,
        **({"run_timeout_s": args.timeout} if args.timeout else {}),
        **({"max_turns": args.max_turns} if args.max_turns else {}),
        **extra,
    )


def bash_policy(args: argparse.Namespace) -> BashPolicy:
    return BashPolicy(
        enabled=bool(args.allow_bash),
        allow=tuple(args.allow_bash),
        timeout_s=args.bash_timeout,
        read_only=check_dirs(tuple(args.bash_ro_bind), "--bash-ro-bind"),
    )


def web_policy(args: argparse.Namespace) -> WebPolicy:
    if args.web_allowed_domain and not args.web_tools:
        raise ConfigError("--web-allowed-domain needs --web-tools, which turns the web tools on")
    try:
        return WebPolicy(
            enabled=args.web_tools, allowed_domains=tuple(args.web_allowed_domain), max_uses=args.web_max_uses
        )
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(f"web tools: {reasons}") from None


def make_settings(**values: object) -> Settings:
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {validation_reasons(exc)}") from None


def validation_reasons(exc: ValidationError) -> str:
    return "; ".join(f"{exc.title} {'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors())


def _float_env(env: Mapping[str, str], name: str) -> float | None:
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
