"""subagents: specialist LLM subagents served as MCP tools."""

__version__ = "0.1.0"
