"""HTTP API (function auth level): start a manual scan, read a scan's progress and results, an image's latest result.

Described in openapi.yaml at the repository root. Every error is JSON `{"error": "<reason>"}`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr, TypeAdapter, ValidationError, model_validator

from activities import wallclock
from activities.arm_resources import in_scanner_resource_group
from activities.exceptions_store import exceptions_view, inventory_workloads
from activities.inventory_store import table as inventory_table
from activities.inventory_store import workloads_running
from activities.notify_rescan import stored_diff
from activities.registry_auth import RegistryRefused, check_registry_addresses
from activities.results_store import get_result_history, get_scan_record
from activities.storage_clients import clients_for
from core.events import DeploymentEvent, InvalidResourceId, parse_resource_id
from core.images import InvalidImageRef, parse_image_ref
from core.naming import image_key, rescan_instance_id
from core.network_policy import DestinationRefused
from core.report import ImageResult, clip_reason
from core.results import InstanceId
from core.scan_input import scan_input_for_event, scan_input_for_image
from core.scope import exclusions_of
from core.settings import get_settings
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT_V2

START_SCAN_FUNCTION = "http_start_scan"
GET_SCAN_FUNCTION = "http_get_scan"
GET_IMAGE_FUNCTION = "http_get_image"
SCANS_ROUTE = "scans"
SCAN_ROUTE = "scans/{instanceId}"
IMAGES_ROUTE = "images"
INSTANCE_ID_PARAM = "instanceId"
REF_PARAM = "ref"
MAX_IMAGE_WORKLOADS = 50
MANUAL_CORRELATION_PREFIX = "manual-"
MAX_BODY_BYTES = 16 * 1024
JSON_CONTENT = "application/json"

bp = df.Blueprint()
_INSTANCE_ID = TypeAdapter(InstanceId)


class ScanRequest(BaseModel):
    """Body of `POST /api/scans`: exactly one of `image` and `resourceId`, optionally `force`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: StrictStr | None = None
    resourceId: StrictStr | None = None
    force: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        """openapi.yaml types every field as a non-null string or boolean: an explicit null is refused, not absent."""
        if isinstance(data, dict):
            nulls = [name for name in ("image", "resourceId", "force") if name in data and data[name] is None]
            if nulls:
                raise ValueError(f"{', '.join(nulls)}: must not be null (leave the field out instead)")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> ScanRequest:
        if (self.image is None) == (self.resourceId is None):
            raise ValueError("give exactly one of image and resourceId")
        return self


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A JSON response."""
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=JSON_CONTENT, headers=headers)


def error_response(status: int, reason: str) -> func.HttpResponse:
    """`{"error": reason}` with `status`; reasons never echo more than a clipped part of the input."""
    return json_response({"error": clip_reason(reason)}, status)


def _validation_reason(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_input=False, include_url=False)[:5]:
        where = ".".join(str(part) for part in item["loc"])
        problems.append(f"{where}: {item['msg']}" if where else item["msg"].removeprefix("Value error, "))
    return "; ".join(problems)


def parse_scan_request(body: bytes) -> ScanRequest:
    """The validated body of a manual scan; ValueError with a reason for bad input."""
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return ScanRequest.model_validate_json(body or b"null")
    except ValidationError as error:
        raise ValueError(_validation_reason(error)) from None


def scan_input_for_request(request: ScanRequest, now: datetime, nonce: str) -> tuple[str, dict[str, Any]]:
    """The instance id and orchestration input of a manual scan; ValueError with a reason for a refused target.

    An image's registry must not be an address or local name inside the app's network (`core.network_policy`)
    unless ALLOWED_PRIVATE_REGISTRIES names it: the app would send requests there.
    """
    settings = get_settings()
    options = settings.scan_options()
    if request.image is not None:
        ref = parse_image_ref(request.image)
        try:
            settings.network_policy().check_registry(ref.registry)
        except DestinationRefused as error:
            raise ValueError(f"registry refused: {error}") from None
        if (excluded := exclusions_of(settings).reason(image=ref.canonical)) is not None:
            raise ValueError(f"the image is never scanned: {excluded}")
        return rescan_instance_id(ref.canonical, nonce), scan_input_for_image(
            ref.canonical, options, force=request.force
        )
    parts = parse_resource_id(request.resourceId or "")
    event = DeploymentEvent.from_parts(parts, MANUAL_CORRELATION_PREFIX + nonce, now)
    if in_scanner_resource_group(event, settings):
        raise ValueError("the resource is in the scanner resource group, whose groups are never scanned")
    if (excluded := exclusions_of(settings).reason(resource_id=event.resource_id)) is not None:
        raise ValueError(f"the resource is never scanned: {excluded}")
    instance_id = rescan_instance_id(event.resource_id.lower(), nonce)
    return instance_id, scan_input_for_event(event, options, force=request.force)


def scan_input_from_body(body: bytes, now: datetime, nonce: str) -> tuple[str, dict[str, Any]]:
    """The instance id and orchestration input of a manual scan; raises ValueError with a reason for bad input."""
    return scan_input_for_request(parse_scan_request(body), now, nonce)


async def _check_registry_name(request: ScanRequest) -> None:
    """ValueError when the image's registry name resolves into the app's network (a DNS answer that cannot be had in
    REGISTRY_TIMEOUT_SECONDS is no refusal: digest resolution checks again when it connects).
    """
    if request.image is None:
        return
    settings = get_settings()
    registry = parse_image_ref(request.image).registry
    try:
        await asyncio.wait_for(
            asyncio.to_thread(check_registry_addresses, registry, settings.network_policy()),
            settings.registry_timeout_seconds,
        )
    except TimeoutError:
        return
    except RegistryRefused as error:
        raise ValueError(f"registry refused: {error}") from None


@bp.function_name(START_SCAN_FUNCTION)  # type: ignore[untyped-decorator]
@bp.route(route=SCANS_ROUTE, methods=["POST"], auth_level=func.AuthLevel.FUNCTION)  # type: ignore[untyped-decorator]
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def start_scan(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST /api/scans: start a scan of one image or one deployed resource; 202 with the check-status payload."""
    try:
        request = parse_scan_request(req.get_body())
        instance_id, scan_input = scan_input_for_request(request, datetime.now(UTC), uuid.uuid4().hex)
        await _check_registry_name(request)
    except (InvalidImageRef, InvalidResourceId, ValueError) as error:
        return error_response(400, str(error))
    await client.start_new(ORCHESTRATOR_SCAN_DEPLOYMENT_V2, instance_id, scan_input)
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


