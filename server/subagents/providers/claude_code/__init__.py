"""Subagent runs as Claude Code sessions, on the user's Claude Code login, through `claude-agent-sdk`.

Nothing here imports the SDK at module level: it costs seconds to import, and only a server that runs
an agent on Claude Code pays for it (`options.py` and `session.py` import it when a session starts).
"""
