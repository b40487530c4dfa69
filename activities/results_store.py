"""Scan results in Table storage: cache lookup, idempotent stores, scan records, and the activities on Blob/Table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode
from pydantic import ValidationError

from activities import names, telemetry
from activities.activity_registry import activity_registrar, validated
from activities.results_collect import collect_results
from activities.storage_clients import StorageClients, clients_for, delete_container, uploads_container_of
from core.images import parse_image_ref
from core.naming import image_key
from core.report import CACHEABLE_STATUSES, ImageResult, clip_reason
from core.result_diff import comparable, same_scan
from core.results import (
    CacheLookup,
    CacheLookupRequest,
    CacheLookupResponse,
    CollectRequest,
    ImageResults,
    LatestRequest,
    LatestResponse,
    ScanRecord,
    StoreRequest,
)
from core.settings import Settings, get_settings

MAX_EVENT_CHARS = 30_000
CACHE_ROW = "latest"
LATEST_RESULT_ROW = "last_result"
SCAN_SUMMARY_ROW = "summary"
IMAGE_ROW_PREFIX = "image-"
RESULT_PROPERTY = "result"
PREVIOUS_PROPERTY = "previous"
"""On `last_result` rows: the image's result before the latest that had a report (issue 11's history: the latest
plus the previous; a failed scan in between is skipped so the next diff compares findings with findings). Rows
written before the history have none."""
SCANNED_AT_PROPERTY = "scanned_at"
CHECKED_PROPERTY = "checked"
"""Set on cache rows written since reports are checked against QScanner's log: only those are served as hits
(an older row may hold a report the app could not read, stored as a clean result)."""
TABLE_BATCH_LIMIT = 100
CLOCK_SKEW = timedelta(minutes=5)
_NEWER_WINS_ATTEMPTS = 4


def _result_of(entity: TableEntity | dict[str, Any]) -> ImageResult | None:
    try:
        return ImageResult.model_validate_json(str(entity.get(RESULT_PROPERTY, "")))
    except ValidationError:
        return None


def _get_entity(table: TableClient, partition: str, row: str) -> TableEntity | None:
    try:
        return table.get_entity(partition, row)
    except ResourceNotFoundError:
        return None


# --- cache ----------------------------------------------------------------------------------------------------


def lookup_cache(clients: StorageClients, settings: Settings, request: CacheLookupRequest) -> list[CacheLookup]:
    """Per image, a fresh cached result (completed or denied, scanned within `cache_hours` of `now`) or a miss.

    The key is the digest when known, else the canonical reference (a tag can move; a digest cannot). Rows
    written before reports were checked against the log (no `checked` property) are misses.
    """
    if request.cache_hours == 0:
        return [CacheLookup(image=i.image, digest=i.digest, hit=False) for i in request.images]
    table = clients.table(settings.cache_table)
    oldest = request.now - timedelta(hours=request.cache_hours)
    answers: list[CacheLookup] = []
    for item in request.images:
        entity = _get_entity(table, image_key(item.image, item.digest), CACHE_ROW)
        cached = _result_of(entity) if entity and entity.get(CHECKED_PROPERTY) is True else None
        fresh = (
            cached is not None
            and cached.status in CACHEABLE_STATUSES
            and cached.scanned_at is not None
            and oldest <= cached.scanned_at <= request.now + CLOCK_SKEW
        )
        if not fresh or cached is None:
            answers.append(CacheLookup(image=item.image, digest=item.digest, hit=False))
            continue
        digest = item.digest or cached.digest
        reused = cached.model_copy(
            update={
                "image": item.image,
                "digest": digest,
                "resolved_digest": cached.resolved_digest if cached.resolved_digest != digest else None,
                "status": "cached",
                "reason": clip_reason(f"cached result of scan {cached.instance_id} ({cached.status})"),
            }
        )
        answers.append(CacheLookup(image=item.image, digest=reused.digest, hit=True, result=reused))
    return answers


# --- store ----------------------------------------------------------------------------------------------------


def _when(result: ImageResult, request: StoreRequest) -> datetime | None:
    return result.scanned_at or request.finished_at or request.started_at


def _previous_of(current: TableEntity, existing: ImageResult | None, new: ImageResult) -> str | None:
    """The `previous` a `last_result` row gets when `new` replaces `existing` (see PREVIOUS_PROPERTY)."""
    kept = current.get(PREVIOUS_PROPERTY)
    kept_text = kept if isinstance(kept, str) and kept else None
    if existing is None or same_scan(existing, new) or not comparable(existing):
        return kept_text
    return existing.model_dump_json()


def _upsert_if_newer(
    table: TableClient,
    partition: str,
    row: str,
    result: ImageResult,
    when: datetime | None,
    *,
    history: bool = False,
) -> None:
    """Write the row unless it already holds a newer result, so a late replay never overwrites a newer scan.

    `history`: keep the result it replaces as PREVIOUS_PROPERTY (the same scan stored again keeps the row's).
    """
    entity: dict[str, Any] = {
        "PartitionKey": partition,
        "RowKey": row,
        RESULT_PROPERTY: result.model_dump_json(),
        "image": result.image,
        "status": result.status,
        SCANNED_AT_PROPERTY: (when or datetime.now(UTC)).isoformat(),
        CHECKED_PROPERTY: True,
    }
    for _ in range(_NEWER_WINS_ATTEMPTS):
        current = _get_entity(table, partition, row)
        if current is None:
            try:
                table.create_entity(entity)
                return
            except ResourceExistsError:
                continue
        existing = _result_of(current)
        existing_when = existing.scanned_at if existing else None
        if existing_when is not None and when is not None and existing_when > when:
            return
        if history:
            previous = _previous_of(current, existing, result)
            entity.pop(PREVIOUS_PROPERTY, None)
            if previous is not None:
                entity[PREVIOUS_PROPERTY] = previous
        try:
            table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            return
        except (ResourceModifiedError, ResourceNotFoundError):
            continue
    raise RuntimeError(f"row {partition}/{row} kept changing; giving up after {_NEWER_WINS_ATTEMPTS} attempts")


def _cache_keys(result: ImageResult) -> list[str]:
    """The scan's digest, the digest resolved before the scan when it differs (lookups use that one), the ref."""
    keys = [image_key(result.image, result.digest)]
    if result.resolved_digest:
        keys.append(image_key(result.image, result.resolved_digest))
    keys.append(image_key(result.image))
    return list(dict.fromkeys(keys))


def store_results(clients: StorageClients, settings: Settings, request: StoreRequest) -> int:
    """Idempotent: cache rows (completed/denied only), latest-result rows, the orchestration's scan record; then
    the uploads containers of `request.scanner_groups` are deleted (one already gone counts as done).

    Returns how many uploads containers were deleted. The orchestration stores only after collect has copied the
    reports and logs it keeps, so the uploads are no longer needed; the janitor removes those of a scan that
    never got here.
    """
    cache = clients.table(settings.cache_table)
    for result in request.results:
        when = _when(result, request)
        if result.status in CACHEABLE_STATUSES:
            for key in _cache_keys(result):
                _upsert_if_newer(cache, key, CACHE_ROW, result, when)
        if result.status not in ("cached", "skipped"):
            _upsert_if_newer(cache, image_key(result.image), LATEST_RESULT_ROW, result, when, history=True)
    _store_scan_record(clients.table(settings.scans_table), request)
    return sum(delete_container(clients, uploads_container_of(settings, group)) for group in request.scanner_groups)


def _store_scan_record(table: TableClient, request: StoreRequest) -> None:
    event_json = json.dumps(request.event, separators=(",", ":")) if request.event is not None else ""
    if len(event_json) > MAX_EVENT_CHARS:
        event_json = json.dumps({"truncated": True, "length": len(event_json)})
    summary: dict[str, Any] = {
        "PartitionKey": request.instance_id,
        "RowKey": SCAN_SUMMARY_ROW,
        "status": request.status,
        "event": event_json,
        "image_count": len(request.results),
        "started_at": request.started_at.isoformat() if request.started_at else "",
        "finished_at": request.finished_at.isoformat() if request.finished_at else "",
    }
    rows = [summary] + [
        {
            "PartitionKey": request.instance_id,
            "RowKey": f"{IMAGE_ROW_PREFIX}{i:04d}",
            RESULT_PROPERTY: result.model_dump_json(),
        }
        for i, result in enumerate(request.results)
    ]
    for start in range(0, len(rows), TABLE_BATCH_LIMIT):
        table.submit_transaction(
            [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows[start : start + TABLE_BATCH_LIMIT]]
        )


# --- reads for the HTTP API -----------------------------------------------------------------------------------


def get_latest_result(clients: StorageClients, settings: Settings, image_ref: str) -> ImageResult | None:
    """The latest stored result (any outcome) for an image reference; None when never scanned.

    The reference is normalised first (`nginx` -> `docker.io/library/nginx:latest`); `InvalidImageRef` (a
    ValueError) when it is not a valid reference.
    """
    canonical = parse_image_ref(image_ref).canonical
    entity = _get_entity(clients.table(settings.cache_table), image_key(canonical), LATEST_RESULT_ROW)
    return _result_of(entity) if entity else None


def get_result_history(
    clients: StorageClients, settings: Settings, image_ref: str
) -> tuple[ImageResult | None, ImageResult | None]:
    """(latest, previous) stored results of an image reference (one row read); previous is None for a row written
    before the history existed, or when no earlier result had a report. InvalidImageRef for a bad reference.
    """
    canonical = parse_image_ref(image_ref).canonical
    entity = _get_entity(clients.table(settings.cache_table), image_key(canonical), LATEST_RESULT_ROW)
    if entity is None:
        return None, None
    previous = entity.get(PREVIOUS_PROPERTY)
    earlier = _result_of({RESULT_PROPERTY: previous}) if isinstance(previous, str) and previous else None
    return _result_of(entity), earlier


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def get_scan_record(clients: StorageClients, settings: Settings, instance_id: str) -> ScanRecord | None:
    """The stored record of one orchestration, None when it has none (yet)."""
    table = clients.table(settings.scans_table)
    try:
        found = table.query_entities("PartitionKey eq @pk", parameters={"pk": instance_id})
        rows = {e["RowKey"]: dict(e) for e in found}
    except ResourceNotFoundError:  # the table vanished: nothing is stored until the next write recreates it
        return None
    summary = rows.get(SCAN_SUMMARY_ROW)
    if summary is None:
        return None
    count = int(summary.get("image_count", 0))
    results = [_result_of(rows.get(f"{IMAGE_ROW_PREFIX}{i:04d}", {})) for i in range(count)]
    event = summary.get("event")
    return ScanRecord(
        instance_id=instance_id,
        status=str(summary.get("status", "")),
        event=json.loads(event) if isinstance(event, str) and event else None,
        started_at=_time(summary.get("started_at")),
        finished_at=_time(summary.get("finished_at")),
        results=[r for r in results if r is not None],
    )


# --- activities -----------------------------------------------------------------------------------------------

results_blueprint = df.Blueprint()
activity = activity_registrar(results_blueprint)


@activity(names.LOOKUP_CACHE)
def lookup_cache_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: `CacheLookupRequest` -> `CacheLookupResponse`."""
    settings = get_settings()
    answers = lookup_cache(clients_for(settings), settings, validated(CacheLookupRequest, payload))
    telemetry.cache_looked_up(sum(a.hit for a in answers), sum(not a.hit for a in answers))
    return CacheLookupResponse(images=answers).model_dump(mode="json")


@activity(names.COLLECT_RESULTS)
def collect_results_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: `CollectRequest` -> `ImageResults`."""
    settings = get_settings()
    results = collect_results(clients_for(settings), settings, validated(CollectRequest, payload))
    telemetry.collected(results)
    return ImageResults(results=results).model_dump(mode="json")


@activity(names.STORE_RESULTS)
def store_results_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: `StoreRequest` -> {"stored": n, "uploads_deleted": n}."""
    settings = get_settings()
    request = validated(StoreRequest, payload)
    deleted = store_results(clients_for(settings), settings, request)
    telemetry.scan_stored(request)
    return {"stored": len(request.results), "uploads_deleted": deleted}


@activity(names.READ_LATEST_RESULTS)
def read_latest_results_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: `LatestRequest` -> `LatestResponse` (e.g. the result a single-flight lease holder stored)."""
    settings = get_settings()
    clients = clients_for(settings)
    request = validated(LatestRequest, payload)
    results = [get_latest_result(clients, settings, image) for image in request.images]
    return LatestResponse(results=results).model_dump(mode="json")
