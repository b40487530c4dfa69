"""Collects one scanner group's uploads: bounded, validated reads; what is kept is copied to the reports container.

The upload contract (docs/scanner.md, "Results"): per image `{prefix}/{i}/` holds `report.sarif.json`,
`report.json`, `scanresult.json`, `sbom.spdx.json` or `sbom.cyclonedx.json` (each when QScanner wrote it),
`scan.log`, and `status.json` last. The verdict is core.assessment's; the digest comes from scanresult.json.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from azure.core.exceptions import ResourceNotFoundError
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
from core.assessment import Assessment, assess, read_reports
from core.inventory import MAX_SCANRESULT_BYTES, SCANRESULT_BLOB, ScanDigest, scan_digest
from core.json_report import JSON_REPORT_BLOB
from core.naming import image_key
from core.report import (
    MAX_REPORT_BYTES,
    MAX_STATUS_BYTES,
    ImageResult,
    InvalidUpload,
    ResultStatus,
    ScanStatus,
    clip_reason,
    parse_status,
)
from core.results import CollectRequest, ImageToCheck
from core.sarif import SARIF_BLOB
from core.settings import Settings

MAX_LOG_BYTES = 4 * 1024 * 1024
"""The scanner keeps the last 4 MiB of QScanner's log; all of it is read (the counts sit before a long table)."""
MAX_SBOM_BYTES = 64 * 1024 * 1024
STATUS_BLOB = "status.json"
LOG_BLOB = "scan.log"
SUMMARY_BLOB = "summary.json"
SBOM_BLOBS = ("sbom.spdx.json", "sbom.cyclonedx.json")
KEPT_BLOBS: dict[str, int] = {
    SARIF_BLOB: MAX_REPORT_BYTES,
    JSON_REPORT_BLOB: MAX_REPORT_BYTES,
    SCANRESULT_BLOB: MAX_SCANRESULT_BYTES,
    **dict.fromkeys(SBOM_BLOBS, MAX_SBOM_BYTES),
}
"""The JSON files collect reads and copies, with the most it reads of each."""
REPORT_BLOBS = (SARIF_BLOB, JSON_REPORT_BLOB)


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


def _read_kept(uploads: ContainerClient, base: str, status: ScanStatus) -> dict[str, bytes | str]:
    """The kept files this image has: bytes, or why not (oversize, or listed in `files` but absent).

    When status.json lists `files`, exactly the known names listed are read; otherwise every known name is tried.
    """
    wanted = [name for name in KEPT_BLOBS if status.files is None or name in status.files]
    found: dict[str, bytes | str] = {}
    for name in wanted:
        try:
            raw = read_blob(uploads, f"{base}/{name}", KEPT_BLOBS[name])
        except BlobTooLarge:
            found[name] = f"{name} is oversize (more than {KEPT_BLOBS[name]} bytes)"
            continue
        if raw is not None:
            found[name] = raw
        elif status.files is not None:
            found[name] = f"status.json lists {name}, which was not uploaded"
    return found


def _digest_from(files: dict[str, bytes | str], item: ImageToCheck) -> tuple[ScanDigest, bool]:
    """The repo digest from scanresult.json (with a note), and whether a readable inventory was uploaded."""
    raw = files.get(SCANRESULT_BLOB)
    if raw is None:
        return ScanDigest(None), False
    if isinstance(raw, str):
        return ScanDigest(None, raw), False
    try:
        return scan_digest(raw, item.image, item.digest), True
    except InvalidUpload as error:
        return ScanDigest(None, str(error)), False


def _scanned_at(status: ScanStatus | None, now: datetime) -> datetime:
    """The scanner's finish time when plausible (not in the future: uploads are untrusted), else `now`."""
    finished = status.finished_at if status else None
    return finished.astimezone(UTC) if finished is not None and finished <= now else now


