"""Calls at a virtual time (`VirtualClock.call_at`) run by the engine's work loop, as deterministically as its timers.

The ARM simulator uses them to upload a scanner's results at the virtual time the scan finishes and to deliver the
storage account's Event Grid events then (devhost/armsim/blob_events.py), instead of only when the app next asks.
When the engine has no work ready, no activity in flight and nothing running, and the earliest call is due no later
than its earliest durable timer (and `until`, for `run_until`), the clock moves to that call's time and every call due
then runs, in (time, key) order, outside the engine lock: a call may raise events on orchestrations or call
functions over HTTP. A call at the same instant as a timer runs first (the upload happened; the timer fires next).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Protocol

from devhost.clock import VirtualClock

LOG = logging.getLogger("devhost.wakeups")


class LoopState(Protocol):
    """What the engine's loop tells about itself (devhost.core.EngineCore)."""

    @property
    def clock(self) -> object: ...

    @property
    def _lock(self) -> threading.RLock: ...

    @property
    def _ready(self) -> Collection[object]: ...

    @property
    def _inflight(self) -> Collection[object]: ...

    @property
    def _busy(self) -> int: ...

    def _earliest_timer(self) -> datetime | None: ...


def run_due_calls(engine: LoopState, until: datetime | None) -> bool:
    """Run the calls due next if the engine is idle and they come before its next timer; True if any ran."""
    clock = engine.clock
    if not isinstance(clock, VirtualClock):
        return False
    calls: list[Callable[[], None]]
    with engine._lock:
        wake = clock.next_call()
        if wake is None or engine._ready or engine._inflight or engine._busy:
            return False
        timer = engine._earliest_timer()
        if (timer is not None and timer < wake) or (until is not None and wake > until):
            return False
        clock.advance_to(wake)
        calls = clock.take_due()
    for call in calls:
        try:
            call()
        except Exception:  # a simulator's failure must not stop the engine
            LOG.exception("devhost: a call at %s failed", wake.isoformat())
    return bool(calls)
