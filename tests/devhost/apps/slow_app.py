"""An orchestration whose first activity blocks until it runs a second time (for the kill-and-resume test)."""

import time
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df

app = df.DFApp()
BLOCK_SECONDS = 120


@app.orchestration_trigger(context_name="context")
def slow_then_done(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("blocking_step", context.get_input())
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=30))
    return first


@app.activity_trigger(input_name="folder")
def blocking_step(folder: str) -> str:
    marker = Path(folder) / "attempts"
    attempts = marker.read_text().count("x") if marker.exists() else 0
    marker.write_text("x" * (attempts + 1))
    if attempts == 0:
        time.sleep(BLOCK_SECONDS)  # the test kills the process while this first attempt runs
    return f"attempt {attempts + 1}"


@app.orchestration_trigger(context_name="context")
def timer_only(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=2))
    return "fired"