def _assessed(
    request: CollectRequest,
    checked: ScanStatus | str,
    files: dict[str, bytes | str],
    log: bytes | None,
    *,
    log_cut: bool,
    has_inventory: bool,
) -> Assessment:
    """The verdict: core.assessment's for a valid status.json, else failed or the orchestrator's missing status."""
    if isinstance(checked, ScanStatus):
        reading = read_reports([(name, files[name]) for name in REPORT_BLOBS if name in files])
        text = log.decode("utf-8", errors="replace") if log is not None else None
        return assess(request.mode, checked, reading, text, log_cut=log_cut, has_inventory=has_inventory)
    outcome: ResultStatus = "failed" if checked else request.missing_status  # the orchestrator knows about timeouts
    reasons = [checked or "the scanner uploaded no status.json"]
    return Assessment(outcome, reasons + ([request.reason] if request.reason else []))


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
    files = _read_kept(uploads, base, status) if status else {}
    log, log_cut = read_blob_tail(uploads, f"{base}/{LOG_BLOB}", MAX_LOG_BYTES)
    scanned, has_inventory = _digest_from(files, item)
    assessment = _assessed(request, checked, files, log, log_cut=log_cut, has_inventory=has_inventory)

    digest = scanned.digest or item.digest
    reasons = list(assessment.reasons)
    if scanned.note:
        reasons.append(scanned.note)
    reasons += [problem for name, problem in files.items() if isinstance(problem, str) and name not in REPORT_BLOBS]
    if log_cut:
        reasons.append(f"scan.log cut to its last {MAX_LOG_BYTES} bytes")

    folder = f"{image_key(item.image, digest)}/{request.instance_id}"
    urls = {
        name: _upload(reports, f"{folder}/{name}", raw, json_content=True)
        for name, raw in files.items()
        if isinstance(raw, bytes)
    }
    if log is not None:
        urls[LOG_BLOB] = _upload(reports, f"{folder}/{LOG_BLOB}", log, json_content=False)
    summary = assessment.summary
    used = {"sarif": SARIF_BLOB, "json": JSON_REPORT_BLOB}[summary.source] if summary else None
    order = ((used,) if used else ()) + REPORT_BLOBS + (SCANRESULT_BLOB,)
    report_url = next((urls[name] for name in order if name in urls), None)
    result = ImageResult.model_validate(
        {
            "image": item.image,
            "digest": digest,
            "resolved_digest": item.digest if item.digest and item.digest != digest else None,
            "status": assessment.status,
            "vulnerabilities": summary.vulnerabilities.model_dump() if summary else {},
            "worst_severity": summary.worst_severity if summary else None,
            "report": report_url,
            "log": urls.get(LOG_BLOB),
            "scanned_at": _scanned_at(status, now),
            "instance_id": request.instance_id,
            "exit_code": status.exit_code if status else request.exit_code,
            "reason": clip_reason("; ".join(reasons)) if reasons else None,
        }
    )
    document = {
        "result": result.model_dump(mode="json"),
        "mode": request.mode,
        "summary": summary.model_dump(mode="json") if summary else None,
        "files": urls,
    }
    _upload(reports, f"{folder}/{SUMMARY_BLOB}", json.dumps(document, indent=2).encode(), json_content=True)
    return result


def _upload(container: ContainerClient, name: str, data: bytes, *, json_content: bool) -> str:
    content = JSON_CONTENT if json_content else TEXT_CONTENT
    blob = container.upload_blob(name, data, overwrite=True, content_settings=content, max_concurrency=1)
    return str(blob.url)


def collect_results(clients: StorageClients, settings: Settings, request: CollectRequest) -> list[ImageResult]:
    """Read each image's uploads (bounded, validated), copy what is kept to the reports container, summarise.

    Re-running it for the same instance gives the same results and overwrites the same blobs.
    """
    wanted = range(len(request.images)) if request.only is None else sorted(set(request.only))
    results: list[ImageResult] = []
    for index in wanted:
        if not 0 <= index < len(request.images):
            raise ValueError(f"upload index {index} is not one of the group's {len(request.images)} images")
        if request.skip_missing and not _has_status(clients, settings, request, index):
            continue
        results.append(_collect_one(clients, settings, request, index, request.images[index]))
    return results


def _has_status(clients: StorageClients, settings: Settings, request: CollectRequest, index: int) -> bool:
    uploads = clients.blob_service.get_container_client(uploads_container_of(settings, request.uploads_group()))
    try:
        return bool(uploads.get_blob_client(f"{request.prefix or request.instance_id}/{index}/{STATUS_BLOB}").exists())
    except ResourceNotFoundError:
        return False
