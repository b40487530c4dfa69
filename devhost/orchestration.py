"""One orchestration episode: build the trigger payload, call the orchestrator, replay its actions, decide."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devhost import history as h
from devhost.actions import Decision, DecisionKind, NonDeterminismError, ShimReplay, UnsupportedActionError
from devhost.custom_status import custom_status_error
from devhost.functions import FunctionEntry
from devhost.invoke import run_orchestrator

PENDING = "Pending"
RUNNING = "Running"
COMPLETED = "Completed"
FAILED = "Failed"
TERMINATED = "Terminated"
CONTINUED_AS_NEW = "ContinuedAsNew"
TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, TERMINATED})
ACTIVE_STATUSES = frozenset({PENDING, RUNNING, CONTINUED_AS_NEW})


@dataclass(frozen=True)
class ParentRef:
    """Where a sub-orchestration reports back: the parent instance, its execution and the waiting task id."""

    instance_id: str
    execution_id: str
    task_id: int


@dataclass
class InboxItem:
    """A message waiting for the instance's next episode (DTFx control-queue message)."""

    row_id: int
    execution_id: str | None
    event: h.Event


@dataclass
class Instance:
    """One orchestration instance and its current execution."""

    instance_id: str
    name: str
    execution_id: str
    status: str
    input_json: str | None
    created: datetime
    updated: datetime
    parent: ParentRef | None = None
    output_json: str | None = None
    custom_status_json: str | None = None
    history: h.ExecutionHistory = field(default_factory=h.ExecutionHistory)
    inbox: list[InboxItem] = field(default_factory=list)
    awaiting_event: bool = False  # blocked on WaitForExternalEvent after its last episode (not persisted)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass
class EpisodeResult:
    """What one episode decided. `events` are appended to the history; `decisions` are the new work."""

    events: list[h.Event]
    decisions: list[Decision]
    status: str
    output_json: str | None = None
    custom_status_json: str | None = None
    custom_status_set: bool = False
    continue_input: str | None = None
    failure_reason: str = ""
    failure_details: str | None = None
    awaiting_event: bool = False


def entity_request_id(instance_id: str, execution_id: str, task_id: int) -> str:
    """A stable request id for an entity call (the extension uses a replay-safe GUID)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"devhost:{instance_id}:{execution_id}:{task_id}"))


def entity_request(decision: Decision, instance_id: str, execution_id: str) -> dict[str, Any]:
    """The request message an orchestration sends to an entity (call or signal)."""
    return {
        "id": entity_request_id(instance_id, execution_id, decision.task_id),
        "op": decision.name,
        "signal": decision.signal,
        "input": decision.input,
        "parent": instance_id,
        "parentExecution": execution_id,
    }


def _decision_event(decision: Decision, inst: Instance, now: datetime) -> h.Event:
    if decision.kind is DecisionKind.ACTIVITY:
        return h.task_scheduled(now, decision.task_id, decision.name, json.dumps(decision.input))
    if decision.kind is DecisionKind.TIMER:
        assert decision.fire_at is not None
        return h.timer_created(now, decision.task_id, h.format_timestamp(decision.fire_at))
    if decision.kind is DecisionKind.SUB_ORCHESTRATION:
        return h.sub_orchestration_created(
            now, decision.task_id, decision.name, decision.target or "", json.dumps(decision.input)
        )
    request = entity_request(decision, inst.instance_id, inst.execution_id)
    return h.event_sent(now, decision.task_id, decision.target or "", decision.name, json.dumps(request))


def _failed(
    inst: Instance, new_events: list[h.Event], now: datetime, message: str, details: str | None
) -> EpisodeResult:
    output = json.dumps(message)
    events = [*new_events, h.execution_completed(now, FAILED, output), h.orchestrator_completed(now)]
    return EpisodeResult(events, [], FAILED, output, failure_reason=message, failure_details=details)


def _ordered(events: list[h.Event]) -> list[h.Event]:
    """ExecutionStarted always leads the new events (events raised before a start or a continue-as-new wait)."""
    started = [e for e in events if e[h.EVENT_TYPE] == h.EventType.EXECUTION_STARTED]
    return started + [e for e in events if e[h.EVENT_TYPE] != h.EventType.EXECUTION_STARTED] if started else events


def run_episode(
    entry: FunctionEntry | None, inst: Instance, inbox_events: list[h.Event], now: datetime
) -> EpisodeResult:
    """Run one episode of `inst` over its history plus `inbox_events`, returning the events and work it produced."""
    new_events = [h.orchestrator_started(now), *_ordered(inbox_events)]
    terminated = next((e for e in inbox_events if e[h.EVENT_TYPE] == h.EventType.EXECUTION_TERMINATED), None)
    if terminated is not None:
        output = json.dumps(terminated.get(h.INPUT))
        events = [*new_events, h.execution_completed(now, TERMINATED, output), h.orchestrator_completed(now)]
        return EpisodeResult(events, [], TERMINATED, output, failure_reason=f"Terminated: {terminated.get(h.INPUT)}")
    if entry is None:
        message = f"The function '{inst.name}' doesn't exist, is disabled, or is not an orchestrator function."
        return _failed(inst, new_events, now, message, None)

    context_json = h.build_context_json(
        inst.history.render(new_events),
        inst.instance_id,
        inst.input_json,
        inst.parent.instance_id if inst.parent else None,
        is_replaying=len(inst.history) > 0,
    )
    outcome = run_orchestrator(entry, context_json)
    state = outcome.state
    if not state:  # the worker crashed before the SDK could report any state
        return _failed(inst, new_events, now, f"Orchestrator function '{inst.name}' failed: {outcome.error}", None)
    too_big = custom_status_error(state.get("customStatus"))
    if too_big is not None:  # as the extension: checked first, the episode's actions are never scheduled
        return _failed(inst, new_events, now, f"Orchestrator function '{inst.name}' failed: {too_big}", too_big)
    actions = (state.get("actions") or [[]])[0] if state.get("schemaVersion") else _flatten_v1(state)
    replay = ShimReplay(actions, inst.instance_id, inst.execution_id, now)
    try:
        replayed = replay.replay(inst.history.events + new_events)
    except (NonDeterminismError, UnsupportedActionError) as exc:
        return _failed(inst, new_events, now, f"Orchestrator function '{inst.name}' failed: {exc}", str(exc))

    decision_events = [_decision_event(decision, inst, now) for decision in replayed.decisions]
    result = EpisodeResult([*new_events, *decision_events], replayed.decisions, RUNNING)
    result.awaiting_event = replayed.awaiting_event
    if "customStatus" in state:
        result.custom_status_json, result.custom_status_set = json.dumps(state["customStatus"]), True
    if outcome.error is not None and replayed.finished:
        message = f"Orchestrator function '{inst.name}' failed: {outcome.error}"
        failed = _failed(inst, result.events, now, message, outcome.error)
        failed.decisions = result.decisions
        return failed
    if state.get("isDone") and replayed.finished and not replayed.open_timer_ids:
        if replayed.continue_as_new:
            result.status, result.continue_input = CONTINUED_AS_NEW, replayed.continue_input
            result.events.append(h.continue_as_new(now, replayed.continue_input))
        else:
            value = state.get("output")
            result.status, result.output_json = COMPLETED, None if value is None else json.dumps(value)
            result.events.append(h.execution_completed(now, COMPLETED, result.output_json))
    result.events.append(h.orchestrator_completed(now))
    return result


def _flatten_v1(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Schema V1 (one list per yield) as consecutive actions; devhost offers V2, so this is only a fallback."""
    return [action for group in state.get("actions") or [] for action in group]
