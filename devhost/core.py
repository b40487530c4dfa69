"""The engine's machinery: the work loop, episode commits, activities, timers and entities (lock discipline inside)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from devhost import history as h
from devhost import recovery
from devhost.actions import Decision, DecisionKind
from devhost.clock import Clock, current, install
from devhost.entities import EntityOperation, EntityState, run_batch
from devhost.errors import InstanceNotFoundError, InstanceNotRunningError
from devhost.functions import FunctionIndex
from devhost.invoke import ActivityClient, ActivityOutcome, activity_failure, missing_function, run_activity
from devhost.orchestration import (
    COMPLETED,
    CONTINUED_AS_NEW,
    PENDING,
    RUNNING,
    TERMINAL_STATUSES,
    EpisodeResult,
    InboxItem,
    Instance,
    ParentRef,
    entity_request,
    run_episode,
)
from devhost.ordering import ActivityLanes, CompletionOrder
from devhost.store import Store
from devhost.wakeups import run_due_calls

ORCHESTRATION_WORK = "orchestration"
ENTITY_WORK = "entity"
ActivityKey = tuple[str, str, int]
_IDLE_POLL_SECONDS = 1.0


class EngineCore:
    """State and work loop behind DurableEngine; `_` helpers need the lock held, `_drive`/`_pump_once` take it."""

    activity_client: ActivityClient | None = None  # set by the server: activities with a durable client input

    def __init__(
        self,
        index: FunctionIndex,
        *,
        store_path: str | None = None,
        clock: Clock | None = None,
        task_hub: str = "DevHostHub",
        max_workers: int = 8,
        event_grace: float = 0.0,
        ordered_completions: bool = False,
        serial_activities: Collection[str] = (),
    ) -> None:
        self.index = index
        self._order: CompletionOrder[ActivityKey, ActivityOutcome] = CompletionOrder(ordered_completions)
        self._event_grace = event_grace
        self._last_work = time.monotonic()
        self.clock = install(clock if clock is not None else current())
        self.task_hub = task_hub
        self._virtual = hasattr(self.clock, "advance_to")
        self._store = Store(store_path)
        self.store_path = self._store.path
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._pump_lock = threading.Lock()
        self._instances: dict[str, Instance] = {}
        self._entities: dict[str, EntityState] = {}
        self._ready: deque[tuple[str, str]] = deque()
        self._ready_set: set[tuple[str, str]] = set()
        self._timers: list[tuple[datetime, int, str, str, int, str]] = []
        self._timer_seq = itertools.count()
        self._inflight: dict[ActivityKey, tuple[str, str | None]] = {}
        self._busy = 0
        self._pool = ActivityLanes(max_workers, serial_activities)  # devhost/ordering.py
        self._worker: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        with self._lock:
            launches = recovery.restore(self, self._store.load())
        for key in launches:
            self._launch(key)

    # ---- the loop -------------------------------------------------------------------------------------------------
    def _drive(
        self,
        stop_when: Callable[[], bool],
        deadline: float | None,
        return_when_idle: bool = False,
        hold_for_events: bool = False,
        until: datetime | None = None,
    ) -> None:
        """Pump work; idle: jump a virtual clock to the next timer (`until`: only to those due by then, then stop)."""
        while True:
            with self._lock:
                if stop_when():
                    return
            if self._pump_once() or run_due_calls(self, until):  # devhost/wakeups.py: simulators' timed calls
                continue
            with self._lock:
                if self._ready or stop_when():
                    continue
                due = self._earliest_timer()
                idle = not self._inflight and self._busy == 0
                jump = idle and due is not None and self._virtual
                held = self._event_hold() if jump and hold_for_events else 0.0
                if jump and held <= 0 and (until is None or (due is not None and due <= until)):
                    self.clock.advance_to(due)  # type: ignore[attr-defined]
                    continue
                if idle and until is not None:
                    self.clock.advance_to(until)  # type: ignore[attr-defined]
                    return
                if idle and return_when_idle:
                    return
                wait = min(_IDLE_POLL_SECONDS, held) if held > 0 else _IDLE_POLL_SECONDS
                if due is not None and not self._virtual:
                    wait = min(wait, max(0.0, (due - self.clock.now()).total_seconds()))
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("devhost: work still pending at the deadline")
                    wait = min(wait, remaining)
                self._cond.wait(wait)

    def _pump_once(self) -> bool:
        with self._pump_lock:
            with self._lock:
                self._fire_due_timers()
                for key, outcome in [] if self._ready else self._order.release(self._inflight):
                    self._activity_done(key, outcome)  # ordered completions: only when nothing else is ready
                for deliver in [] if self._ready else self._order.release_events(self._inflight):
                    deliver()  # external events raised meanwhile, in rule order (devhost/ordering.py)
                if not self._ready:
                    return False
                work = self._ready.popleft()
                self._ready_set.discard(work)
                self._busy += 1
            try:
                if work[0] == ORCHESTRATION_WORK:
                    self._run_instance(work[1])
                else:
                    self._run_entity(work[1])
            finally:
                with self._lock:
                    self._busy -= 1
                    self._last_work = time.monotonic()
                    self._cond.notify_all()
            return True

    def _event_hold(self) -> float:
        """Seconds the virtual clock still waits before jumping to the earliest timer (lock held, timers pruned).

        Only the background worker (`serve`) holds, and only when that timer belongs to an instance that is also
        waiting for an external event (`task_any([event, timer])`): the outside world then gets `event_grace` wall
        seconds after the last piece of work to raise the event before the jump decides the race. Status reads do
        not extend the grace; timers of other instances jump at once.
        """
        if self._event_grace <= 0 or not self._timers:
            return 0.0
        owner = self._instances.get(self._timers[0][2])
        if owner is None or not owner.awaiting_event:
            return 0.0
        return self._event_grace - (time.monotonic() - self._last_work)

    def _run_instance(self, instance_id: str) -> None:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None or not inst.inbox:
                return
            items, inst.inbox = inst.inbox, []
            current_items = [i for i in items if i.execution_id in (None, inst.execution_id)]
            if not inst.is_active or not current_items:
                with self._store.transaction():
                    self._store.delete_inbox(i.row_id for i in items)
                return
            entry = self.index.orchestrator(inst.name)
            now = self.clock.now()
        result = run_episode(entry, inst, [i.event for i in current_items], now)
        with self._lock:
            if self._instances.get(instance_id) is not inst:
                return
            with self._store.transaction():
                launches = self._commit_episode(inst, items, result, now)
        for key in launches:
            self._launch(key)

    def _commit_episode(
        self, inst: Instance, items: list[InboxItem], result: EpisodeResult, now: datetime
    ) -> list[ActivityKey]:
        self._store.delete_inbox(i.row_id for i in items)
        self._store.append_history(inst.instance_id, len(inst.history), result.events)
        inst.history.commit(result.events)
        if result.custom_status_set:
            inst.custom_status_json = result.custom_status_json
        inst.updated = now
        terminal = result.status in TERMINAL_STATUSES
        launches = [
            key
            for decision in result.decisions
            if not terminal or (decision.kind is DecisionKind.SEND_EVENT and decision.signal)
            for key in self._apply(inst, decision, now)
        ]
        if result.status == CONTINUED_AS_NEW:
            self._continue_as_new(inst, result.continue_input, now)
        elif terminal:
            inst.status, inst.output_json = result.status, result.output_json
            self._store.delete_execution_work(inst.instance_id)
            self._notify_parent(inst, result, now)
        else:
            inst.status = RUNNING
        inst.awaiting_event = inst.status == RUNNING and result.awaiting_event
        self._store.save_instance(recovery.instance_row(inst))
        return launches

    def _apply(self, inst: Instance, decision: Decision, now: datetime) -> list[ActivityKey]:
        iid, eid = inst.instance_id, inst.execution_id
        if decision.kind is DecisionKind.ACTIVITY:
            key = (iid, eid, decision.task_id)
            self._store.add_activity(iid, eid, decision.task_id, decision.name, decision.input)
            self._inflight[key] = (decision.name, decision.input)
            return [key]
        if decision.kind is DecisionKind.TIMER:
            assert decision.fire_at is not None
            fire_at = h.format_timestamp(decision.fire_at)
            self._store.add_timer(iid, eid, decision.task_id, fire_at)
            self._push_timer(iid, eid, decision.task_id, fire_at)
        elif decision.kind is DecisionKind.SUB_ORCHESTRATION:
            self._start_child(inst, decision, now)
        else:
            message = entity_request(decision, iid, eid)
            self._enqueue_entity(decision.target or "", message)
        return []

    def _start_child(self, parent: Instance, decision: Decision, now: datetime) -> None:
        child_id = decision.target or ""
        existing = self._instances.get(child_id)
        if existing is not None and existing.is_active:
            reason = f"An orchestration with instance ID '{child_id}' already exists and is active."
            self._post(parent, parent.execution_id, h.sub_orchestration_failed(now, decision.task_id, reason, None))
            return
        entry = self.index.orchestrator(decision.name)
        name = entry.durable_name if entry else decision.name
        ref = ParentRef(parent.instance_id, parent.execution_id, decision.task_id)
        self._create(name, child_id, decision.input, ref, parent.name)

    def _continue_as_new(self, inst: Instance, input_text: str | None, now: datetime) -> None:
        self._store.reset_history(inst.instance_id)
        self._store.delete_execution_work(inst.instance_id)
        stale = [item for item in inst.inbox if item.execution_id is not None]
        self._store.delete_inbox(item.row_id for item in stale)
        inst.inbox = [item for item in inst.inbox if item.execution_id is None]
        inst.execution_id, inst.history = uuid.uuid4().hex, h.ExecutionHistory()
        inst.input_json, inst.output_json, inst.status = input_text, None, CONTINUED_AS_NEW
        # The instance's createdTime is the new execution's ExecutionStarted time, as in DurableTask.AzureStorage
        # (AzureTableTrackingStore.UpdateStateAsync sets CreatedTime from every ExecutionStarted event).
        inst.created = now
        self._post(inst, inst.execution_id, self._started_event(inst, inst.name if inst.parent else None))

    def _notify_parent(self, inst: Instance, result: EpisodeResult, now: datetime) -> None:
        ref = inst.parent
        parent = self._instances.get(ref.instance_id) if ref else None
        if ref is None or parent is None or parent.execution_id != ref.execution_id or not parent.is_active:
            return
        if result.status == COMPLETED:
            event = h.sub_orchestration_completed(now, ref.task_id, inst.output_json)
        else:
            event = h.sub_orchestration_failed(now, ref.task_id, result.failure_reason, result.failure_details)
        self._post(parent, ref.execution_id, event)

    # ---- activities, timers, entities -----------------------------------------------------------------------------
    def _launch(self, key: ActivityKey) -> None:
        name, input_text = self._inflight[key]
        self._order.launched(key)
        self._pool.submit(name, self._run_activity, key, name, input_text)

    def _run_activity(self, key: ActivityKey, name: str, input_text: str | None) -> None:
        entry = self.index.activity(name)
        try:
            client = self.activity_client
            outcome = run_activity(entry, input_text, client) if entry else missing_function("activity", name)
        except BaseException as exc:  # SystemExit and the like still fail the task rather than losing it
            outcome = activity_failure(name, exc)
        with self._lock:
            if not (key in self._inflight and not self._closed and self._order.hold(key, outcome)):
                self._activity_done(key, outcome)  # a held result is posted by _pump_once, in launch order
            self._cond.notify_all()

    def _activity_done(self, key: ActivityKey, outcome: ActivityOutcome) -> None:
        if self._inflight.pop(key, None) is None or self._closed:
            return
        instance_id, execution_id, task_id = key
        inst = self._instances.get(instance_id)
        now = self.clock.now()
        with self._store.transaction():
            self._store.delete_activity(instance_id, execution_id, task_id)
            if inst is None or inst.execution_id != execution_id or not inst.is_active:
                return
            if outcome.failed:
                event = h.task_failed(now, task_id, outcome.reason, outcome.details)
            else:
                event = h.task_completed(now, task_id, outcome.result_json)
            self._post(inst, execution_id, event)

    def _push_timer(self, instance_id: str, execution_id: str, timer_id: int, fire_at: str) -> None:
        entry = (h.parse_timestamp(fire_at), next(self._timer_seq), instance_id, execution_id, timer_id, fire_at)
        heapq.heappush(self._timers, entry)

    def _timer_live(self, instance_id: str, execution_id: str) -> bool:
        inst = self._instances.get(instance_id)
        return inst is not None and inst.execution_id == execution_id and inst.is_active

    def _earliest_timer(self) -> datetime | None:
        while self._timers and not self._timer_live(self._timers[0][2], self._timers[0][3]):
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def _fire_due_timers(self) -> None:
        now = self.clock.now()
        while (due := self._earliest_timer()) is not None and due <= now:
            _, _, instance_id, execution_id, timer_id, fire_at = heapq.heappop(self._timers)
            with self._store.transaction():
                self._store.delete_timer(instance_id, execution_id, timer_id)
                inst = self._instances[instance_id]
                self._post(inst, execution_id, h.timer_fired(now, timer_id, fire_at))

    def _enqueue_entity(self, entity_id: str, message: dict[str, Any]) -> None:
        row_id = self._store.add_entity_message(entity_id, message)
        self._entities.setdefault(entity_id, EntityState()).queue.append(EntityOperation(row_id, message))
        self._mark_ready(ENTITY_WORK, entity_id)

    def _run_entity(self, entity_id: str) -> None:
        with self._lock:
            entity = self._entities[entity_id]
            ops, entity.queue = entity.queue, []
            working = EntityState(entity.state_json, entity.exists)
            entry = self.index.entity(entity_id[1:].partition("@")[0])
            now = self.clock.now()
        replies = run_batch(entry, entity_id, working, ops, now) if ops else []
        with self._lock, self._store.transaction():
            entity.state_json, entity.exists = working.state_json, working.exists
            self._store.save_entity(entity_id, entity.state_json, entity.exists)
            self._store.delete_entity_messages(op.row_id for op in ops)
            for reply in replies:
                inst = self._instances.get(reply.instance_id)
                if inst is not None and inst.is_active and reply.execution_id in (None, inst.execution_id):
                    self._post(inst, reply.execution_id, reply.event)

    # ---- bookkeeping (lock held) ----------------------------------------------------------------------------------
    def _active(self, instance_id: str) -> Instance:
        inst = self._instances.get(instance_id)
        if inst is None:
            raise InstanceNotFoundError(f"no instance with ID '{instance_id}'")
        if not inst.is_active:
            raise InstanceNotRunningError(f"instance '{instance_id}' is {inst.status}")
        return inst

    def _create(
        self, name: str, instance_id: str, input_json: str | None, parent: ParentRef | None, parent_name: str = ""
    ) -> Instance:
        now = self.clock.now()
        self._store.delete_instance(instance_id)
        inst = Instance(instance_id, name, uuid.uuid4().hex, PENDING, input_json, now, now, parent)
        self._instances[instance_id] = inst
        self._post(inst, inst.execution_id, self._started_event(inst, parent_name))
        self._store.save_instance(recovery.instance_row(inst))
        return inst

    def _started_event(self, inst: Instance, parent_name: str | None) -> h.Event:
        parent = None
        if inst.parent is not None:
            ref = inst.parent
            instance = {"InstanceId": ref.instance_id, "ExecutionId": ref.execution_id}
            parent = {"Name": parent_name or "", "OrchestrationInstance": instance, "TaskScheduleId": ref.task_id}
        return h.execution_started(
            self.clock.now(), inst.name, inst.input_json, inst.instance_id, inst.execution_id, parent
        )

    def _post(self, inst: Instance, execution_id: str | None, event: h.Event) -> None:
        row_id = self._store.add_inbox(inst.instance_id, execution_id, event)
        inst.inbox.append(InboxItem(row_id, execution_id, event))
        self._mark_ready(ORCHESTRATION_WORK, inst.instance_id)

    def _mark_ready(self, kind: str, key: str) -> None:
        work = (kind, key)
        if work not in self._ready_set:
            self._ready_set.add(work)
            self._ready.append(work)


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout
