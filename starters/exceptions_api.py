"""Exceptions: `GET`/`PUT /api/exceptions` (admin auth level: the master key) and the `exceptions_expiry` timer.

The document and its rules: core/exceptions_doc.py, docs/results.md ("Exceptions"). A PUT carries the whole
document with the `version` it replaces: 200 with the stored document (the next version), 400 with the reason (the
entry index) for a bad one, 409 when the version is not the current one. Every accepted change is audited
(activities/exceptions_store.py): who (`X-QScan-Actor`, else App Service's `X-MS-CLIENT-PRINCIPAL-NAME`, else
"admin-key"), when, before and after. The timer (EXCEPTIONS_SCHEDULE, read at indexing) alerts what expired
exceptions no longer cover (activities/exceptions_expiry.py).
"""

from __future__ import annotations

import asyncio
import json
import logging

import azure.durable_functions as df
import azure.functions as func

from activities import wallclock
from activities.exceptions_expiry import reevaluate_expired
from activities.exceptions_store import DEFAULT_ACTOR, ExceptionsConflict, ExceptionStore, as_json
from core.exceptions_doc import MAX_DOCUMENT_BYTES, InvalidExceptions
from core.report import clip_reason
from core.settings import get_settings
from core.trigger_bindings import load_exceptions_binding

logger = logging.getLogger(__name__)

GET_EXCEPTIONS_FUNCTION = "http_get_exceptions"
PUT_EXCEPTIONS_FUNCTION = "http_put_exceptions"
EXCEPTIONS_EXPIRY_FUNCTION = "exceptions_expiry"
EXCEPTIONS_ROUTE = "exceptions"
ACTOR_HEADERS = ("X-QScan-Actor", "X-MS-CLIENT-PRINCIPAL-NAME")
MAX_ACTOR_CHARS = 256
AUDIT_LIMIT = 20

bp = df.Blueprint()


def _json(body: object, status: int) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def _error(status: int, reason: str) -> func.HttpResponse:
    return _json({"error": clip_reason(reason)}, status)


def actor_of(headers: object) -> str:
    """Who made the change: the first actor header present (printable, clipped), else "admin-key"."""
    get = getattr(headers, "get", None)
    for name in ACTOR_HEADERS:
        value = get(name) if get else None
        if value and value.strip():
            cleaned = "".join(c if c.isprintable() else " " for c in value.strip())
            return cleaned[:MAX_ACTOR_CHARS]
    return DEFAULT_ACTOR


def _get() -> dict[str, object]:
    store = ExceptionStore(get_settings())
    return as_json(store.load()) | {"audit": store.audit_rows(AUDIT_LIMIT)}


@bp.function_name(GET_EXCEPTIONS_FUNCTION)  # type: ignore[untyped-decorator]
@bp.route(route=EXCEPTIONS_ROUTE, methods=["GET"], auth_level=func.AuthLevel.ADMIN)  # type: ignore[untyped-decorator]
async def get_exceptions(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/exceptions: the current document (with its version) and the latest audited changes."""
    try:
        body = await asyncio.to_thread(_get)
    except InvalidExceptions as error:
        return _error(500, str(error))
    return _json(body, 200)


def put_document(body: bytes, actor: str) -> tuple[int, dict[str, object]]:
    """(status, body) of a PUT: 200 and the stored document, 400 or 409 with the reason."""
    if len(body) > MAX_DOCUMENT_BYTES:
        return 400, {"error": f"body is larger than {MAX_DOCUMENT_BYTES} bytes"}
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return 400, {"error": "body is not JSON"}
    if isinstance(data, dict) and "version" not in data:
        return 400, {"error": "version: required (the version this document replaces; 0 for the first)"}
    try:
        document = ExceptionStore(get_settings()).put(data, actor, wallclock.now())
    except InvalidExceptions as error:
        return 400, {"error": clip_reason(str(error))}
    except ExceptionsConflict as error:
        return 409, {"error": str(error)}
    return 200, as_json(document)


@bp.function_name(PUT_EXCEPTIONS_FUNCTION)  # type: ignore[untyped-decorator]
@bp.route(route=EXCEPTIONS_ROUTE, methods=["PUT"], auth_level=func.AuthLevel.ADMIN)  # type: ignore[untyped-decorator]
async def put_exceptions(req: func.HttpRequest) -> func.HttpResponse:
    """PUT /api/exceptions: replace the document (see the module docstring)."""
    status, body = await asyncio.to_thread(put_document, req.get_body(), actor_of(req.headers))
    return _json(body, status)


@bp.function_name(EXCEPTIONS_EXPIRY_FUNCTION)  # type: ignore[untyped-decorator]
@bp.timer_trigger(arg_name="timer", schedule=load_exceptions_binding().exceptions_schedule, run_on_startup=False)  # type: ignore[untyped-decorator]
def exceptions_expiry(timer: func.TimerRequest) -> None:
    """Re-evaluate the stored results that exceptions expired since the last run covered."""
    totals = reevaluate_expired(get_settings())
    logger.info("exceptions expiry: %s", totals)
