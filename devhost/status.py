"""The built-in status API's view of an instance (runtimeStatus, input, output, history)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from devhost import history as h
from devhost.orchestration import Instance

STATUS_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_HIDDEN_EVENTS = frozenset({h.EventType.ORCHESTRATOR_STARTED, h.EventType.ORCHESTRATOR_COMPLETED})
_OUTPUT_FIELDS = (h.INPUT, h.RESULT)


def format_status_time(when: datetime) -> str:
    """ISO 8601 with a Z, as the status API prints times."""
    return when.astimezone(UTC).strftime(STATUS_TIME_FORMAT)


def _parse(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _history_event(event: h.Event, show_output: bool) -> dict[str, Any]:
    kind = h.EventType(event[h.EVENT_TYPE])
    shown: dict[str, Any] = {"EventType": kind.name.title().replace("_", ""), "Timestamp": event[h.TIMESTAMP]}
    for key, value in event.items():
        if key in (h.EVENT_TYPE, h.IS_PLAYED, h.TIMESTAMP, "Version", "Tags") or value is None:
            continue
        if key in _OUTPUT_FIELDS and not show_output:
            continue
        shown["FunctionName" if key == h.NAME else key] = value
    return shown


def instance_status(
    inst: Instance, *, show_history: bool = False, show_history_output: bool = False, show_input: bool = True
) -> dict[str, Any]:
    """The status API document of `inst`."""
    status: dict[str, Any] = {
        "name": inst.name,
        "instanceId": inst.instance_id,
        "runtimeStatus": inst.status,
        "input": _parse(inst.input_json) if show_input else None,
        "customStatus": _parse(inst.custom_status_json),
        "output": _parse(inst.output_json),
        "createdTime": format_status_time(inst.created),
        "lastUpdatedTime": format_status_time(inst.updated),
    }
    if show_history:
        status["historyEvents"] = [
            _history_event(event, show_history_output)
            for event in inst.history.events
            if event[h.EVENT_TYPE] not in _HIDDEN_EVENTS
        ]
    return status
