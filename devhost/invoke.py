"""Invoke orchestrator, activity and entity functions as the Python worker does (same converters, same payloads)."""

from __future__ import annotations

import asyncio
import inspect
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.functions import _durable_functions as durable_payloads
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devhost.functions import FunctionEntry

OUT_OF_PROC_DATA_LABEL = "\n\n$OutOfProcData$:"
JSON_DATUM = "json"


@dataclass(frozen=True)
class OrchestratorOutcome:
    """The orchestrator's answer for one episode: the worker's JSON state, or a crash with no state."""

    state: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class ActivityOutcome:
    """An activity's result (JSON text) or its failure (reason and details, as the extension records them)."""

    result_json: str | None = None
    failed: bool = False
    reason: str = ""
    details: str | None = None


def run_orchestrator(entry: FunctionEntry, context_json: str) -> OrchestratorOutcome:
    """Call the DFApp-wrapped orchestrator handle with the trigger payload; parse the state it returns or raises."""
    try:
        state_json = entry.callable(durable_payloads.OrchestrationContext(context_json))
    except Exception as exc:  # the SDK raises with the state appended after a label, as the extension expects
        message = str(exc)
        if OUT_OF_PROC_DATA_LABEL in message:
            state = json.loads(message.split(OUT_OF_PROC_DATA_LABEL, 1)[1])
            return OrchestratorOutcome(state, state.get("error") or message.split(OUT_OF_PROC_DATA_LABEL, 1)[0])
        return OrchestratorOutcome({}, message or type(exc).__name__)
    return OrchestratorOutcome(json.loads(state_json), None)


def _failure(function_kind: str, name: str, exc: BaseException) -> ActivityOutcome:
    summary = f"{type(exc).__name__}: {exc}"
    frames = exc.__traceback__.tb_next if exc.__traceback__ else None  # skip devhost's own frame
    details = "".join(traceback.format_exception(type(exc), exc, frames))
    return ActivityOutcome(failed=True, reason=f"{function_kind} function '{name}' failed: {summary}", details=details)


def activity_failure(name: str, exc: BaseException) -> ActivityOutcome:
    """The TaskFailed reason and details for an activity that raised."""
    return _failure("Activity", name, exc)


@dataclass(frozen=True)
class ActivityClient:
    """How an activity with a durable client input binding gets one: the binding string of the server, and the
    server's loop to run the coroutine on (the SDK's HTTP session belongs to that loop).
    """

    binding: Callable[[], str]
    run: Callable[[Any], Any]


def run_activity(entry: FunctionEntry, input_json: str | None, client: ActivityClient | None = None) -> ActivityOutcome:
    """Decode the input and encode the result with the worker's ActivityTriggerConverter; exceptions fail the task.

    An activity with a `durableClient` input binding gets the binding string (as the extension passes it) and, when
    it is a coroutine, runs on the server's loop; without a server it fails like a missing binding would.
    """
    try:
        value = ActivityTriggerConverter.decode(meta.Datum(input_json, JSON_DATUM), trigger_metadata=None)
        kwargs: dict[str, Any] = {entry.trigger_parameter: value}
        if entry.client_parameter is not None:
            if client is None:
                raise RuntimeError(f"activity {entry.durable_name} needs a durable client and devhost has no server")
            kwargs[entry.client_parameter] = client.binding()
        result = entry.callable(**kwargs)
        if inspect.isawaitable(result):
            result = client.run(result) if client is not None else asyncio.run(_await(result))
        datum = ActivityTriggerConverter.encode(result, expected_type=None)
    except Exception as exc:
        return _failure("Activity", entry.durable_name, exc)
    return ActivityOutcome(result_json=str(datum.value))


async def _await(awaitable: Any) -> Any:
    return await awaitable


def missing_function(kind: str, name: str) -> ActivityOutcome:
    """The failure the extension reports for a function name that is not registered."""
    return ActivityOutcome(
        failed=True,
        reason=f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function.",
        details=None,
    )


def run_entity_batch(entry: FunctionEntry, payload: dict[str, Any]) -> dict[str, Any]:
    """Run one batch through the DFApp-wrapped entity handle; returns the entity protocol output."""
    output = entry.callable(durable_payloads.EntityContext(json.dumps(payload)))
    parsed: dict[str, Any] = json.loads(output)
    return parsed
