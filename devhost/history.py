"""History events in the shape the Durable extension sends to out-of-process orchestrators."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
ISO_STATUS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
NO_EVENT_ID = -1
# The Durable extension for Azure Storage: timers longer than this are split (schema V3 long timers).
MAXIMUM_SHORT_TIMER_DURATION = "6.00:00:00"
LONG_RUNNING_TIMER_INTERVAL = "3.00:00:00"
SCHEMA_V2 = 1
SCHEMA_V3 = 2

EVENT_TYPE = "EventType"
EVENT_ID = "EventId"
IS_PLAYED = "IsPlayed"
TIMESTAMP = "Timestamp"
NAME = "Name"
INPUT = "Input"
RESULT = "Result"
REASON = "Reason"
DETAILS = "Details"
TASK_SCHEDULED_ID = "TaskScheduledId"
TIMER_ID = "TimerId"
FIRE_AT = "FireAt"
INSTANCE_ID = "InstanceId"


class EventType(IntEnum):
    """DurableTask.Core history event types."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16


Event = dict[str, Any]


def format_timestamp(when: datetime) -> str:
    """The extension's timestamp format (UTC, microseconds, Z)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """Parse the extension's timestamp format (or any ISO 8601 UTC time) to an aware datetime."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _event(kind: EventType, when: datetime, event_id: int = NO_EVENT_ID, **fields: Any) -> Event:
    event: Event = {EVENT_TYPE: int(kind), EVENT_ID: event_id, IS_PLAYED: False, TIMESTAMP: format_timestamp(when)}
    event.update(fields)
    return event


def orchestrator_started(when: datetime) -> Event:
    return _event(EventType.ORCHESTRATOR_STARTED, when)


def orchestrator_completed(when: datetime) -> Event:
    return _event(EventType.ORCHESTRATOR_COMPLETED, when)


def execution_started(  # noqa: PLR0917 - mirrors the event's fields
    when: datetime, name: str, input_json: str | None, instance_id: str, execution_id: str, parent: Event | None
) -> Event:
    return _event(
        EventType.EXECUTION_STARTED,
        when,
        Name=name,
        Version="",
        Input=input_json,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent,
        Tags=None,
    )


def execution_completed(when: datetime, status: str, result: str | None) -> Event:
    return _event(EventType.EXECUTION_COMPLETED, when, OrchestrationStatus=status, Result=result)


def execution_terminated(when: datetime, reason: str | None) -> Event:
    return _event(EventType.EXECUTION_TERMINATED, when, Input=reason)


def continue_as_new(when: datetime, input_json: str | None) -> Event:
    return _event(EventType.CONTINUE_AS_NEW, when, Result=input_json)


def task_scheduled(when: datetime, task_id: int, name: str, input_json: str | None) -> Event:
    return _event(EventType.TASK_SCHEDULED, when, task_id, Name=name, Version="", Input=input_json)


def task_completed(when: datetime, scheduled_id: int, result_json: str | None) -> Event:
    return _event(EventType.TASK_COMPLETED, when, TaskScheduledId=scheduled_id, Result=result_json)


def task_failed(when: datetime, scheduled_id: int, reason: str, details: str | None) -> Event:
    return _event(EventType.TASK_FAILED, when, TaskScheduledId=scheduled_id, Reason=reason, Details=details)


def sub_orchestration_created(
    when: datetime, task_id: int, name: str, instance_id: str, input_json: str | None
) -> Event:
    return _event(
        EventType.SUB_ORCHESTRATION_CREATED, when, task_id, Name=name, Version="", InstanceId=instance_id,
        Input=input_json,
    )  # fmt: skip


def sub_orchestration_completed(when: datetime, scheduled_id: int, result_json: str | None) -> Event:
    return _event(EventType.SUB_ORCHESTRATION_COMPLETED, when, TaskScheduledId=scheduled_id, Result=result_json)


def sub_orchestration_failed(when: datetime, scheduled_id: int, reason: str, details: str | None) -> Event:
    return _event(
        EventType.SUB_ORCHESTRATION_FAILED, when, TaskScheduledId=scheduled_id, Reason=reason, Details=details
    )


def timer_created(when: datetime, timer_id: int, fire_at: str) -> Event:
    return _event(EventType.TIMER_CREATED, when, timer_id, FireAt=fire_at)


def timer_fired(when: datetime, timer_id: int, fire_at: str) -> Event:
    return _event(EventType.TIMER_FIRED, when, TimerId=timer_id, FireAt=fire_at)


def event_sent(when: datetime, task_id: int, target_instance: str, name: str, input_json: str) -> Event:
    return _event(EventType.EVENT_SENT, when, task_id, InstanceId=target_instance, Name=name, Input=input_json)


def event_raised(when: datetime, name: str, input_json: str | None) -> Event:
    return _event(EventType.EVENT_RAISED, when, Name=name, Input=input_json)


@dataclass
class ExecutionHistory:
    """One execution's history; past events are kept pre-serialized so each replay costs one join."""

    events: list[Event] = field(default_factory=list)
    _played_json: list[str] = field(default_factory=list)

    def commit(self, new_events: list[Event]) -> None:
        """Append events that the next episode will see as already played."""
        for event in new_events:
            if event[EVENT_TYPE] != EventType.ORCHESTRATOR_STARTED:
                event[IS_PLAYED] = True
            self.events.append(event)
            self._played_json.append(json.dumps(event, separators=(",", ":")))

    def render(self, new_events: list[Event]) -> str:
        """The history array JSON: past events (played) followed by this episode's new events."""
        parts = self._played_json + [json.dumps(event, separators=(",", ":")) for event in new_events]
        return "[" + ",".join(parts) + "]"

    def __len__(self) -> int:
        return len(self.events)


def build_context_json(
    history_json: str, instance_id: str, input_json: str | None, parent_instance_id: str | None, is_replaying: bool
) -> str:
    """The orchestration trigger payload, as OrchestrationTriggerAttributeBindingProvider builds it.

    `input_json` is the JSON text of the orchestration input. The Python SDK's clients and actions JSON-encode
    inputs before they reach the extension, so the payload's `input` is that text as a JSON string.
    """
    head = json.dumps(
        {
            "instanceId": instance_id,
            "isReplaying": is_replaying,
            "parentInstanceId": parent_instance_id,
            "upperSchemaVersion": SCHEMA_V2,
            "upperSchemaVersionNew": SCHEMA_V3,
            "longRunningTimerIntervalDuration": LONG_RUNNING_TIMER_INTERVAL,
            "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER_DURATION,
        },
        separators=(",", ":"),
    )
    input_field = "null" if input_json is None else json.dumps(input_json)
    return '{"history":' + history_json + ',"input":' + input_field + "," + head[1:]
