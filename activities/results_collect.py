"""Collects one scanner group's uploads: bounded, validated reads; report and log copied to the reports container."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from azure.storage.blob import ContainerClient

from activities.storage_clients import (
    JSON_CONTENT,
    TEXT_CONTENT,
    BlobTooLarge,
    StorageClients,
    read_blob,
    read_blob_tail,
    uploads_container_of,
)
from core.naming import image_key
from core.report import (
    CACHEABLE_STATUSES,
    MAX_REPORT_BYTES,
    MAX_STATUS_BYTES,
    STATUS_OF_SCANNER_RESULT,
    ImageResult,
    InvalidUpload,
    ReportSummary,
    ResultStatus,
    ScanStatus,
    clip_reason,
    parse_report,
    parse_status,
)
from core.results import CollectRequest, ImageToCheck
from core.settings import Settings

MAX_LOG_BYTES = 1024 * 1024
STATUS_BLOB = "status.json"
REPORT_BLOB = "report.json"
LOG_BLOB = "scan.log"
SUMMARY_BLOB = "summary.json"


def _status_of(uploads: ContainerClient, base: str, expected: ImageToCheck, index: int) -> ScanStatus | str:
    """The upload's status, or the reason it cannot be used."""
    try:
        raw = read_blob(uploads, f"{base}/{STATUS_BLOB}", MAX_STATUS_BYTES)
    except BlobTooLarge:
        return "status.json is oversize"
    if raw is None:
        return ""
    try:
        status = parse_status(raw)
    except InvalidUpload as error:
        return str(error)
    if status.image != expected.image or status.index != index:
        return f"status.json names image {status.index} {status.image!r}, expected {index} {expected.image!r}"
    return status


def _report_of(uploads: ContainerClient, base: str) -> tuple[bytes | None, ReportSummary | None, str | None]:
    """The raw report, its summary, and why it could not be read (None when fine or absent)."""
    try:
        raw = read_blob(uploads, f"{base}/{REPORT_BLOB}", MAX_REPORT_BYTES)
    except BlobTooLarge:
        return None, None, "report.json is oversize"
    if raw is None:
        return None, None, None
    try:
        return raw, parse_report(raw), None
    except InvalidUpload as error:
        return None, None, str(error)


def _scanned_at(status: ScanStatus | None, now: datetime) -> datetime:
    """The scanner's finish time when plausible (not in the future: uploads are untrusted), else `now`."""
    finished = status.finished_at if status else None
    return finished.astimezone(UTC) if finished is not None and finished <= now else now


def _collect_one(
    clients: StorageClients, settings: Settings, request: CollectRequest, index: int, item: ImageToCheck
) -> ImageResult:
    # The group's own container, not created here: once it is gone (stored, or never made) every image has no upload.
    uploads = clients.blob_service.get_container_client(uploads_container_of(settings, request.uploads_group()))
    reports = clients.container(settings.results_container)
    base = f"{request.prefix or request.instance_id}/{index}"
    now = request.now or datetime.now(UTC)
    checked = _status_of(uploads, base, item, index)
    status = checked if isinstance(checked, ScanStatus) else None
    raw_report, summary, report_problem = _report_of(uploads, base) if status else (None, None, None)
    log, log_cut = read_blob_tail(uploads, f"{base}/{LOG_BLOB}", MAX_LOG_BYTES)

    digest = item.digest or (status.digest if status else None) or (summary.digest if summary else None)
    outcome: ResultStatus
    if status is not None:
        outcome = STATUS_OF_SCANNER_RESULT[status.result]
    elif checked:
        outcome = "failed"  # an unusable status.json
    else:
        outcome = request.missing_status  # none at all: the orchestrator knows whether the group timed out
    reasons: list[str] = []
    if status is None:
        reasons.append(str(checked) or "the scanner uploaded no status.json")
        if request.reason:
            reasons.append(request.reason)
    elif outcome in CACHEABLE_STATUSES and summary is None and request.expect_report:
        outcome = "failed"
        reasons.append(report_problem or "the scanner uploaded no report.json")
    elif status.result != "ok":
        reasons.append(f"scanner result {status.result}, exit code {status.exit_code}")
    if log_cut:
        reasons.append(f"scan.log cut to its last {MAX_LOG_BYTES} bytes")

    folder = f"{image_key(item.image, digest)}/{request.instance_id}"
    report_url = log_url = None
    if raw_report is not None:
        report_url = _upload(reports, f"{folder}/{REPORT_BLOB}", raw_report, json_content=True)
    if log is not None:
        log_url = _upload(reports, f"{folder}/{LOG_BLOB}", log, json_content=False)
    counts = summary.vulnerabilities if summary else None
    result = ImageResult.model_validate(
        {
            "image": item.image,
            "digest": digest,
            "status": outcome,
            "vulnerabilities": counts.model_dump() if counts else {},
            "worst_severity": summary.worst_severity if summary else None,
            "report": report_url,
            "log": log_url,
            "scanned_at": _scanned_at(status, now),
            "instance_id": request.instance_id,
            "exit_code": status.exit_code if status else request.exit_code,
            "reason": clip_reason("; ".join(reasons)) if reasons else None,
        }
    )
    document = {
        "result": result.model_dump(mode="json"),
        "summary": summary.model_dump(mode="json") if summary else None,
    }
    _upload(reports, f"{folder}/{SUMMARY_BLOB}", json.dumps(document, indent=2).encode(), json_content=True)
    return result


def _upload(container: ContainerClient, name: str, data: bytes, *, json_content: bool) -> str:
    content = JSON_CONTENT if json_content else TEXT_CONTENT
    blob = container.upload_blob(name, data, overwrite=True, content_settings=content, max_concurrency=1)
    return str(blob.url)


def collect_results(clients: StorageClients, settings: Settings, request: CollectRequest) -> list[ImageResult]:
    """Read each image's uploads (bounded, validated), copy report and log to the reports container, summarise.

    Re-running it for the same instance gives the same results and overwrites the same blobs.
    """
    return [_collect_one(clients, settings, request, i, item) for i, item in enumerate(request.images)]
