"""devhost's HTTP server: HTTP triggers, the Durable HTTP API, the admin endpoint; `serve` and `DevHostServer`."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from aiohttp import web
from azure.durable_functions.models.utils import http_utils
from pydantic import BaseModel, ValidationError

from devhost.client_binding import RPC_PATH, WEBHOOK_PATH, client_binding
from devhost.clock import RealClock, VirtualClock
from devhost.core import EngineCore
from devhost.durable_api import DurableEngineAPI, DurableHttpApi, error_response, json_response
from devhost.event_grid import EVENT_GRID_PATH, EventGridWebhook
from devhost.http_trigger import DEFAULT_ROUTE_PREFIX, HttpRouter, to_aiohttp_response, to_functions_request
from devhost.invoke import ActivityClient
from devhost.triggers import (
    EVENT_GRID_TRIGGER,
    EVENT_HUB_TRIGGER,
    HTTP_TRIGGER,
    TIMER_TRIGGER,
    EventHubSource,
    FunctionSpec,
    invoke,
    invoke_with_retry,
    specs_by_type,
    specs_from_index,
    timer_past_due_from_admin_input,
    timer_value,
)

ACCESS_LOG = logging.getLogger("devhost.access")
LOG = logging.getLogger("devhost.server")
MAX_REQUEST_BYTES = 100 * 1024 * 1024
"""The Functions host's default limit on an HTTP request body (maxRequestBodySize, 100 MB)."""
ORCHESTRATION_TRIGGER = "orchestrationTrigger"
INVOCATION_HEADER = "x-devhost-invocation-id"
DEFAULT_TASK_HUB = "DevHostHub"
DEFAULT_IDLE_TIMEOUT = 60.0
RECENT_INVOCATIONS = 200
# `serve --clock virtual`: wall seconds a client gets to raise an awaited event before virtual time jumps to a timer.
DEFAULT_EVENT_GRACE = 5.0


class ManagedEngine(DurableEngineAPI, Protocol):
    """A durable engine with a background worker (`devhost.engine.DurableEngine`): `close` stops and closes it."""

    def start(self) -> None: ...

    def close(self) -> None: ...


class AdminInvokeRequest(BaseModel):
    """Body of `POST /admin/functions/{name}`, as the Functions host accepts it."""

    input: str | None = None


@dataclass
class InvocationRecord:
    """The outcome of one admin-triggered invocation (devhost-only, from `GET /admin/devhost/invocations`)."""

    id: str
    function: str
    status: str = "running"
    attempts: int = 0
    error: str | None = None


def _orchestrator_lookup(specs: Sequence[FunctionSpec]) -> Callable[[str], bool]:
    """Whether an orchestrator exists: by the trigger's `orchestration` rename or function name, ignoring case."""
    orchestrators = [spec for spec in specs if spec.trigger_type == ORCHESTRATION_TRIGGER]
    names = frozenset(str(spec.trigger.get("orchestration") or spec.name).lower() for spec in orchestrators)

    def exists(name: str) -> bool:
        return name.lower() in names

    return exists


