"""Ordered completions: activity results handed on in the order the activities were launched, never by thread timing.

devhost runs activities concurrently on a thread pool. With ordering on (the demo), a finished activity's result is
held until every activity in flight has finished and no other work is ready; then all of them are released in
launch order. Which orchestration reaches an entity (a lease, a gate) first then depends only on the inputs, so
the same scenario runs the same way every time. Every method is thread-safe.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Key = TypeVar("Key")
Outcome = TypeVar("Outcome")


class CompletionOrder(Generic[Key, Outcome]):
    """Launch sequence numbers and held results; `enabled` False makes `hold` refuse everything."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._sequence = itertools.count()
        self._launched: dict[Key, int] = {}
        self._held: dict[Key, Outcome] = {}
        self._events: list[tuple[tuple[str, str, str], Callable[[], None]]] = []
        self._lock = threading.Lock()

    def launched(self, key: Key) -> None:
        with self._lock:
            self._launched[key] = next(self._sequence)

    def hold(self, key: Key, outcome: Outcome) -> bool:
        """Keep a finished activity's result for `release`; False (not held) when ordering is off."""
        with self._lock:
            if not self.enabled:
                self._launched.pop(key, None)
                return False
            self._held[key] = outcome
            return True

    def release(self, inflight: Collection[Key]) -> list[tuple[Key, Outcome]]:
        """The held results in launch order once every activity in `inflight` has finished; else nothing yet."""
        with self._lock:
            if not self._held or any(key not in self._held for key in inflight):
                return []
            done = sorted(self._held.items(), key=lambda item: self._launched.get(item[0], -1))
            self._held.clear()
            for key, _ in done:
                self._launched.pop(key, None)
            return done

    def hold_event(self, rule: tuple[str, str, str], deliver: Callable[[], None]) -> bool:
        """Keep a raised external event (`rule`: instance, name, data) for `release_events`; False when ordering is
        off. Two events raised at the same virtual time by concurrent activities then reach an instance in one
        episode, in rule order, never by thread timing.
        """
        with self._lock:
            if not self.enabled:
                return False
            self._events.append((rule, deliver))
            return True

    def release_events(self, inflight: Collection[Key]) -> list[Callable[[], None]]:
        """The held events' deliveries in rule order once every activity in `inflight` has finished; else none."""
        with self._lock:
            if not self._events or any(key not in self._held for key in inflight):
                return []
            done = sorted(self._events, key=lambda item: item[0])
            self._events.clear()
            return [deliver for _, deliver in done]


class ActivityLanes:
    """Where activities run: a shared thread pool, and one lane (a single thread, first scheduled first run) for the
    activity names in `serial`. The demo puts there the activities that race on one storage row by design (two scans
    claiming the same image's findings for an alert, activities/notify_claims.py): with ordered completions they then
    meet in scheduling order on every run, while every other activity keeps running concurrently.
    """

    def __init__(self, max_workers: int, serial: Collection[str] = ()) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="devhost-activity")
        self._serial = frozenset(serial)
        self._lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devhost-serial") if serial else None

    def submit(self, name: str, run: Callable[..., None], *args: object) -> None:
        pool = self._lane if self._lane is not None and name in self._serial else self._pool
        pool.submit(run, *args)

    def shutdown(self, *, wait: bool = False, cancel_futures: bool = True) -> None:
        for pool in (self._pool, self._lane):
            if pool is not None:
                pool.shutdown(wait=wait, cancel_futures=cancel_futures)
