"""HTTP API of the inventory (function auth level, described in openapi.yaml):
`GET /api/inventory` (filters, pages with a continuation token) and `GET /api/inventory/{resourceId}`.

Every answer is bounded: at most MAX_PAGE_SIZE workloads a page, MAX_ROWS_READ rows read a request, each workload's
images bounded by core.workloads.MAX_IMAGES_PER_WORKLOAD. Bad input: 400 `{"error": reason}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from activities import wallclock
from activities.exceptions_store import SuppressionLens
from activities.inventory_store import SWEEPS_PARTITION, partition_of, row_key, state_of, table
from activities.results_store import get_latest_result
from activities.storage_clients import clients_for
from core.inventory_views import (
    MAX_ROWS_READ,
    BadQuery,
    InventoryQuery,
    Suppressed,
    encode_token,
    matches_severity,
    parse_query,
    parse_resource_param,
    workload_view,
)
from core.naming import image_key
from core.report import ImageResult
from core.scope import exclusions_of
from core.settings import Settings, get_settings
from core.workloads import Workload
from starters.http_api import error_response, json_response

LIST_FUNCTION = "http_list_inventory"
GET_FUNCTION = "http_get_inventory_item"
LIST_ROUTE = "inventory"
ITEM_ROUTE = "inventory/{*resourceId}"

bp = df.Blueprint()


def latest_lookup(settings: Settings) -> Callable[[str], tuple[str, ImageResult | None]]:
    """image -> (image key, latest result), each image read once per request."""
    clients = clients_for(settings)
    seen: dict[str, tuple[str, ImageResult | None]] = {}

    def latest(image: str) -> tuple[str, ImageResult | None]:
        if image not in seen:
            seen[image] = (image_key(image), get_latest_result(clients, settings, image))
        return seen[image]

    return latest


def _filter(query: InventoryQuery) -> tuple[str, dict[str, Any]]:
    parts = ["deleted eq false"]
    params: dict[str, Any] = {}
    if query.subscription:
        parts.append("PartitionKey eq @sub")
        params["sub"] = query.subscription
    else:
        parts.append("PartitionKey ne @sweeps")
        params["sweeps"] = SWEEPS_PARTITION
    if query.resource_group:
        parts.append("resource_group eq @rg")
        params["rg"] = query.resource_group.lower()
    if query.kind:
        parts.append("kind eq @kind")
        params["kind"] = query.kind
    if query.after:
        parts.append(
            "( PartitionKey gt @apk or ( PartitionKey eq @apk and RowKey gt @ark ) )"
        )  # spaces: the SDK substitutes @names between spaces
        params["apk"], params["ark"] = query.after
    return " and ".join(parts), params


def suppressed_lookup(settings: Settings) -> Suppressed:
    """(result, workload) -> what the active exceptions suppress in it; the document read once per request."""
    lens = SuppressionLens(settings, wallclock.now())
    return lambda result, resource_id: lens.view(result, [resource_id]) if lens.entries else None


def list_inventory(settings: Settings, query: InventoryQuery) -> dict[str, Any]:
    """One page of workloads matching the filters, and the token of the next page (None at the end)."""
    latest = latest_lookup(settings)
    suppressed = suppressed_lookup(settings)
    text, params = _filter(query)
    items: list[dict[str, Any]] = []
    last: tuple[str, str] | None = None
    read = 0
    more = False
    for entity in table(settings).query_entities(text, parameters=params, results_per_page=query.page_size):
        if len(items) >= query.page_size or read >= MAX_ROWS_READ:
            more = True
            break
        read += 1
        last = (str(entity["PartitionKey"]), str(entity["RowKey"]))
        state = state_of(dict(entity))
        if not isinstance(state, Workload):
            continue
        view = workload_view(state, latest, exclusions_of(settings), suppressed)
        if matches_severity(view, query.min_severity):
            items.append(view)
    token = encode_token(*last) if more and last is not None else None
    return {"items": items, "count": len(items), "continuationToken": token}


def get_workload(settings: Settings, resource_id: str) -> dict[str, Any] | None:
    client = table(settings)
    entity = next(
        iter(
            client.query_entities(
                "PartitionKey eq @pk and RowKey eq @rk",
                parameters={"pk": partition_of(resource_id), "rk": row_key(resource_id)},
            )
        ),
        None,
    )
    state = state_of(dict(entity)) if entity is not None else None
    return (
        workload_view(state, latest_lookup(settings), exclusions_of(settings), suppressed_lookup(settings))
        if isinstance(state, Workload)
        else None
    )


@bp.function_name(LIST_FUNCTION)  # type: ignore[untyped-decorator]
@bp.route(route=LIST_ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)  # type: ignore[untyped-decorator]
async def http_list_inventory(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/inventory: workloads with their images and latest results; filters and a continuation token."""
    try:
        query = parse_query(dict(req.params))
    except BadQuery as error:
        return error_response(400, str(error))
    return json_response(await asyncio.to_thread(list_inventory, get_settings(), query), 200)


@bp.function_name(GET_FUNCTION)  # type: ignore[untyped-decorator]
@bp.route(route=ITEM_ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)  # type: ignore[untyped-decorator]
async def http_get_inventory_item(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/inventory/{resourceId}: one workload (the ARM id, URL-encoded or as a path); 404 when absent."""
    try:
        parts = parse_resource_param(req.route_params.get("resourceId", ""))
    except BadQuery as error:
        return error_response(400, str(error))
    found = await asyncio.to_thread(get_workload, get_settings(), parts.resource_id)
    if found is None:
        return error_response(404, "no such workload in the inventory")
    return json_response(found, 200)
