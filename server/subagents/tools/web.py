"""WebFetch and WebSearch: the Messages API's own web tools, which the API runs itself.

They send what the model writes (search queries, URLs) out of this machine and cost money, so they are off
unless the operator turns them on (`serve --web-tools`), optionally for some domains only. Fetches are
limited to URLs that came from the task or from the web tools' own results: a URL planted in a file the
agent read cannot be fetched, so file contents cannot steer fetches into a covert channel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from subagents.messages import ServerToolSpec

WEB_TOOLS = ("WebFetch", "WebSearch")
# The newest versions anthropic 2.16 knows (anthropic/types/web_*_tool_20260318_param.py).
WEB_FETCH = ("web_fetch_20260318", "web_fetch")
WEB_SEARCH = ("web_search_20260318", "web_search")
API_NAMES = {"WebFetch": WEB_FETCH[1], "WebSearch": WEB_SEARCH[1]}
FETCH_MAX_CONTENT_TOKENS = 20_000  # one fetched page, so a huge page cannot flood the agent's context
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?:/\S*)?$")  # example.com, example.com/docs


class WebPolicy(BaseModel):
    """Server configuration for the web tools: off unless `enabled`; then, if `allowed_domains` is set, only
    those domains (and their subdomains) are searched or fetched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    allowed_domains: tuple[str, ...] = ()
    max_uses: int = Field(default=5, ge=1, le=100, description="searches or fetches per model turn")

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        for domain in domains:
            if not _DOMAIN.fullmatch(domain):
                raise ValueError(
                    f"{domain!r} is not a domain: give one like example.com or docs.example.com, without "
                    "https:// or spaces"
                )
        return domains


def web_tool_specs(names: Iterable[str], policy: WebPolicy) -> tuple[ServerToolSpec, ...]:
    """The server tool definitions for the web tools among `names`, as the request sends them."""
    if not policy.enabled:
        return ()
    specs = []
    for name in dict.fromkeys(names):
        if name == "WebSearch":
            specs.append(ServerToolSpec(type=WEB_SEARCH[0], name=WEB_SEARCH[1], options=_common(policy)))
        elif name == "WebFetch":
            options = _common(policy) | {
                "max_content_tokens": FETCH_MAX_CONTENT_TOKENS,
                "url_sources": {
                    "user_input": {"type": "all"},
                    "server_tool_results": {"type": "all"},
                    "client_tool_results": {"type": "none"},
                },
            }
            specs.append(ServerToolSpec(type=WEB_FETCH[0], name=WEB_FETCH[1], options=options))
    return tuple(specs)


def _common(policy: WebPolicy) -> dict[str, Any]:
    options: dict[str, Any] = {"max_uses": policy.max_uses}
    if policy.allowed_domains:
        options["allowed_domains"] = list(policy.allowed_domains)
    return options
