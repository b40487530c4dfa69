"""Replays an orchestrator's actions against its history, as the extension's OutOfProcOrchestrationShim and DTFx do.

The worker returns every action the orchestrator has ever taken (schema V2: one flat list, compound tasks nested).
The extension feeds them, one awaited action at a time, into a DurableTask.Core orchestration context that is being
replayed over the history. Task ids are handed out in the order that context schedules things, so retry timers and
retried attempts take ids when their failure is replayed. An action whose id lands on a history event of another
kind or name is a non-deterministic orchestration. Whatever is scheduled but not yet in the history is new work.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from devhost import history as h
from devhost.shim_tasks import ShimTask, completed, when

ACTION_TYPE = "actionType"
COMPOUND_ACTIONS = "compoundActions"
RETRY_OPTIONS = "retryOptions"
RETRY_FIRST_INTERVAL = "firstRetryIntervalInMilliseconds"
RETRY_MAX_ATTEMPTS = "maxNumberOfAttempts"
RETRY_BACKOFF = "backoffCoefficient"
RETRY_MAX_INTERVAL = "maxRetryIntervalInMilliseconds"
EXCEPTION_TYPE = "exceptionType"


class ActionType(IntEnum):
    """Out-of-process action types (OutOfProcOrchestrationShim.AsyncActionType)."""

    CALL_ACTIVITY = 0
    CALL_ACTIVITY_WITH_RETRY = 1
    CALL_SUB_ORCHESTRATOR = 2
    CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
    CONTINUE_AS_NEW = 4
    CREATE_TIMER = 5
    WAIT_FOR_EXTERNAL_EVENT = 6
    CALL_ENTITY = 7
    CALL_HTTP = 8
    SIGNAL_ENTITY = 9
    SCHEDULED_SIGNAL_ENTITY = 10
    WHEN_ANY = 11
    WHEN_ALL = 12


class DecisionKind(IntEnum):
    """What a scheduled task id stands for; mirrors the history event that records it."""

    ACTIVITY = h.EventType.TASK_SCHEDULED
    SUB_ORCHESTRATION = h.EventType.SUB_ORCHESTRATION_CREATED
    TIMER = h.EventType.TIMER_CREATED
    SEND_EVENT = h.EventType.EVENT_SENT


class NonDeterminismError(Exception):
    """The replayed actions do not match the recorded history."""


class UnsupportedActionError(Exception):
    """An action devhost does not emulate (for example CallHttp)."""


@dataclass
class Decision:
    """One thing the orchestration scheduled, identified by its task id."""

    kind: DecisionKind
    task_id: int
    action_index: int
    name: str = ""
    input: str | None = None
    target: str | None = None
    fire_at: datetime | None = None
    signal: bool = False
    cancelled: bool = False

    def describe(self) -> str:
        if self.kind is DecisionKind.TIMER:
            return "CreateTimer"
        if self.kind is DecisionKind.SEND_EVENT:
            verb = "SignalEntity" if self.signal else "CallEntity"
            return f"{verb} {self.target} '{self.name}'"
        label = "CallActivity" if self.kind is DecisionKind.ACTIVITY else "CallSubOrchestrator"
        return f"{label} '{self.name}'"


def _describe_event(event: h.Event) -> str:
    kind = h.EventType(event[h.EVENT_TYPE])
    if kind is h.EventType.TASK_SCHEDULED:
        return f"CallActivity '{event.get(h.NAME)}'"
    if kind is h.EventType.SUB_ORCHESTRATION_CREATED:
        return f"CallSubOrchestrator '{event.get(h.NAME)}'"
    if kind is h.EventType.TIMER_CREATED:
        return "CreateTimer"
    return f"entity message {event.get(h.INSTANCE_ID)} '{event.get(h.NAME)}'"


@dataclass
class ReplayResult:
    """What the replay found: new work, whether the action list ran to its end, and open timers."""

    decisions: list[Decision]
    finished: bool
    continue_as_new: bool
    continue_input: str | None
    open_timer_ids: set[int]
    awaiting_event: bool = False


@dataclass
class ShimReplay:
    """Drives the action list through a simulated DurableTask.Core context over one execution's history."""

    actions: list[dict[str, Any]]
    instance_id: str
    execution_id: str
    now: datetime
    _next_id: int = 0
    _top: int = 0
    _finished: bool = False
    _issued: dict[int, Decision] = field(default_factory=dict)
    _matched: set[int] = field(default_factory=set)
    _open: dict[int, ShimTask] = field(default_factory=dict)
    _open_timers: set[int] = field(default_factory=set)
    _entity_waiters: dict[str, ShimTask] = field(default_factory=dict)
    _event_waiters: defaultdict[str, deque[ShimTask]] = field(default_factory=lambda: defaultdict(deque))
    _buffered_events: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    _continue_as_new: bool = False
    _continue_input: str | None = None
    _blocked_on: ShimTask | None = None

    # ---- driving -------------------------------------------------------------------------------------------------
    def replay(self, events: list[h.Event]) -> ReplayResult:
        for event in events:
            self._process(event)
        new = [self._issued[i] for i in sorted(self._issued) if i not in self._matched]
        awaiting = self._blocked_on is not None and self._blocked_on.awaits_external_event()
        return ReplayResult(
            new, self._finished, self._continue_as_new, self._continue_input, set(self._open_timers), awaiting
        )

    def _run_top(self, _: ShimTask | None = None) -> None:
        while self._top < len(self.actions):
            index = self._top
            self._top += 1
            task = self._invoke(self.actions[index], index)
            if not task.done:
                self._blocked_on = task
                task.then(self._run_top)
                return
        self._finished = True

    # ---- history events ------------------------------------------------------------------------------------------
    def _process(self, event: h.Event) -> None:
        kind = event[h.EVENT_TYPE]
        if kind == h.EventType.ORCHESTRATOR_STARTED:
            self.now = max(self.now, h.parse_timestamp(event[h.TIMESTAMP]))
        elif kind == h.EventType.EXECUTION_STARTED:
            self._run_top()
        elif kind in _DECISION_EVENTS:
            self._match(event)
        elif kind in _COMPLETION_EVENTS:
            key = h.TIMER_ID if kind == h.EventType.TIMER_FIRED else h.TASK_SCHEDULED_ID
            task_id = int(event[key])
            self._open_timers.discard(task_id)
            task = self._open.pop(task_id, None)
            if task is not None:
                task.finish(failed=kind in _FAILURE_EVENTS)
        elif kind == h.EventType.EVENT_RAISED:
            self._raise(event)

    def _match(self, event: h.Event) -> None:
        task_id = event[h.EVENT_ID]
        decision = self._issued.get(task_id)
        expected = _describe_event(event)
        if decision is None or decision.kind != event[h.EVENT_TYPE] or not self._same_target(decision, event):
            actual = decision.describe() if decision else "nothing"
            where = decision.action_index if decision else self._top
            raise NonDeterminismError(
                f"Non-deterministic orchestration detected at action index {where} (task id {task_id}): "
                f"the history expects {expected} but the replay scheduled {actual}. "
                "Was the orchestrator code changed while this instance was running?"
            )
        self._matched.add(task_id)
        if decision.kind is DecisionKind.SEND_EVENT and not decision.signal:
            request_id = json.loads(event[h.INPUT])["id"]
            self._entity_waiters[request_id] = self._open.pop(task_id)

    @staticmethod
    def _same_target(decision: Decision, event: h.Event) -> bool:
        if decision.kind is DecisionKind.TIMER:
            return True
        if decision.kind is DecisionKind.SEND_EVENT:
            return decision.target == event.get(h.INSTANCE_ID) and decision.name == event.get(h.NAME)
        return decision.name == event.get(h.NAME)

    def _raise(self, event: h.Event) -> None:
        name = event.get(h.NAME) or ""
        entity_waiter = self._entity_waiters.pop(name, None)
        if entity_waiter is not None:
            entity_waiter.finish(failed=EXCEPTION_TYPE in json.loads(event.get(h.INPUT) or "{}"))
            return
        waiters = self._event_waiters.get(name)
        if waiters:
            waiters.popleft().finish()
        else:
            self._buffered_events[name] += 1

    # ---- actions -------------------------------------------------------------------------------------------------
    def _schedule(self, decision: Decision) -> ShimTask:
        self._issued[decision.task_id] = decision
        task = ShimTask()
        self._open[decision.task_id] = task
        return task

    def _take_id(self) -> int:
        task_id = self._next_id
        self._next_id += 1
        return task_id

    def _invoke(self, action: dict[str, Any], index: int) -> ShimTask:
        kind = action[ACTION_TYPE]
        if kind == ActionType.CALL_ACTIVITY:
            return self._activity(action, index)
        if kind == ActionType.CALL_SUB_ORCHESTRATOR:
            return self._sub_orchestration(action, index)
        if kind in (ActionType.CALL_ACTIVITY_WITH_RETRY, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            return _Retry(self, action, index).start()
        if kind == ActionType.CREATE_TIMER:
            return self._timer(h.parse_timestamp(action["fireAt"]), index, bool(action.get("isCanceled")))
        if kind == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            return self._wait_event(action["externalEventName"])
        if kind in (ActionType.CALL_ENTITY, ActionType.SIGNAL_ENTITY):
            signal = kind == ActionType.SIGNAL_ENTITY
            decision = Decision(
                DecisionKind.SEND_EVENT, self._take_id(), index, action["operation"], action.get("input"),
                action["instanceId"], signal=signal,
            )  # fmt: skip
            task = self._schedule(decision)
            if signal:
                self._open.pop(decision.task_id)
                return completed()
            return task
        if kind == ActionType.CONTINUE_AS_NEW:
            self._continue_as_new, self._continue_input = True, action.get("input")
            return completed()
        if kind in (ActionType.WHEN_ALL, ActionType.WHEN_ANY):
            children = [self._invoke(child, index) for child in action.get(COMPOUND_ACTIONS) or []]
            return when(children, any_=kind == ActionType.WHEN_ANY)
        raise UnsupportedActionError(f"devhost does not support action type {kind} ({ActionType(kind).name})")

    def _activity(self, action: dict[str, Any], index: int) -> ShimTask:
        return self._schedule(
            Decision(DecisionKind.ACTIVITY, self._take_id(), index, action["functionName"], action.get("input"))
        )

    def _sub_orchestration(self, action: dict[str, Any], index: int) -> ShimTask:
        task_id = self._take_id()
        child_id = action.get("instanceId") or f"{self.execution_id}:{task_id}"
        return self._schedule(
            Decision(DecisionKind.SUB_ORCHESTRATION, task_id, index, action["functionName"], action.get("input"),
                     child_id)
        )  # fmt: skip

    def _timer(self, fire_at: datetime, index: int, cancelled: bool) -> ShimTask:
        decision = Decision(DecisionKind.TIMER, self._take_id(), index, fire_at=fire_at, cancelled=cancelled)
        task = self._schedule(decision)
        if cancelled:  # a cancelled CancellationToken completes the .NET task at once; its TimerFired is ignored
            self._open.pop(decision.task_id)
            task.finish(failed=True)
        else:
            self._open_timers.add(decision.task_id)
        return task

    def _wait_event(self, name: str) -> ShimTask:
        task = ShimTask(external_event=True)
        if self._buffered_events.get(name, 0) > 0:
            self._buffered_events[name] -= 1
            task.finish()
        else:
            self._event_waiters[name].append(task)
        return task


class _Retry:
    """DurableTask.Core RetryInterceptor: attempt, on failure wait first_interval * backoff^n, retry; one timer more
    than attempts (the delay after the last failure is still awaited before the failure surfaces).
    """

    def __init__(self, replay: ShimReplay, action: dict[str, Any], index: int) -> None:
        options = action.get(RETRY_OPTIONS) or {}
        self.replay, self.action, self.index = replay, action, index
        self.first_interval_ms = float(options.get(RETRY_FIRST_INTERVAL, 0))
        self.max_attempts = int(options.get(RETRY_MAX_ATTEMPTS, 1))
        self.backoff = float(options.get(RETRY_BACKOFF, 1.0))
        self.max_interval_ms = options.get(RETRY_MAX_INTERVAL)
        self.attempt = 0
        self.result = ShimTask()

    def start(self) -> ShimTask:
        if self.max_attempts <= 0:
            self.result.finish(failed=True)
            return self.result
        self._attempt()
        return self.result

    def _attempt(self) -> None:
        if self.action[ACTION_TYPE] == ActionType.CALL_ACTIVITY_WITH_RETRY:
            task = self.replay._activity(self.action, self.index)
        else:
            task = self.replay._sub_orchestration(self.action, self.index)
        task.then(self._after_attempt)

    def _after_attempt(self, task: ShimTask) -> None:
        if not task.failed:
            self.result.finish()
            return
        delay_ms = self.first_interval_ms * self.backoff**self.attempt
        if self.max_interval_ms is not None:
            delay_ms = min(delay_ms, float(self.max_interval_ms))
        if delay_ms <= 0:
            self.result.finish(failed=True)
            return
        fire_at = self.replay.now + timedelta(milliseconds=delay_ms)
        self.replay._timer(fire_at, self.index, cancelled=False).then(self._after_timer)

    def _after_timer(self, _: ShimTask) -> None:
        self.attempt += 1
        if self.attempt >= self.max_attempts:
            self.result.finish(failed=True)
        else:
            self._attempt()


_DECISION_EVENTS = frozenset(int(kind) for kind in DecisionKind)
_COMPLETION_EVENTS = frozenset(
    {
        h.EventType.TASK_COMPLETED,
        h.EventType.TASK_FAILED,
        h.EventType.SUB_ORCHESTRATION_COMPLETED,
        h.EventType.SUB_ORCHESTRATION_FAILED,
        h.EventType.TIMER_FIRED,
    }
)
_FAILURE_EVENTS = frozenset({h.EventType.TASK_FAILED, h.EventType.SUB_ORCHESTRATION_FAILED})
