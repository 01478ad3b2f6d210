"""Retries with backoff, a circuit breaker per model, and a fallback model, around any provider."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from subagents.errors import ModelCallError
from subagents.messages import ModelRequest, ModelResponse
from subagents.providers.base import ModelProvider

log = logging.getLogger(__name__)

RETRYABLE = frozenset({"rate_limited", "overloaded", "server_error", "timeout", "connection", "conflict"})
FALLBACK_ON = frozenset(
    {"overloaded", "server_error", "timeout", "connection", "circuit_open", "rate_limited", "not_found"}
)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # the first try and three retries
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0  # a retry-after longer than this is cut to it
    jitter: float = 0.25

    def delay(self, attempt: int, error: ModelCallError, rand: float) -> float:
        if error.retry_after_s is not None:
            return min(error.retry_after_s, self.max_retry_after_s)
        backoff = min(self.base_delay_s * 2.0 ** (attempt - 1), self.max_delay_s)
        return backoff * (1 - self.jitter * rand)


@dataclass
class CircuitBreaker:
    """Opens after `threshold` failed calls in a row; while open it answers at once, until `cooldown_s`
    has passed and one trial call is let through (half-open)."""

    threshold: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    trial_running: bool = False

    def check(self, model: str) -> None:
        if self.opened_at is None:
            return
        waited = self.clock() - self.opened_at
        if waited < self.cooldown_s or self.trial_running:
            raise ModelCallError(
                f"The circuit for {model} is open after {self.failures} failed calls in a row; not calling it "
                f"for another {max(self.cooldown_s - waited, 0):.0f} s. Try again later.",
                kind="circuit_open",
            )
        self.trial_running = True

    def neutral(self) -> None:
        """A failure that says nothing about the model's health (a bad request, a bad key)."""
        self.trial_running = False

    def success(self) -> None:
        self.failures, self.opened_at, self.trial_running = 0, None, False

    def failure(self) -> None:
        self.failures += 1
        self.trial_running = False
        if self.failures >= self.threshold:
            self.opened_at = self.clock()


@dataclass
class ResilientProvider:
    inner: ModelProvider
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    fallback_model: str | None = None
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        try:
            return await self._with_retries(request)
        except ModelCallError as exc:
            fallback = request.fallback_model or self.fallback_model
            if not fallback or fallback == request.model or exc.kind not in FALLBACK_ON:
                raise
            log.warning("%s failed (%s); trying fallback model %s", request.model, exc.kind, fallback)
            return await self._with_retries(request.model_copy(update={"model": fallback, "fallback_model": None}))

    def breaker(self, model: str) -> CircuitBreaker:
        if model not in self.breakers:
            self.breakers[model] = CircuitBreaker(self.breaker_threshold, self.breaker_cooldown_s, self.clock)
        return self.breakers[model]

    async def _with_retries(self, request: ModelRequest) -> ModelResponse:
        breaker = self.breaker(request.model)
        attempt = 0
        while True:
            attempt += 1
            breaker.check(request.model)
            try:
                response = await self.inner.complete(request)
            except ModelCallError as exc:
                breaker.failure() if exc.kind in RETRYABLE else breaker.neutral()
                if exc.kind not in RETRYABLE or attempt >= self.policy.attempts:
                    raise _after(exc, attempt) from None
                delay = self.policy.delay(attempt, exc, self.rand())
                log.info("%s: %s, retry %d in %.2f s", request.model, exc.kind, attempt, delay)
                await self.sleep(delay)
                continue
            breaker.success()
            return response


def _after(exc: ModelCallError, attempts: int) -> ModelCallError:
    if attempts == 1:
        return exc
    return ModelCallError(
        f"{exc} (gave up after {attempts} attempts)", kind=exc.kind, status=exc.status, retry_after_s=exc.retry_after_s
    )
