"""Probe app: an Event Grid trigger raising an event on an orchestration that waits for it (or a one-hour timer)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp()
SEEN: list[dict[str, Any]] = []
EVENT_NAME = "scanner_upload"


@app.orchestration_trigger(context_name="context")  # type: ignore[untyped-decorator]
def waiter(context: df.DurableOrchestrationContext) -> Any:
    """Wait for `scanner_upload` or one hour, whichever comes first."""
    event = context.wait_for_external_event(EVENT_NAME)
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        data = event.result
        return {"event": json.loads(data) if isinstance(data, str) else data}
    return "timeout"


@app.orchestration_trigger(context_name="context")  # type: ignore[untyped-decorator]
def ignorer(context: df.DurableOrchestrationContext) -> Any:
    """Today's scan orchestrations: a timer, never waiting for `scanner_upload` (a raised one is buffered)."""
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=10))
    return "done"


@app.function_name("grid")  # type: ignore[untyped-decorator]
@app.event_grid_trigger(arg_name="event")  # type: ignore[untyped-decorator]
@app.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def grid(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    """Raise the event on the instance named by the subject's last segment; subject `fail` raises."""
    SEEN.append(
        {
            "type": type(event).__name__,
            "id": event.id,
            "topic": event.topic,
            "subject": event.subject,
            "event_type": event.event_type,
            "event_time": event.event_time,
            "data": event.get_json(),
            "data_version": event.data_version,
        }
    )
    if event.subject == "fail":
        raise RuntimeError("probe failure")
    await client.raise_event(event.subject.rsplit("/", 1)[-1], EVENT_NAME, event.get_json())