def _valid_instance_id(value: str) -> bool:
    try:
        _INSTANCE_ID.validate_python(value)
    except ValidationError:
        return False
    return True


def scan_view(status: df.DurableOrchestrationStatus, record: dict[str, Any] | None) -> dict[str, Any]:
    """The body of `GET /api/scans/{instanceId}`: runtime status, phase, progress (counts, first images) and results."""
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    output = status.output if isinstance(status.output, dict) else {}
    runtime = status.runtime_status.value if status.runtime_status is not None else None
    results = (record or {}).get("results") or output.get("images") or []
    return {
        "instanceId": status.instance_id,
        "runtimeStatus": runtime,
        "phase": custom.get("phase"),
        "status": (record or {}).get("status") or output.get("status"),
        "target": custom.get("target"),
        "images": custom.get("images", []),
        "imageCount": custom.get("imageCount", len(custom.get("images", []))),
        "imageStatuses": custom.get("imageStatuses", {}),
        "groups": custom.get("groups", []),
        "groupCount": custom.get("groupCount", len(custom.get("groups", []))),
        "groupStates": custom.get("groupStates", {}),
        "results": results,
        "exceptions": (record or {}).get("exceptions", {}),
        "note": custom.get("note"),
        "createdTime": status.created_time.isoformat() if status.created_time else None,
        "lastUpdatedTime": status.last_updated_time.isoformat() if status.last_updated_time else None,
    }


