"""Event Grid triggers on devhost: the host's `/runtime/webhooks/eventgrid` endpoint and an in-process delivery API.

As the Functions host's Event Grid extension does, an Event Grid delivery (a JSON array of events, Event Grid schema)
invokes the function once per event, in array order, with an `azure.functions.EventGridEvent` decoded by the
worker's own `EventGridEventInConverter` from the event's JSON (trigger data type `json`). The answer is 202 when every
invocation succeeded and 500 when any failed (Event Grid then redelivers the whole array per its retry policy).
Header `aeg-event-type: SubscriptionValidation` is answered with `{"validationResponse": <data.validationCode>}`
(the validation handshake); `Notification` delivers. Docs: "Azure Event Grid trigger for Azure Functions" and
"Receive events from Azure Event Grid to an HTTP endpoint" (learn.microsoft.com). **No system key (`code`) is checked
locally**, as for HTTP triggers' `authLevel`. devhost does not redeliver: a caller that wants Event Grid's retries
(devhost.armsim.blob_events does not) must repeat the delivery itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import azure.functions as func
from aiohttp import web
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from devhost.triggers import FunctionSpec, invoke

EVENT_GRID_PATH = "/runtime/webhooks/eventgrid"
EVENT_TYPE_HEADER = "aeg-event-type"
NOTIFICATION = "Notification"
SUBSCRIPTION_VALIDATION = "SubscriptionValidation"
LOG = logging.getLogger("devhost.event_grid")


def event_grid_value(event: Mapping[str, Any]) -> func.EventGridEvent:
    """The `EventGridEvent` the worker builds from one event of the delivered array."""
    value = EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
    assert isinstance(value, func.EventGridEvent)
    return value


@dataclass(frozen=True)
class Delivery:
    """The outcome of one delivered array: per event, None (succeeded) or the error text."""

    function: str
    errors: tuple[str | None, ...]

    @property
    def succeeded(self) -> bool:
        return all(error is None for error in self.errors)


class EventGridWebhook:
    """Delivers Event Grid arrays to the app's Event Grid trigger functions (by function name)."""

    def __init__(self, specs: Mapping[str, FunctionSpec], client_binding: Callable[[], str]) -> None:
        self._specs = {name.lower(): spec for name, spec in specs.items()}
        self._client_binding = client_binding

    def knows(self, function_name: str) -> bool:
        return function_name.lower() in self._specs

    async def deliver(self, function_name: str, events: Sequence[Mapping[str, Any]]) -> Delivery:
        """Invoke the function once per event, in order; a failure is logged and recorded, the rest still run."""
        spec = self._specs.get(function_name.lower())
        if spec is None:
            raise KeyError(f"no Event Grid trigger function named '{function_name}'")
        errors: list[str | None] = []
        for event in events:
            try:
                await invoke(spec, event_grid_value(event), self._client_binding())
            except Exception as exc:
                LOG.exception("function %s failed on event %s", spec.name, str(event.get("id"))[:80])
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            errors.append(None)
        return Delivery(spec.name, tuple(errors))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """`POST /runtime/webhooks/eventgrid?functionName=<name>` with an Event Grid array."""
        name = request.query.get("functionName", "")
        if not self.knows(name):
            return web.json_response({"error": f"no Event Grid trigger function named '{name[:80]}'"}, status=404)
        try:
            events = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "the body must be a JSON array of events"}, status=400)
        if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
            return web.json_response({"error": "the body must be a JSON array of events"}, status=400)
        kind = request.headers.get(EVENT_TYPE_HEADER, "")
        if kind == SUBSCRIPTION_VALIDATION:
            code = (events[0].get("data") or {}).get("validationCode") if events else None
            if not isinstance(code, str):
                return web.json_response({"error": "no data.validationCode in the validation event"}, status=400)
            return web.json_response({"validationResponse": code})
        if kind != NOTIFICATION:
            return web.json_response({"error": f"header {EVENT_TYPE_HEADER} must be {NOTIFICATION}"}, status=400)
        delivery = await self.deliver(name, events)
        return web.Response(status=202 if delivery.succeeded else 500)


class HostsEventGrid(Protocol):
    """What `deliver` needs of a `devhost.server.DevHostServer`."""

    event_grid: EventGridWebhook

    def run_coroutine(self, coroutine: Awaitable[Any], timeout: float | None = None) -> Any: ...


def deliver(
    server: HostsEventGrid, function_name: str, events: Sequence[Mapping[str, Any]], timeout: float = 60
) -> Delivery:
    """In process, as the webhook does: invoke `function_name` once per event on the server's worker loop; waits."""
    result = server.run_coroutine(server.event_grid.deliver(function_name, events), timeout)
    assert isinstance(result, Delivery)
    return result
