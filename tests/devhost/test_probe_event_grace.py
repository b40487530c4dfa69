"""`serve --clock virtual`: a timer racing an awaited external event waits `event_grace` wall seconds."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from devhost.clock import RealClock, VirtualClock, install
from devhost.engine import DurableEngine
from devhost.functions import load_app
from devhost.orchestration import TERMINAL_STATUSES
from tests.devhost.conftest import app_path

GRACE_SECONDS = 0.3
TIMEOUT = 20
POLL_SECONDS = 0.01


def _engine(tmp_path: Path, grace: float) -> tuple[DurableEngine, VirtualClock]:
    clock = VirtualClock()
    engine = DurableEngine(
        load_app(app_path("probe_patterns_app")), store_path=str(tmp_path / "grace.sqlite"), clock=clock,
        event_grace=grace,
    )  # fmt: skip
    engine.start()  # the background worker, as `serve` runs it
    return engine, clock


def _finished(engine: DurableEngine, instance_id: str) -> dict[str, Any]:
    """Wait for the background worker alone (`wait_for_completion` would drive the engine itself, without a hold)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        status = engine.get_status(instance_id)
        if status is not None and status["runtimeStatus"] in TERMINAL_STATUSES:
            return status
        time.sleep(POLL_SECONDS)
    raise TimeoutError(instance_id)


def test_an_unanswered_event_lets_the_timer_win_after_the_grace(tmp_path: Path) -> None:
    engine, _ = _engine(tmp_path, GRACE_SECONDS)
    try:
        began = time.monotonic()
        instance_id = engine.start_new("human_interaction")
        status = _finished(engine, instance_id)
        assert (status["output"], status["customStatus"]) == ("escalated", "escalated")
        assert time.monotonic() - began >= GRACE_SECONDS
    finally:
        engine.close()
        install(RealClock())


def test_an_event_raised_within_the_grace_wins_and_other_timers_do_not_wait(tmp_path: Path) -> None:
    engine, clock = _engine(tmp_path, 60.0)
    try:
        started = clock.now()
        waiting = engine.start_new("human_interaction", "waits")
        monitor = engine.start_new("monitor", "jumps", {"id": "j", "ready_after": 2, "interval_s": 60})
        assert _finished(engine, monitor)["runtimeStatus"] == "Completed"
        assert clock.now() == started + timedelta(minutes=1)
        engine.raise_event(waiting, "ApprovalEvent", "yes")
        status = _finished(engine, waiting)
        assert (status["output"], status["customStatus"]) == ({"processed": "yes"}, "approved")
    finally:
        engine.close()
        install(RealClock())
