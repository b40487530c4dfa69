"""DurableEngine: a local Durable Functions backend that drives any `df.DFApp` exactly as the extension would."""

from __future__ import annotations

import json
import threading
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

from devhost import history as h
from devhost.core import EngineCore, deadline_after
from devhost.entities import scheduler_id
from devhost.errors import (
    InstanceNotFoundError,
    InstanceNotRunningError,
    InvalidInstanceIdError,
    OrchestrationExistsError,
    UnknownFunctionError,
)
from devhost.orchestration import TERMINAL_STATUSES
from devhost.status import instance_status

__all__ = [
    "DurableEngine",
    "InstanceNotFoundError",
    "InstanceNotRunningError",
    "OrchestrationExistsError",
    "UnknownFunctionError",
]


class DurableEngine(EngineCore):
    """Runs orchestrations, activities, timers and entities; every public method is safe to call from any thread.

    Construct with `DurableEngine(index, store_path=..., clock=..., task_hub=..., max_workers=...)`.
    """

    # ---- client API -----------------------------------------------------------------------------------------------
    def start_new(self, name: str, instance_id: str | None = None, input: Any = None) -> str:
        """Schedule a new orchestration; `input` is the value the orchestrator's `context.get_input()` returns."""
        entry = self.index.orchestrator(name)
        if entry is None:
            raise UnknownFunctionError(f"no orchestrator function named '{name}'")
        instance_id = instance_id or uuid.uuid4().hex
        _check_instance_id(instance_id)
        with self._lock:
            existing = self._instances.get(instance_id)
            if existing is not None and existing.is_active:
                raise OrchestrationExistsError(f"an instance with ID '{instance_id}' already exists and is active")
            with self._store.transaction():
                self._create(entry.durable_name, instance_id, None if input is None else json.dumps(input), None)
            self._cond.notify_all()
        return instance_id

    def get_status(
        self,
        instance_id: str,
        *,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = True,
    ) -> dict[str, Any] | None:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return None
            return instance_status(
                inst, show_history=show_history, show_history_output=show_history_output, show_input=show_input
            )

    def history(self, instance_id: str) -> list[h.Event]:
        """devhost-only: the current execution's stored history as the orchestrator receives it (DTFx event shapes,
        EventId and OrchestratorStarted/Completed included); the status API shows a reduced view of it.
        """
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                raise InstanceNotFoundError(f"no instance with ID '{instance_id}'")
            return [dict(event) for event in inst.history.events]

    def list_statuses(
        self,
        *,
        runtime_status: list[str] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> list[dict[str, Any]]:
        created_from, created_to = _aware(created_from), _aware(created_to)
        with self._lock:
            return [
                instance_status(inst)
                for inst in self._instances.values()
                if (not runtime_status or inst.status in runtime_status)
                and (created_from is None or inst.created >= created_from)
                and (created_to is None or inst.created <= created_to)
            ]

    def raise_event(self, instance_id: str, event_name: str, data: Any) -> None:
        """Deliver an external event; `data` is the value the orchestrator's task receives."""
        with self._lock:
            inst = self._active(instance_id)
            payload = json.dumps(data)
            if not self._order.hold_event(
                (instance_id, event_name, payload), lambda: self._post_event(inst, event_name, payload)
            ):
                self._post_event(inst, event_name, payload)
            self._cond.notify_all()

    def _post_event(self, inst: Any, event_name: str, payload: str) -> None:
        """Append an EventRaised (held events: dropped if the instance ended meanwhile, as for any late event)."""
        if inst.is_active:
            with self._store.transaction():
                self._post(inst, None, h.event_raised(self.clock.now(), event_name, payload))

    def terminate(self, instance_id: str, reason: str | None) -> None:
        with self._lock:
            inst = self._active(instance_id)
            with self._store.transaction():
                self._post(inst, None, h.execution_terminated(self.clock.now(), reason))
            self._cond.notify_all()

    def purge(self, instance_id: str) -> bool:
        with self._lock:
            if self._instances.pop(instance_id, None) is None:
                return False
            with self._store.transaction():
                self._store.delete_instance(instance_id)
            return True

    def signal_entity(self, name: str, key: str, operation: str, input: Any = None) -> None:
        """Queue a one-way operation; `input` is the value the entity's `context.get_input()` returns."""
        if self.index.entity(name) is None:
            raise UnknownFunctionError(f"no entity function named '{name}'")
        message = {"id": uuid.uuid4().hex, "op": operation, "signal": True, "input": json.dumps(input), "parent": None}
        with self._lock:
            with self._store.transaction():
                self._enqueue_entity(scheduler_id(name, key), message)
            self._cond.notify_all()

    def read_entity_state(self, name: str, key: str) -> tuple[bool, Any]:
        with self._lock:
            entity = self._entities.get(scheduler_id(name, key))
            if entity is None or not entity.exists or entity.state_json is None:
                return False, None
            return True, json.loads(entity.state_json)

    # ---- running --------------------------------------------------------------------------------------------------
    def run_until_idle(self, timeout: float | None = None) -> None:
        """Process all work (advancing a virtual clock to pending timers) until nothing can run any more."""
        self._drive(lambda: False, deadline_after(timeout), return_when_idle=True)

    def run_until(self, when: datetime, timeout: float | None = None) -> None:
        """Virtual clock only: run all work, firing timers due at or before `when`, then move the clock to `when`.

        Returns once nothing can run before `when` (later timers stay pending); the clock never goes backwards.
        """
        if not self._virtual:
            raise TypeError("run_until needs a virtual clock")
        self._drive(lambda: False, deadline_after(timeout), return_when_idle=True, until=when)

    def wait_for_completion(self, instance_id: str, timeout: float) -> dict[str, Any]:
        """Drive (or, with the background worker, wait for) the instance until it is Completed/Failed/Terminated."""

        def finished() -> bool:
            inst = self._instances.get(instance_id)
            if inst is None:
                raise InstanceNotFoundError(instance_id)
            return inst.status in TERMINAL_STATUSES

        self._drive(finished, deadline_after(timeout), return_when_idle=False)
        status = self.get_status(instance_id)
        assert status is not None
        return status

    def start(self) -> None:
        """Run the engine continuously on a background thread (used by `serve`)."""
        if self._worker is not None and self._worker.is_alive():
            return
        self._stopping = False
        self._worker = threading.Thread(
            target=self._drive, args=(lambda: self._stopping, None, False, True), name="devhost-engine", daemon=True
        )
        self._worker.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def close(self) -> None:
        """Stop the worker, abandon running activities (they resume on restart) and close the store."""
        self.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if not self._closed:
                self._closed = True
                self._store.close()

    def __enter__(self) -> DurableEngine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


MAX_INSTANCE_ID_LENGTH = 256


def _check_instance_id(instance_id: str) -> None:
    """The checks of DurableClient.StartNewAsync in the extension."""
    if instance_id.startswith("@"):
        raise InvalidInstanceIdError("Orchestration instance ids must not start with @.")
    if any(ch in "/\\?#" or unicodedata.category(ch) == "Cc" for ch in instance_id):
        raise InvalidInstanceIdError("Orchestration instance ids must not contain /, \\, #, ?, or control characters.")
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise InvalidInstanceIdError(f"Instance ID lengths must not exceed {MAX_INSTANCE_ID_LENGTH} characters.")


def _aware(when: datetime | None) -> datetime | None:
    """Filters may come naive from query strings; devhost times are UTC."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when