def _read_record(instance_id: str) -> dict[str, Any] | None:
    settings = get_settings()
    record = get_scan_record(clients_for(settings), settings, instance_id)
    if record is None:
        return None
    views = exceptions_view(settings, record.results, record.event, wallclock.now())  # suppressed by exceptions
    return record.model_dump(mode="json") | ({"exceptions": views} if views else {})


@bp.function_name(GET_SCAN_FUNCTION)  # type: ignore[untyped-decorator]
@bp.route(route=SCAN_ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)  # type: ignore[untyped-decorator]
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def get_scan(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """GET /api/scans/{instanceId}: phase, images and per-image results; 404 when unknown."""
    instance_id = req.route_params.get(INSTANCE_ID_PARAM, "")
    if not _valid_instance_id(instance_id):
        return error_response(404, "no such scan")
    status = await client.get_status(instance_id)
    if status is None or status.runtime_status is None:
        return error_response(404, "no such scan")
    record = await asyncio.to_thread(_read_record, instance_id)
    return json_response(scan_view(status, record), 200)


def _read_latest(canonical: str) -> tuple[dict[str, Any] | None, ImageResult | None, ImageResult | None]:
    """(the latest result as the API shows it, the latest, the previous result with a report)."""
    settings = get_settings()
    clients = clients_for(settings)
    result, previous = get_result_history(clients, settings, canonical)
    if result is None:
        return None, None, None
    record = get_scan_record(clients, settings, result.instance_id) if result.instance_id else None
    running = partial(inventory_workloads, settings)  # no deployment of its own: scopes match where the image runs
    views = exceptions_view(settings, [result], record.event if record else None, wallclock.now(), running)
    return result.model_dump(mode="json") | {"exceptions": views.get(result.image)}, result, previous


def _read_diff(latest: ImageResult | None, previous: ImageResult | None, workloads: list[str]) -> dict[str, Any] | None:
    diff = stored_diff(get_settings(), latest, previous, workloads, wallclock.now())
    return diff.model_dump(mode="json") | {"counts": diff.counts()} if diff is not None else None


@bp.function_name(GET_IMAGE_FUNCTION)  # type: ignore[untyped-decorator]
@bp.route(route=IMAGES_ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)  # type: ignore[untyped-decorator]
async def get_image(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/images?ref=<image ref>: the latest stored result, the previous one with a report and what changed
    between them, and the workloads running the image (bounded); 404 when neither a result nor a workload exists.
    """
    ref = req.params.get(REF_PARAM)
    if not ref:
        return error_response(400, f"query parameter {REF_PARAM} is required")
    try:
        canonical = parse_image_ref(ref).canonical
    except InvalidImageRef as error:
        return error_response(400, str(error))
    result, latest, previous = await asyncio.to_thread(_read_latest, canonical)
    workloads, more = await asyncio.to_thread(_read_workloads, canonical)
    if result is None and not workloads:
        return error_response(404, "no stored result for this image")
    diff = await asyncio.to_thread(_read_diff, latest, previous, [w["resourceId"] for w in workloads])
    exceptions = result.pop("exceptions", None) if result is not None else None  # docs/results.md
    body = {
        "image": canonical,
        "key": image_key(canonical),
        "result": result,
        "previous": previous.model_dump(mode="json") if previous is not None else None,
        "diff": diff,
        "workloads": workloads,
        "moreWorkloads": more,
        "exceptions": exceptions,
    }
    return json_response(body, 200)


def _read_workloads(canonical: str) -> tuple[list[dict[str, Any]], bool]:
    """The workloads running the image (at most MAX_IMAGE_WORKLOADS), from the inventory."""
    found, more = workloads_running(inventory_table(get_settings()), canonical, MAX_IMAGE_WORKLOADS)
    return [{"resourceId": w.resource_id, "kind": w.kind, "location": w.location} for w in found], more
