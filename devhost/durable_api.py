"""The Durable extension's HTTP API (webhook and local RPC routes) served by aiohttp over a durable engine."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from devhost.client_binding import check_status_payload
from devhost.errors import (
    InstanceNotFoundError,
    InstanceNotRunningError,
    InvalidInstanceIdError,
    OrchestrationExistsError,
    UnknownFunctionError,
)

RUNNING_STATES = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
TERMINAL_STATES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
JSON_CONTENT_TYPE = "application/json"
RETRY_AFTER = "Retry-After"
ENTITY_DELETE_OPERATION = "delete"
EMPTY_ENTITY_KEY = "$"

_START_ROUTE = re.compile(r"^orchestrators/(?P<name>[^/]+)(?:/(?P<instance>[^/]+))?/?$")
_ENTITY_ROUTE = re.compile(r"^entities/(?P<name>[^/]+)(?:/(?P<key>[^/]+))?/?$")
_INSTANCES_ROUTE = re.compile(r"^instances/?(?:(?P<instance>[^/]+)(?:/(?P<operation>[^/]+))?)?/?$")
_RAISE_EVENT_ROUTE = re.compile(r"^instances/(?P<instance>[^/]+)/raiseEvent/(?P<event>[^/]+)/?$")


class DurableEngineAPI(Protocol):
    """The part of `devhost.engine.DurableEngine` the HTTP API calls (see docs/devhost.md)."""

    def start_new(self, name: str, instance_id: str | None = None, input: Any = None) -> str: ...

    def get_status(
        self,
        instance_id: str,
        *,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = True,
    ) -> dict[str, Any] | None: ...

    def list_statuses(
        self,
        *,
        runtime_status: list[str] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> list[dict[str, Any]]: ...

    def raise_event(self, instance_id: str, event_name: str, data: Any) -> None: ...

    def terminate(self, instance_id: str, reason: str) -> None: ...

    def purge(self, instance_id: str) -> bool: ...

    def signal_entity(self, name: str, key: str, operation: str, input: Any = None) -> None: ...

    def read_entity_state(self, name: str, key: str) -> tuple[bool, Any]: ...

    def run_until_idle(self, timeout: float | None = None) -> None: ...


def json_response(status: int, payload: Any = None, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response; `payload` None with a non-2xx status gives an empty body, as the extension does."""
    body = b"" if payload is None else json.dumps(payload).encode()
    content_type = JSON_CONTENT_TYPE if payload is not None else None
    return web.Response(status=status, body=body, content_type=content_type, headers=headers)


def error_response(status: int, message: str, exception: BaseException | None = None) -> web.Response:
    """An ASP.NET `HttpError`-shaped body; the SDK reads `ExceptionMessage` on a failed start."""
    payload: dict[str, str] = {"Message": message}
    if exception is not None:
        payload["ExceptionMessage"] = str(exception)
        payload["ExceptionType"] = type(exception).__name__
    return json_response(status, payload)


def python_worker_value(parsed: Any) -> Any:
    """The value `context.get_input()` returns in a Python orchestrator or entity for a posted JSON body.

    The Python SDK JSON-encodes inputs before posting them (`json=df_dumps(value)`) and the Python worker decodes
    them again, so a posted JSON string that itself holds JSON is unwrapped once more; a posted object stays as it is.
    """
    if isinstance(parsed, str):
        try:
            return json.loads(parsed)
        except ValueError:
            return parsed
    return parsed


def _query_bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    value = query.get(name)
    if value is None or value.lower() not in ("true", "false"):
        return default
    return value.lower() == "true"


def _query_datetime(query: Mapping[str, str], name: str) -> datetime | None:
    value = query.get(name)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace(" ", "+"))
    except ValueError:
        return None


def _runtime_status_filter(query: Mapping[str, str]) -> list[str] | None:
    raw = query.get("runtimeStatus")
    if not raw:
        return None
    known = RUNNING_STATES | TERMINAL_STATES
    wanted = [part.strip() for part in raw.split(",") if part.strip() in known]
    return wanted or None


