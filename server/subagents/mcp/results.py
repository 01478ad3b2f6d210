"""What every MCP tool here shares: known errors as readable results, bounded text, progress, client names."""

from __future__ import annotations

import functools
import json
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent

from subagents.errors import SubagentsError


def errors_as_results(fn: Any) -> Any:
    """Known errors (unknown run, history off, still running) become readable is_error results."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> CallToolResult:
        try:
            return await fn(*args, **kwargs)  # type: ignore[no-any-return]
        except BaseException as exc:
            inner = single(exc)  # task groups (the progress heartbeat) wrap what the run raised
            if not isinstance(inner, SubagentsError):
                raise
            return CallToolResult(
                content=[TextContent(type="text", text=str(inner))],
                is_error=True,
                structured_content={"status": "error", "error": str(inner)},
            )

    return wrapper


def single(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def result(data: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(data, indent=2))], structured_content=data)


def bound_text(report: str, max_chars: int, run_id: str) -> str:
    """Keep results under the client's limits (Claude Code spills past ~50k characters)."""
    if len(report) <= max_chars:
        return report
    note = (
        f"\n\n[report truncated at {max_chars} of {len(report)} characters; the whole report and "
        f"transcript are in resource subagents://runs/{run_id}]"
    )
    return report[: max_chars - len(note)] + note


def progress_sender(ctx: Context) -> Any:
    async def send(progress: float, total: float | None, message: str) -> None:
        await ctx.report_progress(progress, total, message)

    return send


def client_name(ctx: Context) -> str | None:
    """Best effort: the client's name from the handshake (2025) or the request envelope (2026)."""
    try:
        meta = ctx.request_context.meta or {}
        info = meta.get("io.modelcontextprotocol/clientInfo")
        if isinstance(info, dict) and info.get("name"):
            return str(info["name"])
        params = getattr(ctx.session, "client_params", None)
        return str(params.client_info.name) if params is not None else None
    except (AttributeError, LookupError, ValueError):
        return None
