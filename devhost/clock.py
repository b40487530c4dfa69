"""The process-wide clock that devhost and its simulators share: real time or virtual time."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current UTC time."""

    def now(self) -> datetime: ...


class RealClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """Time that moves only when told to: a 45-minute timer costs nothing.

    Simulators can also ask to be called at a virtual time (`call_at`): devhost's engine, when it has nothing else to
    do, moves the clock to the earliest call that is not later than its next durable timer and runs the calls that are
    due, in (time, key) order, so the order never depends on which thread registered first (devhost/wakeups.py).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()
        self._calls: list[tuple[datetime, str, int, Callable[[], None]]] = []
        self._sequence = itertools.count()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance_to(self, when: datetime) -> None:
        """Move the clock forward to `when`; never backwards."""
        with self._lock:
            self._now = max(self._now, when)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now = self._now + delta

    def call_at(self, when: datetime, key: str, call: Callable[[], None]) -> None:
        """Have `call` run once the clock reaches `when` (ties broken by `key`, then by registration)."""
        with self._lock:
            heapq.heappush(self._calls, (when, key, next(self._sequence), call))

    def next_call(self) -> datetime | None:
        """The time of the earliest pending call."""
        with self._lock:
            return self._calls[0][0] if self._calls else None

    def take_due(self) -> list[Callable[[], None]]:
        """Remove and return the calls due at or before now, in order."""
        with self._lock:
            due: list[Callable[[], None]] = []
            while self._calls and self._calls[0][0] <= self._now:
                due.append(heapq.heappop(self._calls)[3])
            return due


_current: Clock = RealClock()


def current() -> Clock:
    """The clock in force for this process."""
    return _current


def install(clock: Clock) -> Clock:
    """Make `clock` the process clock (devhost does this at start-up) and return it."""
    global _current
    _current = clock
    return clock