class DevHostServer:
    """An in-process devhost: aiohttp on its own thread and event loop (the worker's loop), plus the engine.

    `start()` returns once the port is bound; `base_url` is then `http://host:port`. Port 0 picks a free port.
    """

    def __init__(
        self,
        specs: Sequence[FunctionSpec],
        engine: ManagedEngine,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_hub: str = DEFAULT_TASK_HUB,
        route_prefix: str = DEFAULT_ROUTE_PREFIX,
        manage_engine: bool = True,
        orchestrator_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.task_hub = task_hub
        self._host = host
        self._port = port
        self._route_prefix = route_prefix.strip("/")
        self._manage_engine = manage_engine
        self._router = HttpRouter(specs_by_type(specs, HTTP_TRIGGER).values())
        self._admin_specs = {**specs_by_type(specs, EVENT_HUB_TRIGGER), **specs_by_type(specs, TIMER_TRIGGER)}
        exists = orchestrator_exists or _orchestrator_lookup(specs)
        self._durable_api = DurableHttpApi(engine, task_hub, exists)
        self._event_hub = EventHubSource()
        self.event_grid = EventGridWebhook(specs_by_type(specs, EVENT_GRID_TRIGGER), self.client_binding_for)
        self._inflight: set[asyncio.Task[None]] = set()
        self._records: deque[InvocationRecord] = deque(maxlen=RECENT_INVOCATIONS)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> DevHostServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        if isinstance(self.engine, EngineCore) and self.engine.activity_client is None:
            self.engine.activity_client = ActivityClient(binding=self.client_binding_for, run=self.run_coroutine)
        if self._manage_engine:
            self.engine.start()
        self._thread = threading.Thread(target=run, name="devhost-http", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        LOG.info(json.dumps({"event": "listening", "url": self.base_url, "taskHub": self.task_hub}))
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop = None
        self._thread = None
        if self._manage_engine:
            self.engine.close()

    def __enter__(self) -> DevHostServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _open(self) -> None:
        app = web.Application(middlewares=[_access_log], client_max_size=MAX_REQUEST_BYTES)
        app.router.add_route("*", WEBHOOK_PATH + "/{tail:.*}", self._durable_api.handle)
        app.router.add_route("*", RPC_PATH + "{tail:.*}", self._durable_api.handle)
        app.router.add_post(EVENT_GRID_PATH, self.event_grid.handle)
        app.router.add_post("/admin/functions/{name}", self._admin_invoke)
        app.router.add_post("/admin/devhost/idle", self._admin_idle)
        app.router.add_get("/admin/devhost/invocations", self._admin_invocations)
        app.router.add_route("*", f"/{self._route_prefix}/{{tail:.*}}", self._http_trigger)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        connect_host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        self.base_url = f"http://{connect_host}:{bound_port}"

    async def _close(self) -> None:
        for task in list(self._inflight):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        # The SDK keeps one aiohttp session per process, bound to this loop: close it so that a later
        # devhost (a new loop) gets a fresh one, as a restarted worker would.
        await http_utils._close_session()
        http_utils._session_lock = asyncio.Lock()

    # -- helpers ---------------------------------------------------------------------------------------------
    def client_binding_for(self) -> str:
        """The durable client binding string pointing at this server's own listener.

        Never from a request's `Host` (a forged one would receive orchestration inputs and status queries), as the
        extension's `rpcBaseUrl` is its own listener; the SDK rewrites the links it returns (get_client_response_links).
        """
        return client_binding(self.base_url, self.task_hub)

    def run_coroutine(self, coroutine: Awaitable[Any], timeout: float | None = None) -> Any:
        """Run a coroutine on the server's loop (the worker loop) from another thread and wait for it."""
        if self._loop is None:
            raise RuntimeError("devhost server is not running")
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coroutine), self._loop)
        return future.result(timeout)

    def wait_idle(self, timeout: float = DEFAULT_IDLE_TIMEOUT, *, engine: bool = True) -> list[InvocationRecord]:
        """Wait for admin-triggered invocations to finish, then (`engine`) for the engine to be idle; their records."""
        return list(self.run_coroutine(self._wait_idle(timeout, engine), timeout + 5))

    async def _wait_idle(self, timeout: float, engine: bool = True) -> list[InvocationRecord]:
        deadline = time.monotonic() + timeout
        while self._inflight:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("admin-triggered invocations still running")
            await asyncio.wait(set(self._inflight), timeout=remaining)
        if engine:  # False: the engine does not move (a test that looks at state between steps)
            await asyncio.to_thread(self.engine.run_until_idle, max(0.0, deadline - time.monotonic()))
        return list(self._records)

    # -- handlers --------------------------------------------------------------------------------------------
    async def _http_trigger(self, request: web.Request) -> web.StreamResponse:
        found = self._router.resolve(request.method, request.match_info["tail"])
        if found is None:
            return web.Response(status=404)
        spec, route_params = found
        try:
            functions_request = await to_functions_request(request, route_params)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"request body over {MAX_REQUEST_BYTES} bytes"}, status=413)
        try:
            result = await invoke(spec, functions_request, self.client_binding_for())
            return to_aiohttp_response(result)
        except Exception:
            LOG.exception("function %s failed", spec.name)
            return web.Response(status=500)

    async def _admin_invoke(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        spec = self._admin_specs.get(name)
        if spec is None:
            return web.Response(status=404)
        try:
            body = AdminInvokeRequest.model_validate_json(await request.read() or b"{}")
        except ValidationError as exc:
            return error_response(400, "The body must be a JSON object with a string 'input'.", exc)
        admin_input = body.input or ""
        try:
            make_value = self._trigger_value_factory(spec, admin_input)
        except ValueError as exc:
            return error_response(400, str(exc), exc)
        record = InvocationRecord(id=str(uuid.uuid4()), function=name)
        self._records.append(record)
        task = asyncio.get_running_loop().create_task(self._run_invocation(spec, make_value, record))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return web.Response(status=202, headers={INVOCATION_HEADER: record.id})

    def _trigger_value_factory(self, spec: FunctionSpec, admin_input: str) -> Callable[[], Any]:
        if spec.trigger_type == TIMER_TRIGGER:
            past_due = timer_past_due_from_admin_input(admin_input)
            return lambda: timer_value(past_due)
        bodies = self._event_hub.bodies_from_admin_input(spec, admin_input)
        return lambda: self._event_hub.trigger_value(spec, bodies)

    async def _run_invocation(
        self, spec: FunctionSpec, make_value: Callable[[], Any], record: InvocationRecord
    ) -> None:
        attempts = [0]

        def counted() -> Any:
            attempts[0] += 1
            record.attempts = attempts[0]
            return make_value()

        try:
            await invoke_with_retry(spec, counted, self.client_binding_for())
            record.status = "succeeded"
        except Exception as exc:
            record.status = "failed"
            record.error = f"{type(exc).__name__}: {exc}"
            LOG.exception("function %s failed after %d attempt(s)", spec.name, record.attempts)

    async def _admin_idle(self, request: web.Request) -> web.StreamResponse:
        try:
            timeout = float(request.query.get("timeout", DEFAULT_IDLE_TIMEOUT))
        except ValueError:
            return error_response(400, "timeout must be a number of seconds")
        try:
            records = await self._wait_idle(timeout)
        except TimeoutError as exc:
            return error_response(504, str(exc))
        return json_response(200, {"idle": True, "invocations": [asdict(record) for record in records]})

    async def _admin_invocations(self, request: web.Request) -> web.StreamResponse:
        return json_response(200, [asdict(record) for record in self._records])


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


@web.middleware
async def _access_log(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    """One JSON line per request on stderr: method, path (never the query string, which may carry keys), status."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        line = {"event": "http", "method": request.method, "path": request.path, "status": status, "ms": elapsed_ms}
        ACCESS_LOG.info(json.dumps(line))


def configure_logging() -> None:
    """Plain message lines on stderr (the access log lines are JSON) unless logging is already configured."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")


CLOCK_MODES = ("real", "virtual")


def build_server(
    app_spec: str,
    *,
    host: str = "127.0.0.1",
    port: int = 7071,
    clock_mode: str = "real",
    store_path: str | None = None,
    task_hub: str = DEFAULT_TASK_HUB,
    event_grace: float = DEFAULT_EVENT_GRACE,
) -> DevHostServer:
    """Load the app, build its engine (installing the clock) and the server; nothing runs until `start()`.

    With the virtual clock, `event_grace` is how long (wall seconds, after the last work) the engine waits before
    jumping to a timer while an instance waits for an external event; 0 jumps at once.
    """
    from devhost.engine import DurableEngine
    from devhost.functions import load_app

    if clock_mode not in CLOCK_MODES:
        raise ValueError(f"clock_mode must be one of {CLOCK_MODES}, not {clock_mode!r}")
    index = load_app(app_spec)
    clock = VirtualClock() if clock_mode == "virtual" else RealClock()
    grace = event_grace if clock_mode == "virtual" else 0.0
    engine = DurableEngine(index, store_path=store_path, clock=clock, task_hub=task_hub, event_grace=grace)
    return DevHostServer(
        specs_from_index(index),
        engine,
        host=host,
        port=port,
        task_hub=task_hub,
        orchestrator_exists=lambda name: index.orchestrator(name) is not None,
    )


def serve(
    app_spec: str,
    host: str = "127.0.0.1",
    port: int = 7071,
    clock_mode: str = "real",
    store_path: str | None = None,
    *,
    event_grace: float = DEFAULT_EVENT_GRACE,
) -> None:
    """Host the app at `app_spec` until SIGINT/SIGTERM: `python -m devhost serve` calls this."""
    configure_logging()
    server = build_server(
        app_spec, host=host, port=port, clock_mode=clock_mode, store_path=store_path, event_grace=event_grace
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    print(f"devhost listening on {server.base_url}", file=sys.stderr, flush=True)
    try:
        stopping.wait()
    finally:
        server.stop()
