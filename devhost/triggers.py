"""Invokes non-durable functions (HTTP, Event Hub, timer) with their bindings, as the host and Python worker do.

Event Grid triggers: devhost.event_grid.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Protocol

import azure.functions as func
from azure.functions import _abc as functions_abc
from azure.functions import meta
from azure.functions.eventhub import EventHubTriggerConverter
from azure.functions.timer import TimerRequest

from devhost import clock as clock_mod

HTTP_TRIGGER = "httpTrigger"
EVENT_HUB_TRIGGER = "eventHubTrigger"
TIMER_TRIGGER = "timerTrigger"
EVENT_GRID_TRIGGER = "eventGridTrigger"
DURABLE_CLIENT = "durableClient"
CONTEXT_PARAM = "context"
RETRY_SETTING = "retry_policy"
FIXED_DELAY = "fixed_delay"
EXPONENTIAL_BACKOFF = "exponential_backoff"
CARDINALITY_MANY = "many"
LOG = logging.getLogger("devhost.triggers")


class IndexEntry(Protocol):
    """What devhost needs from one indexed function (`devhost.functions.FunctionEntry`)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def bindings(self) -> tuple[dict[str, Any], ...]: ...

    @property
    def callable(self) -> Callable[..., Any]: ...


def _plain(value: Any) -> Any:
    """Binding values as plain strings: enums (`Cardinality.MANY`) by value, raw JSON names (`"MANY"`) as they are."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return getattr(value, "value", value)


def _timespan(text: str | None) -> timedelta:
    """`HH:MM:SS` (optionally `D.HH:MM:SS`) as used by the host's retry settings."""
    if not text:
        return timedelta()
    days = 0
    if "." in text.split(":")[0]:
        day_part, text = text.split(".", 1)
        days = int(day_part)
    hours, minutes, seconds = (float(part) for part in text.split(":"))
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """The `@app.retry` policy: `max_retry_count` retries after the first attempt (-1: forever)."""

    strategy: str
    max_retry_count: int
    delay: timedelta = timedelta()
    minimum: timedelta = timedelta()
    maximum: timedelta = timedelta()

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any] | None) -> RetryPolicy | None:
        if not setting:
            return None
        return cls(
            strategy=str(setting.get("strategy")),
            max_retry_count=int(setting.get("max_retry_count") or 0),
            delay=_timespan(setting.get("delay_interval")),
            minimum=_timespan(setting.get("minimum_interval")),
            maximum=_timespan(setting.get("maximum_interval")),
        )

    def delay_before(self, retry: int) -> timedelta:
        """The wait before retry number `retry` (1-based); exponential doubles from the minimum, capped."""
        if self.strategy == EXPONENTIAL_BACKOFF:
            return min(self.maximum, self.minimum * (1 << (retry - 1)))
        return self.delay

    def allows(self, retry: int) -> bool:
        return self.max_retry_count < 0 or retry <= self.max_retry_count


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the host sees it: its trigger binding, durable client parameter and retry policy."""

    name: str
    trigger: dict[str, Any]
    user_function: Callable[..., Any]
    client_param: str | None = None
    retry: RetryPolicy | None = None

    @property
    def trigger_type(self) -> str:
        return str(self.trigger.get("type"))

    @property
    def trigger_param(self) -> str:
        return str(self.trigger.get("name"))

    @classmethod
    def from_entry(cls, entry: IndexEntry) -> FunctionSpec:
        """From the function index; `retry` is the `@app.retry` setting dict when the index carries it."""
        bindings = [{key: _plain(value) for key, value in binding.items()} for binding in entry.bindings]
        trigger = next((b for b in bindings if b.get("type") == entry.kind), {"type": entry.kind})
        client = next((str(b["name"]) for b in bindings if b.get("type") == DURABLE_CLIENT), None)
        return cls(
            name=entry.name,
            trigger=trigger,
            user_function=entry.callable,
            client_param=client,
            retry=RetryPolicy.from_setting(getattr(entry, "retry", None)),
        )


def specs_from_index(entries: Iterable[IndexEntry]) -> list[FunctionSpec]:
    """One spec per indexed function."""
    return [FunctionSpec.from_entry(entry) for entry in entries]


def specs_by_type(specs: Iterable[FunctionSpec], trigger_type: str) -> dict[str, FunctionSpec]:
    """The functions with the given trigger type, by function name."""
    return {spec.name: spec for spec in specs if spec.trigger_type == trigger_type}


class _RetryContext(functions_abc.RetryContext):  # type: ignore[misc]
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):  # type: ignore[misc]
    """The `context` parameter the worker passes to a function that declares one."""

    def __init__(self, function_name: str, retry_count: int = 0, max_retry_count: int = 0) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._retry = _RetryContext(retry_count, max_retry_count)
        self._local = threading.local

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> _RetryContext:
        return self._retry


async def invoke(
    spec: FunctionSpec, trigger_value: Any, client_binding: str, *, retry_count: int = 0, max_retry_count: int = 0
) -> Any:
    """Call the function once with its trigger value, its durable client binding string and `context`.

    Coroutine functions run on the calling loop (the worker's loop); plain functions on a thread, as the
    worker runs them in its thread pool.
    """
    parameters = inspect.signature(spec.user_function).parameters
    kwargs: dict[str, Any] = {spec.trigger_param: trigger_value}
    if spec.client_param:
        kwargs[spec.client_param] = client_binding
    if CONTEXT_PARAM in parameters and CONTEXT_PARAM not in kwargs:
        kwargs[CONTEXT_PARAM] = InvocationContext(spec.name, retry_count, max_retry_count)
    unknown = [name for name in parameters if name not in kwargs]
    if unknown:
        raise TypeError(f"devhost cannot bind parameters {unknown} of function {spec.name}")
    if inspect.iscoroutinefunction(spec.user_function):
        return await spec.user_function(**kwargs)
    return await asyncio.to_thread(spec.user_function, **kwargs)


async def invoke_with_retry(
    spec: FunctionSpec,
    make_value: Callable[[], Any],
    client_binding: str,
    *,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> int:
    """Invoke, retrying per the function's `@app.retry` policy; returns the number of attempts.

    A fresh trigger value is built per attempt. With a `VirtualClock` installed, a retry delay advances the
    clock instead of sleeping. The last exception propagates when the policy is exhausted.
    """
    policy = spec.retry
    max_retries = policy.max_retry_count if policy else 0
    attempt = 0
    while True:
        try:
            await invoke(spec, make_value(), client_binding, retry_count=attempt, max_retry_count=max_retries)
            return attempt + 1
        except Exception as exc:
            if policy is None or not policy.allows(attempt + 1):
                raise
            attempt += 1
            delay = policy.delay_before(attempt)
            LOG.warning(
                "function %s failed (%s: %s); retry %d in %ss",
                spec.name,
                type(exc).__name__,
                exc,
                attempt,
                delay.total_seconds(),
            )
            await _wait(delay, sleep)


async def _wait(delay: timedelta, sleep: Callable[[float], Awaitable[None]] | None) -> None:
    current = clock_mod.current()
    if isinstance(current, clock_mod.VirtualClock):
        current.advance(delay)
        return
    await (sleep or asyncio.sleep)(delay.total_seconds())


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class EventHubSource:
    """Produces `EventHubEvent` values the way the host's trigger metadata and the worker's converter do."""

    sequence: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies_from_admin_input(self, spec: FunctionSpec, admin_input: str) -> list[str]:
        """The event bodies for an admin input string (semantics in docs/devhost.md).

        Cardinality one: the input is the body. Many: a JSON array gives one event per item (strings as
        they are, anything else JSON-encoded); any other input is a batch of one event with that body.
        """
        if str(spec.trigger.get("cardinality", "one")).lower() != CARDINALITY_MANY:
            return [admin_input]
        try:
            parsed = json.loads(admin_input)
        except ValueError:
            return [admin_input]
        if not isinstance(parsed, list):
            return [admin_input]
        return [item if isinstance(item, str) else json.dumps(item) for item in parsed]

    def trigger_value(
        self, spec: FunctionSpec, bodies: list[str], properties: list[dict[str, Any]] | None = None
    ) -> Any:
        """`EventHubEvent` (cardinality one) or a list of them (many), decoded by the worker's own converter."""
        many = str(spec.trigger.get("cardinality", "one")).lower() == CARDINALITY_MANY
        if not many and len(bodies) != 1:
            raise ValueError(f"function {spec.name} has cardinality one; got {len(bodies)} events")
        props = properties or [{} for _ in bodies]
        now = _iso(clock_mod.current().now())
        with self._lock:
            first = self.sequence
            self.sequence += len(bodies)
        system = [
            {"SequenceNumber": seq, "Offset": str(seq * 1024), "PartitionKey": None, "EnqueuedTimeUtc": now}
            for seq in range(first, first + len(bodies))
        ]
        context = {"EventHubName": spec.trigger.get("eventHubName"), "ConsumerGroup": spec.trigger.get("consumerGroup")}
        metadata: dict[str, meta.Datum] = {"PartitionContext": meta.Datum(json.dumps(context), "json")}
        if many:
            metadata["SystemPropertiesArray"] = meta.Datum(json.dumps(system), "json")
            metadata["PropertiesArray"] = meta.Datum(json.dumps(props), "json")
            for key in ("SequenceNumber", "Offset", "PartitionKey", "EnqueuedTimeUtc"):
                metadata[f"{key}Array"] = meta.Datum(json.dumps([item[key] for item in system]), "json")
            data = meta.Datum(SimpleNamespace(string=list(bodies)), "collection_string")
        else:
            metadata["SystemProperties"] = meta.Datum(json.dumps(system[0]), "json")
            metadata["Properties"] = meta.Datum(json.dumps(props[0]), "json")
            metadata["SequenceNumber"] = meta.Datum(system[0]["SequenceNumber"], "int")
            metadata["Offset"] = meta.Datum(system[0]["Offset"], "string")
            metadata["EnqueuedTimeUtc"] = meta.Datum(now, "string")
            data = meta.Datum(bodies[0], "string")
        return EventHubTriggerConverter.decode(data, trigger_metadata=metadata)


def timer_value(past_due: bool = False) -> TimerRequest:
    """The `TimerRequest` the worker builds from the host's `TimerInfo`."""
    now = clock_mod.current().now()
    status = {"Last": _iso(now), "Next": _iso(now), "LastUpdated": _iso(now)}
    return TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})


def timer_past_due_from_admin_input(admin_input: str) -> bool:
    """devhost extension: an admin input `{"IsPastDue": true}` sets `past_due`; anything else means on time."""
    try:
        parsed = json.loads(admin_input) if admin_input else None
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("IsPastDue") is True
