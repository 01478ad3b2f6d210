"""`subagents demo [AGENT]`: one specialist, offline, on a small sample project with a planted bug.

It starts the package's fake Messages API in this process (nothing to stop afterwards, nothing logged into
the terminal), copies the bundled sample project to a temporary folder, and runs the agent there with the
real loop, the real SDK over real HTTP and the real sandboxed tools. Only the model is the offline demo
model (`providers/demo_model.py`), which answers in the agent's own output shape. Demo runs cost $0 and are
kept apart from the real history: they go to their own store, tagged as demo runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from subagents.budget import Price, PriceTable
from subagents.cli.run import print_outcome, run_with_progress
from subagents.cli.settings import settings_from_args
from subagents.providers.base import DEFAULT_ALIASES
from subagents.providers.testing import FakeMessagesServer, demo_responder

DEMO_MODEL = "subagents-demo"
FREE = Price(input=0, output=0, cache_write=0, cache_read=0)
REVIEW = "Review the admin user search (shop/users.py and its caller shop/web.py) for security problems."
TASKS: dict[str, tuple[str, str | None, list[str]]] = {  # agent: (task, context, files)
    "security-reviewer": (REVIEW, None, ["shop/users.py", "shop/web.py"]),
    "test-writer": ("Write unit tests for the functions in shop/users.py.", None, ["shop/users.py"]),
    "router": ("Can the admin search in shop/web.py be abused to read other users' data?", None, []),
    "debate-judge": (
        "Which fix should we adopt for the SQL built from a string in find_user?",
        'A: Escape the quotes in name (name.replace("\'", "\'\'")) before building the query.\n'
        "B: Pass name as a query parameter, as add_user already does (shop/users.py:8), "
        "and drop the f-string at shop/users.py:13.",
        ["shop/users.py"],
    ),
}


class DemoPrices(PriceTable):
    """Every model is free: the demo model costs nothing, whatever an agent file names."""

    def price(self, model: str) -> Price | None:
        return FREE


def sample_project() -> Path:
    return Path(__file__).resolve().parents[1] / "demo_project"


def demo_store() -> Path:
    """The demo's own run store, beside the real one but never the same file."""
    data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "subagents" / "demo-runs.db"


def cmd_demo(args: argparse.Namespace) -> int:
    from subagents.app import Subagents

    task, context, files = TASKS.get(args.agent, (REVIEW.replace("security problems", "problems"), None, []))
    with tempfile.TemporaryDirectory(prefix="subagents-demo-") as tmp:
        project = Path(tmp) / "shop"
        shutil.copytree(sample_project(), project, ignore=shutil.ignore_patterns("__pycache__"))
        with FakeMessagesServer(demo_responder) as fake:
            settings = settings_from_args(args).model_copy(
                update={
                    "roots": (project,),
                    "default_model": DEMO_MODEL,
                    "model_aliases": {alias: DEMO_MODEL for alias in DEFAULT_ALIASES},
                    "store_url": str(demo_store()),
                    "provider": "anthropic",
                    "store_enabled": True,
                }
            )
            env = {"ANTHROPIC_API_KEY": "subagents-demo-key", "ANTHROPIC_BASE_URL": fake.url}
            app = Subagents.build(settings, env=env, agent=args.agent)
            app.prices = DemoPrices()
            app.agent(args.agent)  # an unknown name fails here, before anything is printed
            print(f"subagents demo: {args.agent} on a sample project with a planted bug, copied to {project}")
            print(f"task: {task}\n")
            sys.stdout.flush()
            run_args = argparse.Namespace(
                agent=args.agent,
                task=task,
                context=context,
                file=files,
                quiet=args.quiet,
                json=False,
                verbose=args.verbose,
            )
            outcome, elapsed = run_with_progress(app, run_args, client="demo")
        print_outcome(outcome, elapsed, as_json=False)
        if outcome.diff:
            print(f"\nThe agent's changes, as a diff (the sample project was not modified):\n\n{outcome.diff}")
    print(next_steps(args.agent))
    return 0 if outcome.status == "completed" else 1


def next_steps(agent: str) -> str:
    example = '"Review src/auth.py" --file src/auth.py' if agent == "security-reviewer" else '"your task"'
    return f"""
That was the offline demo model (pattern matching, not a review): nothing left this machine and it cost $0.
The run is kept apart from your history: subagents runs list --store {demo_store()}

Next:
  export ANTHROPIC_API_KEY=sk-ant-...                        a real model (subagents doctor checks it)
  subagents run {agent} {example}
  subagents install claude-code                              the agents as tools in Claude Code"""
