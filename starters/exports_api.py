"""Export API (function auth level): an image's stored report (SARIF, JSON) and SBOM (SPDX, CycloneDX).

`GET /api/images/{key}/report?format=sarif|json` and `GET /api/images/{key}/sbom?format=spdx|cyclonedx`, described
in openapi.yaml. `key` is the image key (`GET /api/images?ref=` returns it; it is also the first path segment of a
result's report URL). Errors are JSON `{"error": "<reason>"}`: 400 bad key or format, 404 nothing stored, 502 a
stored file that cannot be served as its format (a SARIF file that is not valid SARIF 2.1.0 is never served).
"""

from __future__ import annotations

import asyncio

import azure.durable_functions as df
import azure.functions as func

from activities.exports import Export, NothingStored, read_export
from activities.storage_clients import clients_for
from core.exports import BadExportRequest, ExportFormat, ExportKind, InvalidExport, checked_key, export_format
from core.settings import get_settings
from starters.http_api import error_response

GET_REPORT_FUNCTION = "http_get_image_report"
GET_SBOM_FUNCTION = "http_get_image_sbom"
REPORT_ROUTE = "images/{key}/report"
SBOM_ROUTE = "images/{key}/sbom"
KEY_PARAM = "key"
FORMAT_PARAM = "format"

bp = df.Blueprint()


def _read(key: str, fmt: ExportFormat) -> Export:
    settings = get_settings()
    return read_export(clients_for(settings), settings, key, fmt)


async def serve_export(req: func.HttpRequest, kind: ExportKind) -> func.HttpResponse:
    """The stored file, or a JSON error (400/404/502)."""
    try:
        key = checked_key(req.route_params.get(KEY_PARAM, ""))
        fmt = export_format(kind, req.params.get(FORMAT_PARAM))
    except BadExportRequest as error:
        return error_response(400, str(error))
    try:
        export = await asyncio.to_thread(_read, key, fmt)
    except NothingStored as error:
        return error_response(404, str(error))
    except InvalidExport as error:
        return error_response(502, str(error))
    headers = {
        "Content-Disposition": f'attachment; filename="{fmt.filename}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    if export.result.instance_id:
        headers["X-Scan-Instance-Id"] = export.result.instance_id
    return func.HttpResponse(export.data, status_code=200, mimetype=fmt.media_type, headers=headers)


@bp.function_name(GET_REPORT_FUNCTION)  # type: ignore[untyped-decorator]
@bp.route(route=REPORT_ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)  # type: ignore[untyped-decorator]
async def get_image_report(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/images/{key}/report?format=sarif|json: the latest result's stored report (SARIF checked 2.1.0)."""
    return await serve_export(req, "report")


@bp.function_name(GET_SBOM_FUNCTION)  # type: ignore[untyped-decorator]
@bp.route(route=SBOM_ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)  # type: ignore[untyped-decorator]
async def get_image_sbom(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/images/{key}/sbom?format=spdx|cyclonedx: the SBOM the scanner produced for the latest result."""
    return await serve_export(req, "sbom")
