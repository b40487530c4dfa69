"""devhost's own cost per orchestration episode, next to the SDK's replay cost per history event (~35 us reference).

Run: `.venv/bin/python -m benchmarks.bench_devhost_replay` (prints the figures) or
`.venv/bin/python -m pytest benchmarks/bench_devhost_replay.py --benchmark-only`.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.durable_functions as df
from azure.functions import _durable_functions as durable_payloads

from devhost import history as h
from devhost.clock import VirtualClock
from devhost.engine import DurableEngine
from devhost.functions import FunctionIndex, index_app
from devhost.orchestration import Instance, run_episode

STEPS = 24
"""24 sequential activities, then a wait: a history of 4 * 24 + 3 = 99 events when the last episode replays."""
STOP_EVENT = "stop"
ROUNDS = 200
SDK_REFERENCE_US_PER_EVENT = 35.0

bench_app = df.DFApp()


@bench_app.orchestration_trigger(context_name="context")
def bench_sequence(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    total = 0
    for step in range(context.get_input()):
        total += yield context.call_activity("bench_step", step)
    yield context.wait_for_external_event(STOP_EVENT)
    return total


@bench_app.activity_trigger(input_name="step")
def bench_step(step: int) -> int:
    return step


def _index() -> FunctionIndex:
    return index_app(bench_app)


def _waiting_instance(engine: DurableEngine) -> Instance:
    """Run the orchestration up to its wait so its history holds ~100 events."""
    engine.start_new("bench_sequence", "bench", STEPS)
    engine.run_until_idle(timeout=60)
    return engine._instances["bench"]


def _best_of(action: Callable[[], Any], rounds: int = ROUNDS) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def measure() -> dict[str, float]:
    """Median seconds: SDK replay alone, one devhost episode (SDK + devhost), and a full engine episode."""
    clock = VirtualClock()
    with tempfile.TemporaryDirectory() as folder:
        engine = DurableEngine(_index(), store_path=str(Path(folder) / "bench.sqlite"), clock=clock)
        with engine:
            inst = _waiting_instance(engine)
            entry = engine.index.orchestrator("bench_sequence")
            assert entry is not None
            now = clock.now()
            raised = [h.event_raised(now, STOP_EVENT, "null")]
            new_events = [h.orchestrator_started(now), *raised]
            events = len(inst.history) + len(new_events)
            context_json = h.build_context_json(
                inst.history.render(new_events), inst.instance_id, inst.input_json, None, is_replaying=True
            )
            sdk = _best_of(lambda: entry.callable(durable_payloads.OrchestrationContext(context_json)))
            state_json = entry.callable(durable_payloads.OrchestrationContext(context_json))
            canned = dataclasses.replace(entry, callable=lambda _context: state_json)
            overhead = _best_of(lambda: run_episode(canned, inst, raised, now))
            episode = _best_of(lambda: run_episode(entry, inst, raised, now))

            started = time.perf_counter()
            rounds = 20
            for round_ in range(rounds):
                engine.start_new("bench_sequence", f"e2e-{round_}", STEPS)
            engine.run_until_idle(timeout=120)
            end_to_end = (time.perf_counter() - started) / (rounds * (STEPS + 1))
    return {
        "history_events": events,
        "sdk_seconds": sdk,
        "episode_seconds": episode,
        "overhead_seconds": overhead,
        "engine_episode_seconds": end_to_end,
    }


def report(figures: dict[str, float]) -> str:
    events = figures["history_events"]
    sdk_us = figures["sdk_seconds"] * 1e6
    overhead_us = figures["overhead_seconds"] * 1e6
    episode_us = figures["episode_seconds"] * 1e6
    return "\n".join(
        [
            f"history events replayed: {events:.0f}",
            f"SDK replay: {sdk_us:,.0f} us per episode = {sdk_us / events:.1f} us per event "
            f"(reference {SDK_REFERENCE_US_PER_EVENT:.0f})",
            f"devhost's own work per episode (payload, action replay, new events; SDK answer canned): "
            f"{overhead_us:,.0f} us = {overhead_us / events:.1f} us per event, "
            f"{overhead_us / sdk_us:.0%} of the SDK's time",
            f"one devhost episode with the real SDK: {episode_us:,.0f} us",
            f"engine end to end (SDK + devhost + SQLite + activity thread hop), {STEPS} sequential activities: "
            f"{figures['engine_episode_seconds'] * 1e3:.2f} ms per episode on average (history 3..99 events)",
        ]
    )


def test_devhost_episode_overhead(benchmark: Any) -> None:
    figures = measure()
    benchmark.extra_info.update(figures)
    benchmark(lambda: None)
    print("\n" + report(figures))
    assert figures["overhead_seconds"] < figures["sdk_seconds"] / 2


if __name__ == "__main__":
    print(report(measure()))
