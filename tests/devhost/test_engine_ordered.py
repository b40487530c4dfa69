"""Ordered completions (the demo's determinism) and `run_until` (the demo's arrival times) on a virtual clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from devhost.clock import RealClock, VirtualClock, install
from devhost.engine import DurableEngine
from devhost.functions import load_app
from devhost.ordering import CompletionOrder
from tests.devhost.conftest import app_path

NAPS_MS = [400, 250, 100, 0]  # launched in this order, they finish in the reverse order


def _engine(tmp_path: Path, *, ordered: bool, clock: VirtualClock | None = None) -> DurableEngine:
    return DurableEngine(
        load_app(app_path("ordered_app")),
        store_path=str(tmp_path / f"devhost-{ordered}.sqlite"),
        clock=clock or VirtualClock(),
        ordered_completions=ordered,
    )


def _status(engine: DurableEngine, instance_id: str) -> str:
    status = engine.get_status(instance_id)
    assert status is not None
    return str(status["runtimeStatus"])


def _signing_order(tmp_path: Path, *, ordered: bool) -> list[str]:
    engine = _engine(tmp_path, ordered=ordered)
    try:
        for n, nap in enumerate(NAPS_MS):
            engine.start_new("nap_then_sign", f"o{n}", [f"o{n}", nap])
        engine.run_until_idle(timeout=30)
        found, names = engine.read_entity_state("ledger", "one")
        assert found
        return list(names)
    finally:
        engine.close()
        install(RealClock())


def test_ordered_completions_post_results_in_launch_order_whatever_finishes_first(tmp_path: Path) -> None:
    assert _signing_order(tmp_path, ordered=True) == ["o0", "o1", "o2", "o3"]


def test_without_ordering_the_fastest_activity_wins(tmp_path: Path) -> None:
    """The race ordered completions remove: thread timing decides who reaches the entity first."""
    names = _signing_order(tmp_path, ordered=False)
    assert names.index("o3") < names.index("o0")  # 0 ms against 400 ms


def test_run_until_fires_timers_due_by_then_and_stops_the_clock_there(tmp_path: Path) -> None:
    clock = VirtualClock()
    start = clock.now()
    engine = _engine(tmp_path, ordered=True, clock=clock)
    try:
        engine.start_new("wait_minutes", "short", 2)
        engine.start_new("wait_minutes", "long", 10)
        engine.run_until(start + timedelta(minutes=5), timeout=30)
        assert clock.now() == start + timedelta(minutes=5)
        assert _status(engine, "short") == "Completed"
        assert _status(engine, "long") == "Running"
        engine.run_until(start + timedelta(minutes=10), timeout=30)  # a timer due exactly then fires
        assert _status(engine, "long") == "Completed"
        assert clock.now() == start + timedelta(minutes=10)
        engine.run_until(start, timeout=30)  # the clock never goes back
        assert clock.now() == start + timedelta(minutes=10)
    finally:
        engine.close()
        install(RealClock())


def test_completion_order_releases_only_when_every_activity_in_flight_has_finished() -> None:
    order: CompletionOrder[str, int] = CompletionOrder(enabled=True)
    for key in ("a", "b", "c"):
        order.launched(key)
    assert order.hold("c", 3) and order.hold("a", 1)
    assert order.release({"a", "b", "c"}) == []  # b still runs
    assert order.hold("b", 2)
    assert order.release({"a", "b", "c"}) == [("a", 1), ("b", 2), ("c", 3)]
    assert order.release(set()) == []
    off: CompletionOrder[str, int] = CompletionOrder(enabled=False)
    off.launched("a")
    assert not off.hold("a", 1)
