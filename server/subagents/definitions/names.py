"""Agent names as Claude Code accepts them, and the MCP tool name each one is served under.

Claude Code takes any non-empty string as an agent name (`powershell-5.1-expert`, `My Agent`), except
one that starts with `-`, holds `:` (after NFKC) or is longer than 256 characters. An MCP tool name must
match `^[A-Za-z0-9_-]{1,64}$`, so a name that does not is mapped:

1. accents are dropped (NFKD, ASCII only): `café` -> `cafe`;
2. every run of other characters becomes one `-`: `powershell-5.1-expert` -> `powershell-5-1-expert`;
3. `-` at either end is dropped and the result is cut to 64 characters;
4. nothing left (`日本語`): `agent-` and six hex digits of the name's SHA-256.

Collisions: a name that is already a valid tool name keeps it. Mapped names are then given out in
sorted order; one that is taken (by a valid name, an earlier mapped one, or one of the server's own
tools such as `get_run`) gets `-` and six hex digits of the SHA-256 of the name as written
(`powershell-5-1-expert-1a2b3c`), so the suffix never depends on which other files exist.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_NAME_LENGTH = 256  # Claude Code's limit
_OTHER = re.compile(r"[^A-Za-z0-9_-]+")


def name_problem(name: str) -> str | None:
    """Why Claude Code refuses this agent name, or None when it takes it."""
    if name.startswith("-"):
        return "names must not start with '-'"
    if len(name) > MAX_NAME_LENGTH:
        return f"names must be at most {MAX_NAME_LENGTH} characters"
    if ":" in unicodedata.normalize("NFKC", name):
        return "names must not contain ':' (Claude Code keeps it for plugin namespaces)"
    return None


def tool_name_for(name: str) -> str:
    """The name itself when it is a valid MCP tool name, else its readable ASCII form (rules 1-4 above)."""
    if TOOL_NAME.fullmatch(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    mapped = _OTHER.sub("-", ascii_name).strip("-")[:64].rstrip("-")
    return mapped or f"agent-{_digest(name)}"


def assign_tool_names(names: Iterable[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """A unique tool name for each agent name: valid names first and as written, mapped ones after."""
    used = set(taken)
    result: dict[str, str] = {}
    ordered = sorted(set(names), key=lambda n: (not TOOL_NAME.fullmatch(n), n))
    for name in ordered:
        tool = tool_name_for(name)
        extra = 0
        while tool in used:  # one round in practice; more only if two digests clash
            tool = _suffixed(tool_name_for(name), name, extra)
            extra += 1
        used.add(tool)
        result[name] = tool
    return result


def _suffixed(base: str, name: str, extra: int) -> str:
    digest = _digest(name, 6 + extra)
    return f"{base[: 63 - len(digest)].rstrip('-')}-{digest}"


def _digest(name: str, length: int = 6) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:length]
