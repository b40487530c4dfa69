"""The exceptions document in Blob and its audit in Table; applying it to stored results.

- Blob `exceptions/exceptions.json` in RESULTS_CONTAINER: the current document (`core.exceptions_doc`), with its
  `version`. A change must name the version it replaces; the write is conditional on the blob's ETag, so two
  concurrent changes cannot lose each other's edits (the second gets `ExceptionsConflict`, HTTP 409).
- Blob `exceptions/versions/<version>.json`: every accepted version, so the audit's before/after stays whole.
- Blob `exceptions/last-evaluated.json`: the entries active at the expiry timer's last run (what it compares with).
- Table EXCEPTIONS_AUDIT_TABLE (default `exceptionsaudit`, created on first use): partition `audit`, one row per
  accepted change (row key: the new version, zero-padded): who, when, version before and after, and the documents
  before and after (inline up to `AUDIT_INLINE_CHARS`, else only in the version blobs). The table keeps the last
  `MAX_AUDIT_ROWS` changes. Partition `state`, row `expiry`: when the expiry timer last evaluated.

EXCEPTIONS_FILE (a path in the app package, relative to its root): the document is deployed with the app. Whenever
the file differs from the stored document, the first evaluation that reads it stores it as the next version (audited,
actor `file:<path>`); `PUT` is then refused (409). A file that cannot be read or does not validate fails every
evaluation loudly (never "no exceptions").

Time comes from `activities.wallclock` (devhost's virtual clock in the demo), so expiry follows the run's clock.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.storage.blob import ContentSettings

from activities import wallclock
from activities.inventory_store import table as inventory_table
from activities.inventory_store import workloads_running
from activities.notify_store import AlertStore
from activities.storage_clients import StorageClients, clients_for
from core.exceptions_doc import (
    MAX_DOCUMENT_BYTES,
    Applied,
    ExceptionEntry,
    ExceptionsDocument,
    InvalidExceptions,
    active_entries,
    apply_to_summary,
    effective_result,
    parse_document,
)
from core.report import ALERT_STATUSES, ImageResult, ReportSummary
from core.settings import Settings

log = logging.getLogger(__name__)

DOCUMENT_BLOB = "exceptions/exceptions.json"
VERSIONS_PREFIX = "exceptions/versions/"
LAST_ACTIVE_BLOB = "exceptions/last-evaluated.json"
AUDIT_PARTITION = "audit"
STATE_PARTITION = "state"
EXPIRY_ROW = "expiry"
AUDIT_INLINE_CHARS = 30_000  # a Table string property holds 64 KiB (32K UTF-16 characters)
MAX_AUDIT_ROWS = 1000
DEFAULT_ACTOR = "admin-key"
FILE_ACTOR_PREFIX = "file:"
APP_ROOT = Path(__file__).resolve().parents[1]
_FILE_MEMO: dict[tuple[str, float, int], list[dict[str, Any]]] = {}


class ExceptionsConflict(RuntimeError):
    """The change names a version that is no longer the current one."""


def _dump(document: ExceptionsDocument) -> str:
    return document.model_dump_json(exclude_none=True)


class ExceptionStore:
    """The document and its audit, in the storage account of `settings`."""

    def __init__(self, settings: Settings, clients: StorageClients | None = None) -> None:
        self._settings = settings
        self._clients = clients or clients_for(settings)
        self._container = self._clients.container(settings.results_container)

    @property
    def audit(self) -> Any:
        return self._clients.table(self._settings.exceptions_audit_table)

    def _read(self) -> tuple[ExceptionsDocument, str | None]:
        """(current document, its ETag); an empty version 0 when none was written. A stored document that does not
        validate is an error (never read as "no exceptions").
        """
        blob = self._container.get_blob_client(DOCUMENT_BLOB)
        try:
            downloader = blob.download_blob()  # content and ETag from one response
        except ResourceNotFoundError:
            return ExceptionsDocument(), None
        if downloader.size > MAX_DOCUMENT_BYTES * 2:
            raise InvalidExceptions(f"the stored exceptions document is larger than {MAX_DOCUMENT_BYTES * 2} bytes")
        raw = downloader.readall()
        try:
            return ExceptionsDocument.model_validate_json(raw), str(downloader.properties.etag)
        except ValueError as error:
            raise InvalidExceptions(f"the stored exceptions document is invalid: {error}") from None

    def load(self) -> ExceptionsDocument:
        """The document to evaluate (EXCEPTIONS_FILE's first, when set and changed)."""
        if self._settings.exceptions_file:
            return self.sync_file(wallclock.now())
        return self._read()[0]

    def _file_entries(self) -> list[dict[str, Any]]:
        name = self._settings.exceptions_file or ""
        path = Path(name) if Path(name).is_absolute() else APP_ROOT / name
        try:
            stat = path.stat()
            memo = (str(path), stat.st_mtime, stat.st_size)
            if memo not in _FILE_MEMO:
                if stat.st_size > MAX_DOCUMENT_BYTES:
                    raise InvalidExceptions(f"EXCEPTIONS_FILE {name}: larger than {MAX_DOCUMENT_BYTES} bytes")
                data = json.loads(path.read_bytes())
                if not isinstance(data, dict) or not isinstance(data.get("exceptions"), list):
                    raise InvalidExceptions(f'EXCEPTIONS_FILE {name}: must be {{"exceptions": [...]}}')
                _FILE_MEMO.clear()
                _FILE_MEMO[memo] = data["exceptions"]
        except (OSError, ValueError) as error:
            if isinstance(error, InvalidExceptions):
                raise
            raise InvalidExceptions(f"EXCEPTIONS_FILE {name}: cannot be read: {error}") from None
        return _FILE_MEMO[memo]

    def sync_file(self, now: datetime) -> ExceptionsDocument:
        """Store EXCEPTIONS_FILE's document as the next version when it differs from the stored one; the current."""
        entries = self._file_entries()
        for _ in range(3):
            current, etag = self._read()
            wanted = parse_document({"version": current.version, "exceptions": entries}, now, self._max_days)
            if wanted.exceptions == current.exceptions:
                return current
            try:
                actor = f"{FILE_ACTOR_PREFIX}{self._settings.exceptions_file}"
                return self._store(wanted, current, etag, actor, now)
            except ExceptionsConflict:
                continue  # another instance stored it meanwhile
        return self._read()[0]

    @property
    def _max_days(self) -> int:
        return self._settings.exception_max_days

    def put(self, data: Any, actor: str, now: datetime) -> ExceptionsDocument:
        """Validate `data` (its `version`: the version it replaces) and store it as the next version; audited.

        InvalidExceptions for a bad document, ExceptionsConflict when the version is not the current one.
        """
        if self._settings.exceptions_file:
            raise ExceptionsConflict(
                f"exceptions are deployed from EXCEPTIONS_FILE ({self._settings.exceptions_file}); change that file"
            )
        proposed = parse_document(data, now, self._max_days)
        current, etag = self._read()
        if proposed.version != current.version:
            raise ExceptionsConflict(
                f"version {proposed.version} is not the current version {current.version}; read it again and retry"
            )
        return self._store(proposed, current, etag, actor, now)

    def _store(
        self, proposed: ExceptionsDocument, current: ExceptionsDocument, etag: str | None, actor: str, now: datetime
    ) -> ExceptionsDocument:
        """Write `proposed` as the version after `current` if the blob still holds it (`etag`); audited."""
        document = proposed.model_copy(update={"version": current.version + 1})
        body = _dump(document).encode()
        blob = self._container.get_blob_client(DOCUMENT_BLOB)
        settings = ContentSettings(content_type="application/json")
        try:
            if etag is None:
                blob.upload_blob(body, overwrite=False, content_settings=settings)
            else:
                blob.upload_blob(
                    body, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified,
                    content_settings=settings,
                )  # fmt: skip
        except (ResourceExistsError, ResourceModifiedError):
            raise ExceptionsConflict(
                f"version {current.version} was changed meanwhile; read it again and retry"
            ) from None
        with contextlib.suppress(ResourceExistsError):
            self._container.upload_blob(f"{VERSIONS_PREFIX}{document.version:010d}.json", body, overwrite=False)
        self._audit(current, document, actor, now)
        return document

    def _audit(self, before: ExceptionsDocument, after: ExceptionsDocument, actor: str, now: datetime) -> None:
        before_text, after_text = _dump(before), _dump(after)
        row = {
            "PartitionKey": AUDIT_PARTITION,
            "RowKey": f"{after.version:010d}",
            "actor": actor[:256],
            "at": now,
            "version_before": before.version,
            "version_after": after.version,
            "before": before_text if len(before_text) <= AUDIT_INLINE_CHARS else "",
            "after": after_text if len(after_text) <= AUDIT_INLINE_CHARS else "",
            "before_blob": f"{VERSIONS_PREFIX}{before.version:010d}.json" if before.version else "",
            "after_blob": f"{VERSIONS_PREFIX}{after.version:010d}.json",
        }
        self.audit.upsert_entity(row, mode=UpdateMode.REPLACE)
        if after.version > MAX_AUDIT_ROWS:
            with contextlib.suppress(ResourceNotFoundError):
                self.audit.delete_entity(AUDIT_PARTITION, f"{after.version - MAX_AUDIT_ROWS:010d}")

    def audit_rows(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest `limit` changes, newest first (who, when, versions; not the documents)."""
        try:
            rows = list(self.audit.query_entities(f"PartitionKey eq '{AUDIT_PARTITION}'"))
        except ResourceNotFoundError:
            return []
        rows.sort(key=lambda r: str(r["RowKey"]), reverse=True)
        keys = ("actor", "version_before", "version_after")
        return [{k: r.get(k) for k in keys} | {"at": _iso(r.get("at"))} for r in rows[:limit]]

    def last_evaluated(self) -> datetime | None:
        try:
            row = self.audit.get_entity(STATE_PARTITION, EXPIRY_ROW)
        except ResourceNotFoundError:
            return None
        value = row.get("at")
        return value if isinstance(value, datetime) else None

    def last_active(self) -> tuple[ExceptionEntry, ...]:
        """The entries that were active at the expiry timer's last run (none before its first)."""
        try:
            raw = self._container.get_blob_client(LAST_ACTIVE_BLOB).download_blob().readall()
        except ResourceNotFoundError:
            return ()
        try:
            return ExceptionsDocument.model_validate_json(raw).exceptions
        except ValueError:
            log.warning("exceptions expiry: %s is unreadable; only expiries are re-evaluated", LAST_ACTIVE_BLOB)
            return ()

    def mark_evaluated(self, now: datetime, active: Sequence[ExceptionEntry] = ()) -> None:
        body = _dump(ExceptionsDocument(exceptions=tuple(active))).encode()
        self._container.upload_blob(LAST_ACTIVE_BLOB, body, overwrite=True)
        self.audit.upsert_entity({"PartitionKey": STATE_PARTITION, "RowKey": EXPIRY_ROW, "at": now})


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def workloads_of(event: dict[str, Any] | None) -> list[str]:
    """The workloads (ARM resource ids) an image runs in, as far as a scan knows: its target deployment.

    Hook for the inventory: once it records every workload per image, return those here so a scope matches an
    image deployed anywhere under it, not only in the deployment that triggered the scan.
    """
    if not event:
        return []
    inner = event.get("event") if isinstance(event.get("event"), dict) else event
    rid = inner.get("resource_id") if isinstance(inner, dict) else None
    return [rid] if isinstance(rid, str) and rid else []


MAX_INVENTORY_WORKLOADS = 50


def inventory_workloads(settings: Settings, image: str) -> list[str]:
    """The resource ids of the workloads the inventory says run `image` (sorted; at most MAX_INVENTORY_WORKLOADS).

    Where a result has no deployment of its own (stored by a scan queue batch, a sweep's or a manual scan), this is
    where its workloads are known, so exception scopes match where the image runs.
    """
    found, _ = workloads_running(inventory_table(settings), image, MAX_INVENTORY_WORKLOADS)
    return sorted(w.resource_id for w in found)


def summary_for(read: Any, result: ImageResult) -> ReportSummary | None:
    """The stored report's summary of a result that has one (`read`: `AlertStore.report_summary`)."""
    if result.status in ALERT_STATUSES or not result.report:
        return None
    summary: ReportSummary | None = read(result)
    return summary


def apply_to_result(
    read: Any, result: ImageResult, workloads: Sequence[str], entries: Sequence[ExceptionEntry], now: datetime
) -> tuple[ImageResult, ReportSummary | None, Applied | None]:
    """(effective result, effective summary, what was applied); the stored result is never changed."""
    summary = summary_for(read, result)
    if summary is None or not entries:
        return result, summary, None
    applied = apply_to_summary(summary, result.image, workloads, entries, now)
    return effective_result(result, applied), applied.summary, applied


def as_json(document: ExceptionsDocument) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_dump(document))
    return loaded


def suppression_view(effective: ImageResult, applied: Applied | None) -> dict[str, Any] | None:
    """What the API shows of a result's suppressed findings (`suppressed` per severity, `suppressed_qids`,
    `exception_ids`, the `effective` counts and worst severity); None when nothing is suppressed.
    """
    if applied is None or not applied.suppressed:
        return None
    return applied.view() | {
        "effective": {
            "vulnerabilities": effective.vulnerabilities.model_dump(mode="json"),
            "worst_severity": effective.worst_severity.value if effective.worst_severity else None,
        }
    }


class SuppressionLens:
    """What the active exceptions suppress in stored results, for views (the API, the inventory): the document is
    read once, and a report summary only for a result some entry could match, each report once.
    """

    def __init__(self, settings: Settings, now: datetime) -> None:
        self.entries = active_entries(ExceptionStore(settings).load(), now)
        self.now = now
        self._read = AlertStore(settings).report_summary
        self._summaries: dict[str, ReportSummary | None] = {}

    def _summary(self, result: ImageResult) -> ReportSummary | None:
        key = result.report or ""
        if key not in self._summaries:
            self._summaries[key] = self._read(result)
        return self._summaries[key]

    def view(self, result: ImageResult | None, workloads: Sequence[str]) -> dict[str, Any] | None:
        """`suppression_view` of the result as deployed in `workloads` (ARM ids; scopes match against them)."""
        if result is None or not any(e.matches_target(result.image, workloads) for e in self.entries):
            return None
        effective, _, applied = apply_to_result(self._summary, result, workloads, self.entries, self.now)
        return suppression_view(effective, applied)


def exceptions_view(
    settings: Settings,
    results: Sequence[ImageResult],
    event: dict[str, Any] | None,
    now: datetime,
    workloads_for: Callable[[str], Sequence[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per image with suppressed findings: `suppression_view`. Images without any are left out. Scopes match the
    scan's target (`event`); a result without one (stored by a scan queue batch) matches `workloads_for(image)`
    (the inventory's workloads running it) when given.
    """
    lens = SuppressionLens(settings, now)
    if not lens.entries:
        return {}
    workloads = workloads_of(event)
    views: dict[str, dict[str, Any]] = {}
    for result in results:
        targets = workloads or (list(workloads_for(result.image)) if workloads_for is not None else [])
        view = lens.view(result, targets)
        if view is not None:
            views[result.image] = view
    return views