@dataclass
class DurableHttpApi:
    """Serves `/runtime/webhooks/durabletask/*` and the SDK's `rpcBaseUrl` routes with the same handler.

    The engine takes Python values: what `get_input()` returns (start inputs, entity inputs) and what the
    orchestrator's event task receives (event data), given the body the extension would have received.
    """

    engine: DurableEngineAPI
    task_hub: str
    orchestrator_exists: Callable[[str], bool]

    async def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(func, *args, **kwargs)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route one request under either prefix; engine errors map to the extension's status codes."""
        try:
            return await self._route(request)
        except (UnknownFunctionError, InvalidInstanceIdError) as exc:
            return error_response(400, "One or more of the arguments submitted is incorrect", exc)
        except OrchestrationExistsError as exc:
            return error_response(409, str(exc))
        except InstanceNotFoundError:
            return json_response(404)
        except InstanceNotRunningError:
            return json_response(410)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info.get("tail", "").strip("/")
        if match := _START_ROUTE.match(path):
            if request.method != "POST":
                return json_response(404)
            return await self._start(request, match["name"], match["instance"])
        if match := _ENTITY_ROUTE.match(path):
            return await self._entity(request, match["name"], match["key"])
        if match := _RAISE_EVENT_ROUTE.match(path):
            if request.method != "POST":
                return json_response(404)
            return await self._raise_event(request, match["instance"], match["event"])
        if match := _INSTANCES_ROUTE.match(path):
            return await self._instances(request, match["instance"], match["operation"])
        return json_response(404)

    async def _start(self, request: web.Request, name: str, instance_id: str | None) -> web.Response:
        body = await request.text()
        try:
            payload = python_worker_value(json.loads(body)) if body else None
        except ValueError as exc:
            return error_response(400, "Invalid JSON content", exc)
        if not self.orchestrator_exists(name):
            unknown = ValueError(f"The function '{name}' doesn't exist or is not an orchestrator function.")
            return error_response(400, "One or more of the arguments submitted is incorrect", unknown)
        if instance_id:
            existing = await self._call(self.engine.get_status, instance_id, show_input=False)
            if existing is not None and existing.get("runtimeStatus") in RUNNING_STATES:
                return error_response(409, f"An Orchestration instance with the ID '{instance_id}' already exists.")
        new_id = await self._call(self.engine.start_new, name, instance_id or None, payload)
        origin = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        links = check_status_payload(origin, new_id, self.task_hub)
        headers = {"Location": links["statusQueryGetUri"], RETRY_AFTER: "10"}
        return json_response(202, links, headers)

    async def _instances(self, request: web.Request, instance_id: str | None, operation: str | None) -> web.Response:
        query = request.query
        if instance_id is None:
            if request.method == "GET":
                return await self._list(query)
            if request.method == "DELETE":
                return await self._purge_by_filter(query)
            return json_response(404)
        if operation is None:
            if request.method == "GET":
                return await self._status(request, instance_id)
            if request.method == "DELETE":
                return await self._purge(instance_id)
            return json_response(404)
        if request.method != "POST":
            return json_response(404)
        if operation.lower() == "terminate":
            return await self._terminate(instance_id, query.get("reason", ""))
        return error_response(501, f"devhost does not implement the '{operation}' operation.")

    async def _status(self, request: web.Request, instance_id: str) -> web.Response:
        query = request.query
        status = await self._call(
            self.engine.get_status,
            instance_id,
            show_history=_query_bool(query, "showHistory", False),
            show_history_output=_query_bool(query, "showHistoryOutput", False),
            show_input=_query_bool(query, "showInput", True),
        )
        if status is None:
            return json_response(404)
        runtime_status = status.get("runtimeStatus")
        payload = {key: value for key, value in status.items() if key != "historyEvents" or value is not None}
        if runtime_status in RUNNING_STATES:
            return json_response(202, payload, {"Location": str(request.url), RETRY_AFTER: "5"})
        if runtime_status == "Failed" and _query_bool(query, "returnInternalServerErrorOnFailure", False):
            return json_response(500, payload)
        return json_response(200, payload)

    async def _list(self, query: Mapping[str, str]) -> web.Response:
        statuses: list[dict[str, Any]] = await self._call(
            self.engine.list_statuses,
            runtime_status=_runtime_status_filter(query),
            created_from=_query_datetime(query, "createdTimeFrom"),
            created_to=_query_datetime(query, "createdTimeTo"),
        )
        prefix = query.get("instanceIdPrefix")
        if prefix:
            statuses = [status for status in statuses if str(status.get("instanceId", "")).startswith(prefix)]
        if not _query_bool(query, "showInput", True):
            statuses = [{**status, "input": None} for status in statuses]
        return json_response(200, statuses)

    async def _purge(self, instance_id: str) -> web.Response:
        status = await self._call(self.engine.get_status, instance_id, show_input=False)
        if status is None:
            return json_response(404)
        runtime_status = status.get("runtimeStatus")
        if runtime_status not in TERMINAL_STATES:
            message = (
                "Only orchestrations in a terminal state can be purged, but the orchestration with instance ID "
                f"{instance_id} has status {runtime_status}"
            )
            return json_response(412, message)
        deleted = await self._call(self.engine.purge, instance_id)
        return json_response(200, {"instancesDeleted": 1 if deleted else 0})

    async def _purge_by_filter(self, query: Mapping[str, str]) -> web.Response:
        created_from = _query_datetime(query, "createdTimeFrom")
        if created_from is None:
            return json_response(400, "Please provide value for 'createdTimeFrom' parameter.")
        runtime_status = _runtime_status_filter(query) or sorted(TERMINAL_STATES)
        statuses: list[dict[str, Any]] = await self._call(
            self.engine.list_statuses,
            runtime_status=[state for state in runtime_status if state in TERMINAL_STATES],
            created_from=created_from,
            created_to=_query_datetime(query, "createdTimeTo"),
        )
        deleted = 0
        for status in statuses:
            if await self._call(self.engine.purge, str(status["instanceId"])):
                deleted += 1
        if deleted == 0:
            return json_response(404)
        return json_response(200, {"instancesDeleted": deleted})

    async def _terminate(self, instance_id: str, reason: str) -> web.Response:
        status = await self._call(self.engine.get_status, instance_id, show_input=False)
        if status is None:
            return json_response(404)
        if status.get("runtimeStatus") in TERMINAL_STATES:
            return json_response(410)
        await self._call(self.engine.terminate, instance_id, reason)
        return json_response(202)

    async def _raise_event(self, request: web.Request, instance_id: str, event_name: str) -> web.Response:
        status = await self._call(self.engine.get_status, instance_id, show_input=False)
        if status is None:
            return json_response(404)
        if status.get("runtimeStatus") in TERMINAL_STATES:
            return json_response(410)
        if request.content_type.lower() != JSON_CONTENT_TYPE:
            return error_response(400, "Only application/json request content is supported")
        body = await request.text()
        try:
            # Decoded once, as the extension does: for the Python SDK's `raise_event` the orchestrator receives
            # the JSON text of the data, as on Azure (Azure/azure-functions-durable-python#295).
            data = json.loads(body) if body else None
        except ValueError as exc:
            return error_response(400, "Invalid JSON content", exc)
        await self._call(self.engine.raise_event, instance_id, event_name, data)
        return json_response(202)

    async def _entity(self, request: web.Request, name: str, key: str | None) -> web.Response:
        if request.method == "GET":
            if not key:
                return error_response(501, "devhost does not implement listing entities.")
            entity_key = "" if key == EMPTY_ENTITY_KEY else key
            exists, state = await self._call(self.engine.read_entity_state, name, entity_key)
            return json_response(200, state) if exists else json_response(404)
        if request.method not in ("POST", "DELETE"):
            return json_response(404)
        operation = ENTITY_DELETE_OPERATION if request.method == "DELETE" else request.query.get("op", "")
        body = await request.text()
        operation_input: Any = None
        if body:
            if request.content_type.lower() == JSON_CONTENT_TYPE:
                try:
                    operation_input = python_worker_value(json.loads(body))
                except ValueError as exc:
                    return error_response(400, f"Could not parse JSON content: {exc}")
            else:
                operation_input = body
        await self._call(self.engine.signal_entity, name, key or "", operation, operation_input)
        return json_response(202)
