"""Who is calling, and how many agent runs each caller may have going at once.

A caller is a `Principal`, resolved once per request by the edge that knows how the caller proved who
it is (the bearer token over HTTP, the local user over stdio), never from anything the caller writes
about itself. `RunLimiter` keeps each principal under the operator's cap for as long as its runs last,
background runs included.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from subagents.errors import SubagentsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """One caller the operator's limits apply to, e.g. the holder of one bearer token."""

    name: str
    local: bool = False  # the local user, who owns the store and may read every run in it

    @property
    def scope(self) -> str | None:
        """The name the run store records on this caller's runs and filters its reads by; None for the local
        user (no filter). A token's holder named "local" is another principal: it sees only its own runs."""
        return None if self.local else self.name


LOCAL = Principal("local", local=True)  # the local user: stdio, or HTTP on loopback without a token


class TooManyRuns(SubagentsError):
    """A caller asked for more concurrent runs than the operator allows it."""


@dataclass
class Reservation:
    """Slots held by one principal; what is left in `held` goes back when the reservation ends."""

    principal: Principal
    held: int


class RunLimiter:
    """At most `cap` runs in flight per principal. Checks and updates happen with no await between
    them, on one event loop, so no lock is needed.

    A pattern that fans out to N children reserves their N slots at once, `for_children`, before the
    first starts (all or nothing); each child's own reservation, made inside that block for the same
    principal, then takes one of those slots instead of a new one. A run's own slot is never lent: a run
    started from inside another run takes a slot of its own.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._in_flight: Counter[Principal] = Counter()
        self._for_children: ContextVar[Reservation | None] = ContextVar(f"run-slots-{id(self)}", default=None)

    def in_flight(self, principal: Principal) -> int:
        return self._in_flight[principal]

    @property
    def idle(self) -> bool:
        """True when no caller has a run going (background runs included)."""
        return not self._in_flight

    @contextmanager
    def reserve(self, principal: Principal, runs: int = 1, *, for_children: bool = False) -> Iterator[Reservation]:
        """Hold `runs` slots of `principal` for the block; raise TooManyRuns when they are not free."""
        pool = self._for_children.get()
        if pool is not None and pool.principal == principal and pool.held >= runs:
            pool.held -= runs  # the slots move to this reservation, and are freed when it ends
        else:
            self._take(principal, runs)
        reservation = Reservation(principal, runs)
        token = self._for_children.set(reservation if for_children else None)
        try:
            yield reservation
        finally:
            self._for_children.reset(token)
            self._give_back(principal, reservation.held)

    def _take(self, principal: Principal, runs: int) -> None:
        in_flight = self._in_flight[principal]
        if in_flight + runs > self.cap:
            log.warning("caller %r is at its cap of %d concurrent runs; refused %d", principal.name, self.cap, runs)
            these = "this run" if runs == 1 else f"these {runs} runs"
            raise TooManyRuns(
                f"Caller {principal.name!r} already has {in_flight} of its {self.cap} concurrent agent runs going "
                f"(the server's --max-concurrent-runs), so {these} cannot start: wait for one to finish, or poll "
                "your background runs with get_run until they end, then try again."
            )
        self._in_flight[principal] = in_flight + runs

    def _give_back(self, principal: Principal, runs: int) -> None:
        left = self._in_flight[principal] - runs
        if left > 0:
            self._in_flight[principal] = left
        else:
            self._in_flight.pop(principal, None)
