"""Server settings, from flags and SUBAGENTS_* environment variables, checked once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from subagents.errors import ConfigError
from subagents.history.base import LEASE_TTL_S
from subagents.providers.base import DEFAULT_ALIASES, DEFAULT_MODEL
from subagents.providers.claude_code.options import ClaudeCodeSettings
from subagents.tools.bash import BashPolicy
from subagents.tools.web import WebPolicy

DEFAULT_MAX_CONCURRENT_RUNS = 32  # per caller; why 32: Settings.max_concurrent_runs


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    agents_dirs: tuple[Path, ...] = ()
    bundled: bool = True
    roots: tuple[Path, ...] = ()  # explicit --root; empty means: CLAUDE_PROJECT_DIR, else cwd
    allow_hardlinks: bool = False  # file tools refuse files with several names unless --allow-hardlinks
    project_dir: Path | None = None
    default_model: str = DEFAULT_MODEL
    model_aliases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ALIASES))
    # Ceilings: an agent file may set lower limits, never higher ones.
    max_turns: int = Field(default=50, ge=1, le=500)
    max_tokens_per_turn: int = Field(default=64_000, ge=1, le=128_000)
    run_timeout_s: float = Field(default=1800.0, gt=0)
    # What an agent that sets no limit of its own gets (still under the ceilings above).
    default_max_turns: int = Field(default=20, ge=1, le=500)
    default_max_tokens: int = Field(default=8192, ge=1, le=128_000)
    max_report_chars: int = Field(default=40_000, ge=1_000)
    # Runs: history, budgets, retries (issue: runs that survive).
    store_url: str | None = None  # a SQLite file path or a postgresql:// URL; None: default_location()
    store_enabled: bool = True
    # How long a replica may miss renewing the leases on its runs (every quarter of it) before another
    # replica takes it for dead and marks its runs interrupted. Shorter: faster reaping, more writes.
    lease_ttl_s: float = Field(default=LEASE_TTL_S, ge=1, le=3600)
    max_output_tokens: int | None = Field(default=None, ge=1)  # per run, summed over turns
    max_cost_usd: float | None = Field(default=None, gt=0)  # per run
    daily_budget_usd: float | None = Field(default=None, gt=0)  # per store (every replica), UTC day
    caller_daily_budget_usd: float | None = Field(default=None, gt=0)  # per authenticated caller, UTC day
    prices_file: Path | None = None
    fallback_model: str | None = None
    retry_attempts: int = Field(default=4, ge=1, le=10)
    retry_base_delay_s: float = Field(default=0.5, ge=0)
    heartbeat_s: float = Field(default=5.0, gt=0)
    # Agent runs in flight per caller, background runs and pattern and Task children included. Claude Code
    # runs up to 10 tool calls of one turn at once, and a fan-out holds a slot per child it runs at once (up
    # to pattern_concurrency, at most 16): 32 lets one user's turn run the widest fan-out beside its other
    # 9 calls (16 + 9), or four fan-outs at the default width of 8, without a refusal.
    max_concurrent_runs: int = Field(default=DEFAULT_MAX_CONCURRENT_RUNS, ge=1, le=10_000)
    bash: BashPolicy = BashPolicy()  # off unless --allow-bash names command prefixes
    web: WebPolicy = WebPolicy()  # WebFetch and WebSearch: off unless --web-tools
    # Orchestration patterns: which are served as tools, how many children run at once.
    patterns: tuple[str, ...] = ("fan_out",)
    pattern_concurrency: int = Field(default=8, ge=1, le=16)
    # Delegation depth, one count for pattern children, Task children and nested servers: a client's call
    # is depth `delegation_depth + 1` (a delegating parent process sets SUBAGENTS_DELEGATION_DEPTH, 0 at the
    # top), each child one deeper, and no run is deeper than `max_depth` (see depth.py).
    max_depth: int = Field(default=3, ge=1, le=10)
    delegation_depth: int = Field(default=0, ge=0, le=100)
    # MCP surface: one tool per agent ("off"), one delegate tool ("on"), or by catalog size ("auto").
    catalog_mode: Literal["auto", "on", "off"] = "auto"
    agents_filter: tuple[str, ...] = ()  # --agents: names or globs of the agents to serve; empty: all
    watch: bool = True  # `serve` follows changes to the agent files (live reload); --no-watch turns it off
    # Who runs the agents: the Messages API on a key, Claude Code on the user's login, or auto (see backends.py).
    provider: Literal["anthropic", "claude-code", "auto"] = "auto"
    claude_code: ClaudeCodeSettings = ClaudeCodeSettings()
    transport: Literal["stdio", "http"] = "stdio"
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)

    def effective_roots(self) -> tuple[Path, ...]:
        if self.roots:
            return self.roots
        return (self.project_dir or Path.cwd(),)


def split_paths(value: str | None) -> tuple[Path, ...]:
    if not value:
        return ()
    return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p)


def parse_aliases(items: list[str] | None, env_value: str | None) -> dict[str, str]:
    """`opus=claude-opus-5-5` pairs from --model-alias and SUBAGENTS_MODEL_ALIASES (comma-separated)."""
    aliases = dict(DEFAULT_ALIASES)
    pairs = [p for p in (env_value or "").split(",") if p.strip()] + list(items or [])
    for pair in pairs:
        alias, sep, model = pair.partition("=")
        if not sep or not alias.strip() or not model.strip():
            raise ConfigError(f"model alias {pair!r} must look like alias=model-id, e.g. opus=claude-opus-5-5")
        aliases[alias.strip().lower()] = model.strip()
    return aliases


def check_dirs(paths: tuple[Path, ...], what: str) -> tuple[Path, ...]:
    resolved = []
    for path in paths:
        if not path.is_dir():
            raise ConfigError(f"{what} {str(path)!r} is not a directory; pass an existing directory")
        resolved.append(path.resolve())
    return tuple(resolved)


def project_dir_from_env(env: Mapping[str, str]) -> Path | None:
    value = env.get("CLAUDE_PROJECT_DIR")
    return Path(value).expanduser().resolve() if value and Path(value).is_dir() else None
