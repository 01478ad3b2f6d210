"""`subagents …` commands. Output for people goes to stdout; logs go to stderr."""

from subagents.cli.main import main

__all__ = ["main"]
