"""Errors a user or a model can hit. Each message says what happened and what to do."""

from __future__ import annotations


class SubagentsError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(SubagentsError):
    """A setting, flag or environment variable is wrong."""


class AgentNotFoundError(SubagentsError):
    """No agent with that name is loaded."""


class ModelNotConfiguredError(SubagentsError):
    """No credentials for the model provider."""


class ModelCallError(SubagentsError):
    """The model provider failed in a way that retries did not fix.

    `kind` is a short machine-readable cause: rate_limited, overloaded, auth, bad_request,
    not_found, timeout, connection, server_error, unknown.
    """

    def __init__(
        self, message: str, *, kind: str, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s


class SandboxError(SubagentsError):
    """A tool asked for a path or input the sandbox refuses. The message is shown to the model."""
