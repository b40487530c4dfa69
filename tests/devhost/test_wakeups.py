"""Calls at a virtual time (`VirtualClock.call_at`) run by the engine when idle, in (time, key) order, before timers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devhost import clock as clock_mod
from devhost.engine import DurableEngine
from devhost.functions import load_app
from devhost.wakeups import run_due_calls
from tests.devhost.apps import probe_event_grid_app as probe

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
TIMEOUT = 20


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DurableEngine]:
    previous = clock_mod.current()
    running = DurableEngine(
        load_app(probe.__name__), store_path=str(tmp_path / "w.sqlite"), clock=clock_mod.VirtualClock(START)
    )
    yield running
    running.close()
    clock_mod.install(previous)


def _clock(engine: DurableEngine) -> clock_mod.VirtualClock:
    assert isinstance(engine.clock, clock_mod.VirtualClock)
    return engine.clock


def test_calls_run_at_their_time_in_key_order_and_before_a_later_timer(engine: DurableEngine) -> None:
    clock = _clock(engine)
    seen: list[tuple[str, datetime, str]] = []

    def record(name: str) -> None:
        status = engine.get_status("w")
        seen.append((name, clock.now(), status["runtimeStatus"] if status else "-"))

    clock.call_at(START + timedelta(hours=2), "z", lambda: record("z"))
    clock.call_at(START + timedelta(minutes=10), "b", lambda: record("b"))
    clock.call_at(START + timedelta(minutes=10), "a", lambda: record("a"))
    engine.start_new("waiter", "w")

    engine.run_until_idle(timeout=TIMEOUT)

    ten = START + timedelta(minutes=10)
    assert seen == [("a", ten, "Running"), ("b", ten, "Running"), ("z", START + timedelta(hours=2), "Completed")]
    assert engine.get_status("w")["output"] == "timeout"  # type: ignore[index]


def test_a_call_can_raise_the_awaited_event_before_the_timer(engine: DurableEngine) -> None:
    clock = _clock(engine)
    clock.call_at(START + timedelta(minutes=5), "e", lambda: engine.raise_event("w", probe.EVENT_NAME, {"i": 1}))
    engine.start_new("waiter", "w")
    engine.run_until_idle(timeout=TIMEOUT)
    assert engine.get_status("w")["output"] == {"event": {"i": 1}}  # type: ignore[index]
    assert clock.now() == START + timedelta(minutes=5)


def test_run_until_stops_at_its_time_and_a_failing_call_is_logged(
    engine: DurableEngine, caplog: pytest.LogCaptureFixture
) -> None:
    clock = _clock(engine)
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("simulator failure")

    clock.call_at(START + timedelta(minutes=1), "a", boom)
    clock.call_at(START + timedelta(minutes=2), "b", lambda: ran.append("b"))
    clock.call_at(START + timedelta(minutes=40), "c", lambda: ran.append("c"))
    engine.run_until(START + timedelta(minutes=30), timeout=TIMEOUT)
    assert ran == ["b"] and clock.now() == START + timedelta(minutes=30)
    assert "a call at" in caplog.text
    assert clock.next_call() == START + timedelta(minutes=40)


def test_nothing_runs_on_a_real_clock() -> None:
    class Real:
        clock = clock_mod.RealClock()

    assert run_due_calls(Real(), None) is False  # type: ignore[arg-type]
