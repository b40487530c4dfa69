"""The process-wide clock that devhost and its simulators share: real time or virtual time."""

from __future__ import annotations

import threading
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
    """Time that moves only when told to: a 45-minute timer costs nothing."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

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


_current: Clock = RealClock()


def current() -> Clock:
    """The clock in force for this process."""
    return _current


def install(clock: Clock) -> Clock:
    """Make `clock` the process clock (devhost does this at start-up) and return it."""
    global _current
    _current = clock
    return clock
