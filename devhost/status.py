"""The built-in status API's view of an instance (runtimeStatus, input, output, history)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from devhost import history as h
from devhost.orchestration import PENDING, Instance

STATUS_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
E = h.EventType
# DurableTask.Core's EventType names, as the status API prints them.
_EVENT_NAMES = {
    **{kind: kind.name.title().replace("_", "") for kind in E},
    E.SUB_ORCHESTRATION_CREATED: "SubOrchestrationInstanceCreated",
    E.SUB_ORCHESTRATION_COMPLETED: "SubOrchestrationInstanceCompleted",
    E.SUB_ORCHESTRATION_FAILED: "SubOrchestrationInstanceFailed",
}
_SCHEDULING = {E.TASK_SCHEDULED, E.SUB_ORCHESTRATION_CREATED}
_SCHEDULED_BY = {
    E.TASK_COMPLETED: E.TASK_SCHEDULED,
    E.TASK_FAILED: E.TASK_SCHEDULED,
    E.SUB_ORCHESTRATION_COMPLETED: E.SUB_ORCHESTRATION_CREATED,
    E.SUB_ORCHESTRATION_FAILED: E.SUB_ORCHESTRATION_CREATED,
}
_RESULT_SHOWN = {E.TASK_COMPLETED, E.SUB_ORCHESTRATION_COMPLETED, E.EXECUTION_COMPLETED}
_DROPPED_FIELDS = {
    E.TASK_SCHEDULED: ("Version", h.INPUT),
    E.SUB_ORCHESTRATION_CREATED: ("Version", h.INPUT),
    E.EXECUTION_STARTED: ("OrchestrationInstance", "ParentInstance", "Version", "Tags", h.INPUT),
    E.EXECUTION_TERMINATED: (h.INPUT,),
    E.TIMER_FIRED: (h.TIMER_ID,),
    E.EVENT_RAISED: (h.INPUT,),
}


def format_status_time(when: datetime) -> str:
    """ISO 8601 with a Z, as the status API prints times."""
    return when.astimezone(UTC).strftime(STATUS_TIME_FORMAT)


def _parse(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _parse_token(text: str | None) -> Any:
    """DurableClient.ParseToJToken: JSON when it parses, else the raw string."""
    try:
        return _parse(text)
    except ValueError:
        return text


def history_events(events: list[h.Event], show_output: bool) -> list[dict[str, Any]]:
    """`historyEvents` as DurableClient.GetDurableOrchestrationStatusAsync builds them from the stored history.

    Event types by name; OrchestratorStarted/Completed dropped; a TaskScheduled or SubOrchestrationInstanceCreated
    that has its completion is folded into it (`FunctionName`, `ScheduledTime`); EventId, IsPlayed, inputs and ids
    removed; results only with `showHistoryOutput`.
    """
    shown: list[dict[str, Any] | None] = []
    scheduled: dict[tuple[E, int], int] = {}
    for raw in events:
        kind = E(raw[h.EVENT_TYPE])
        if kind in (E.ORCHESTRATOR_STARTED, E.ORCHESTRATOR_COMPLETED):
            continue
        item = {key: value for key, value in raw.items() if key not in (h.EVENT_ID, h.IS_PLAYED)}
        item[h.EVENT_TYPE] = _EVENT_NAMES[kind]
        for key in _DROPPED_FIELDS.get(kind, ()):
            item.pop(key, None)
        if kind in _SCHEDULING:
            scheduled[(kind, raw[h.EVENT_ID])] = len(shown)
        elif kind in _SCHEDULED_BY:
            position = scheduled.get((_SCHEDULED_BY[kind], item.pop(h.TASK_SCHEDULED_ID, None)))
            if position is not None and (origin := shown[position]) is not None:
                item["ScheduledTime"], item["FunctionName"] = origin[h.TIMESTAMP], origin.get(h.NAME)
                shown[position] = None
        elif kind is E.EXECUTION_STARTED:
            item["FunctionName"] = item.pop(h.NAME, None)
        if kind in _RESULT_SHOWN:
            if show_output:
                item[h.RESULT] = _parse_token(item.get(h.RESULT))
            else:
                item.pop(h.RESULT, None)
        shown.append(item)
    return [item for item in shown if item is not None]


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
        # The extension reads no history for a Pending instance (historyEvents stays null).
        status["historyEvents"] = (
            None if inst.status == PENDING else history_events(inst.history.events, show_history_output)
        )
    return status
