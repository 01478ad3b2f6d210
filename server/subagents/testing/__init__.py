"""Test your own agents offline: an in-process server on the package's fake Messages API, and assertions.

With pytest, the fixtures `fake_model`, `subagents_server` and `mcp_client` come from the plugin the package
registers (`subagents.testing.plugin`); these names are for the test body::

    from subagents.testing import completed, files_read, text, tool_use, tools_offered
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from subagents.providers.testing import (
        FakeMessagesServer,
        RecordedRequest,
        Reply,
        demo_responder,
        error,
        text,
        tool_use,
        tool_uses,
    )
    from subagents.testing.assertions import (
        ToolCall,
        completed,
        files_read,
        refused,
        report,
        structured,
        tool_calls,
        tools_called,
        tools_offered,
    )
    from subagents.testing.harness import InProcessServer, ServerFactory, build_app, client_roots, model_env
    from subagents.testing.plugin import both_eras

_WHERE = {
    "subagents.providers.testing": (
        "FakeMessagesServer",
        "RecordedRequest",
        "Reply",
        "demo_responder",
        "error",
        "text",
        "tool_use",
        "tool_uses",
    ),
    "subagents.testing.assertions": (
        "ToolCall",
        "completed",
        "files_read",
        "refused",
        "report",
        "structured",
        "tool_calls",
        "tools_called",
        "tools_offered",
    ),
    "subagents.testing.harness": ("InProcessServer", "ServerFactory", "build_app", "client_roots", "model_env"),
    "subagents.testing.plugin": ("both_eras",),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = [
    "FakeMessagesServer",
    "InProcessServer",
    "RecordedRequest",
    "Reply",
    "ServerFactory",
    "ToolCall",
    "both_eras",
    "build_app",
    "client_roots",
    "completed",
    "demo_responder",
    "error",
    "files_read",
    "model_env",
    "refused",
    "report",
    "structured",
    "text",
    "tool_calls",
    "tool_use",
    "tool_uses",
    "tools_called",
    "tools_offered",
]


def __getattr__(name: str) -> Any:
    """Imported on first use, so that loading the pytest plugin costs a test session nothing."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'subagents.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
