"""Test app: the real `upload_events` Event Grid function and an orchestration that waits for its event or an hour."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from core.upload_events import UPLOAD_EVENT_NAME
from starters.upload_events import bp as upload_events_bp

app = df.DFApp()
app.register_functions(upload_events_bp)
WAIT = timedelta(hours=1)


@app.orchestration_trigger(context_name="context")  # type: ignore[untyped-decorator]
def upload_waiter(context: df.DurableOrchestrationContext) -> Any:
    """What the scan orchestration will do: `scanner_upload` or a backstop timer, whichever comes first."""
    event = context.wait_for_external_event(UPLOAD_EVENT_NAME)
    timer = context.create_timer(context.current_utc_datetime + WAIT)
    winner = yield context.task_any([event, timer])
    at = context.current_utc_datetime.isoformat()
    if winner != event:
        return {"timeout": at}
    timer.cancel()
    data = event.result  # the SDK's raise_event JSON-encodes the data twice: the task sees the JSON text
    return {"event": json.loads(data) if isinstance(data, str) else data, "at": at}
