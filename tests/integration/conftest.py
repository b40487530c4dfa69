"""Integration fixtures: a virtual clock, and the ARM simulator running the test module's `SCENARIO`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from activities import clients
from devhost.armsim import ArmSimulator
from devhost.armsim.testing import point_process_at
from devhost.clock import VirtualClock

DEFAULT_START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> VirtualClock:
    """A virtual clock at the module's `START` (default 2026-10-02 08:00 UTC)."""
    return VirtualClock(getattr(request.module, "START", DEFAULT_START))


@pytest.fixture
def sim(clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[ArmSimulator]:
    """The ARM simulator running the module's `SCENARIO`, with the process's settings and clients pointed at it."""
    with ArmSimulator(request.module.SCENARIO, clock=clock) as running:
        point_process_at(running, monkeypatch)
        clients.reset_cache()
        yield running
    clients.reset_cache()
