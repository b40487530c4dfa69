"""The alerts table: the fingerprint last alerted per image, the digest queue, and who was left out as a duplicate.

Rows (table ALERTS_TABLE, created on first use):
- `fingerprint` / `<image key>`: the fingerprint last alerted for the image and the scan that alerted it; claimed
  (ETag-conditional) before the alert is sent, so concurrent scans alert the same findings once
  (activities/notify_claims.py: states, joined workloads, release and takeover).
- `queue` / `p-<image key>-<fingerprint>`: an entry waiting for the next digest (ALERT_DIGEST_MINUTES > 0); the
  scans and workloads that brought it; `digest` is set once a digest claimed it.
- `queue` / `h-<digest id>`: a digest: `open` (claiming entries), `sending` (no more entries), `sent`.
- `<digest id>` / `notified-<channel>`: a channel delivered that digest (at-least-once: a crash between the send and
  this row sends it again, never more).
- `suppressed` / `<instance id>-<image key>`: an image result that was not alerted again (same findings as the last
  alert, or the same failure already waiting in the window) and the workloads it brought; one row per scan and
  image, so retries count once.
- `excepted` / `<instance id>-<image key>`: findings of an image result that exceptions suppressed: how many, per
  severity, and the exception ids; one row per scan (or expiry re-evaluation) and image.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode

from activities import notify_claims as claims
from activities.notify_claims import Claim
from activities.storage_clients import BlobTooLarge, clients_for, read_blob
from core.json_report import parse_json_report
from core.report import MAX_REPORT_BYTES, Finding, ImageResult, InvalidUpload, ReportSummary
from core.result_diff import FindingsDiff
from core.sarif import parse_sarif
from core.settings import Settings

log = logging.getLogger(__name__)

QUEUE_PARTITION = "queue"
SUPPRESSED_PARTITION = "suppressed"
EXCEPTED_PARTITION = "excepted"
PENDING_PREFIX = "p-"
HEADER_PREFIX = "h-"
LEDGER_ROW_PREFIX = "notified-"
STATE_OPEN, STATE_SENDING, STATE_SENT = "open", "sending", "sent"
MAX_WORKLOADS = 50
MAX_SCANS = 200
MERGE_ATTEMPTS = 5
MAX_DIFF_CHARS = 30_000  # a Table string property holds 64 KiB (32K UTF-16 characters)


@dataclass
class PendingEntry:
    """One image waiting for a digest: its latest result, new findings, and every workload and scan that brought it."""

    row_key: str
    result: ImageResult
    findings: tuple[Finding, ...] = ()
    workloads: list[str] = field(default_factory=list)
    scans: list[str] = field(default_factory=list)
    digest: str | None = None
    diff: FindingsDiff | None = None
    """A rescan's change since the previous result (the first scan that queued the entry brings it)."""
    exceptions: dict[str, Any] | None = None
    """What exceptions suppressed in the result (`Applied.view()`), for the digest's text."""

    def row(self) -> dict[str, Any]:
        return {
            "PartitionKey": QUEUE_PARTITION,
            "RowKey": self.row_key,
            "result": self.result.model_dump_json(),
            "findings": json.dumps([f.model_dump(mode="json") for f in self.findings]),
            "workloads": json.dumps(self.workloads[:MAX_WORKLOADS]),
            "scans": json.dumps(self.scans[:MAX_SCANS]),
            "digest": self.digest or "",
            "exceptions": json.dumps(self.exceptions) if self.exceptions else "",
            "queued_at": datetime.now(UTC),
            "diff": _diff_text(self.diff),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PendingEntry:
        return cls(
            row_key=str(row["RowKey"]),
            result=ImageResult.model_validate_json(row["result"]),
            findings=tuple(Finding.model_validate(f) for f in json.loads(row.get("findings") or "[]")),
            workloads=list(json.loads(row.get("workloads") or "[]")),
            scans=list(json.loads(row.get("scans") or "[]")),
            digest=row.get("digest") or None,
            diff=FindingsDiff.model_validate_json(row["diff"]) if row.get("diff") else None,
            exceptions=json.loads(row["exceptions"]) if row.get("exceptions") else None,
        )


def _diff_text(diff: FindingsDiff | None) -> str:
    """The diff as a row property (at most MAX_DIFF_CHARS: the unchanged findings go first when it is too long)."""
    if diff is None:
        return ""
    text = diff.model_dump_json()
    return text if len(text) <= MAX_DIFF_CHARS else diff.model_copy(update={"still_open": ()}).model_dump_json()


class AlertStore:
    """The alerts table of `settings` (ALERTS_TABLE), and the scans table's per-scan ledger (as before)."""

    def __init__(self, settings: Settings) -> None:
        clients = clients_for(settings)
        self._settings = settings
        self._clients = clients
        self.table: TableClient = clients.table(settings.alerts_table)
        self._scans = clients.table(settings.scans_table)

    # Per-scan ledger (ALERT_DIGEST_MINUTES 0), in the scan's partition of the scans table as before.
    def already_sent(self, instance_id: str, channel: str) -> bool:
        return self._exists(self._scans, instance_id, LEDGER_ROW_PREFIX + channel)

    def mark_sent(self, instance_id: str, channel: str) -> None:
        row = {"PartitionKey": instance_id, "RowKey": LEDGER_ROW_PREFIX + channel, "sent_at": datetime.now(UTC)}
        with contextlib.suppress(ResourceExistsError):
            self._scans.create_entity(row)

    # Digest ledger
    def digest_sent(self, digest_id: str, channel: str) -> bool:
        return self._exists(self.table, digest_id, LEDGER_ROW_PREFIX + channel)

    def mark_digest_sent(self, digest_id: str, channel: str) -> None:
        row = {"PartitionKey": digest_id, "RowKey": LEDGER_ROW_PREFIX + channel, "sent_at": datetime.now(UTC)}
        with contextlib.suppress(ResourceExistsError):
            self.table.create_entity(row)

    @staticmethod
    def _exists(table: TableClient, partition: str, row: str) -> bool:
        try:
            table.get_entity(partition, row)
        except ResourceNotFoundError:
            return False
        return True

    # Fingerprints: claimed before an alert is sent, so concurrent scans alert the same findings once
    # (activities/notify_claims.py)
    def claim_alert(self, key: str, fingerprint: str, instance_id: str, image: str, workloads: list[str]) -> Claim:
        return claims.claim(self.table, key, fingerprint, instance_id=instance_id, image=image, workloads=workloads)

    def freeze_alert(self, key: str, fingerprint: str, instance_id: str) -> list[str]:
        return claims.freeze(self.table, key, fingerprint, instance_id)

    def record_alerted(self, key: str, fingerprint: str, instance_id: str) -> None:
        claims.finish(self.table, key, fingerprint, instance_id)

    def release_alert(self, key: str, fingerprint: str, instance_id: str) -> None:
        claims.release(self.table, key, fingerprint, instance_id)

    def record_suppressed(
        self, instance_id: str, key: str, image: str, why: str, workloads: tuple[str, ...] | list[str] = ()
    ) -> None:
        row = {
            "PartitionKey": SUPPRESSED_PARTITION,
            "RowKey": f"{instance_id}-{key}",
            "image": image,
            "why": why,
            "workloads": json.dumps(list(workloads)[:MAX_WORKLOADS]),
        }
        self.table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def record_excepted(self, instance_id: str, key: str, image: str, view: dict[str, Any]) -> None:
        row = {
            "PartitionKey": EXCEPTED_PARTITION,
            "RowKey": f"{instance_id}-{key}",
            "image": image,
            "count": len(view.get("suppressed_qids", [])),
            "view": json.dumps(view)[:30_000],
        }
        self.table.upsert_entity(row, mode=UpdateMode.REPLACE)

    # The digest queue
    def enqueue(self, entry: PendingEntry, workload: str | list[str], instance_id: str, *, create: bool = True) -> bool:
        """Add the entry (when `create`), or merge the workload(s) and scan into the same unclaimed one; True when
        this scan added it (now or on an earlier attempt).
        """
        where = [workload] if isinstance(workload, str) else workload
        for _ in range(MERGE_ATTEMPTS):
            try:
                current = self.table.get_entity(QUEUE_PARTITION, entry.row_key)
            except ResourceNotFoundError:
                if not create:
                    return False
                fresh = PendingEntry(
                    entry.row_key,
                    entry.result,
                    entry.findings,
                    where,
                    [instance_id],
                    diff=entry.diff,
                    exceptions=entry.exceptions,
                )
                try:
                    self.table.create_entity(fresh.row())
                except ResourceExistsError:
                    continue
                return True
            existing = PendingEntry.from_row(current)
            if existing.digest:  # already claimed by a digest: it is the alert of these findings
                return instance_id in existing.scans
            if instance_id in existing.scans:
                return True  # a retry of the scan that queued it
            existing.workloads = list(dict.fromkeys([*existing.workloads, *where]))[:MAX_WORKLOADS]
            existing.diff = existing.diff or entry.diff
            existing.scans = [*existing.scans, instance_id]
            try:
                self.table.update_entity(
                    existing.row(),
                    mode=UpdateMode.REPLACE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                continue
            return False
        raise RuntimeError(f"alerts queue row {entry.row_key} kept changing")

    def queue_rows(self) -> list[TableEntity]:
        return list(self.table.query_entities(f"PartitionKey eq '{QUEUE_PARTITION}'"))

    def set_header(self, digest_id: str, state: str) -> None:
        row = {"PartitionKey": QUEUE_PARTITION, "RowKey": HEADER_PREFIX + digest_id, "state": state}
        self.table.upsert_entity(row, mode=UpdateMode.MERGE)

    def claim(self, row: TableEntity, digest_id: str) -> None:
        self.table.update_entity(
            {"PartitionKey": QUEUE_PARTITION, "RowKey": row["RowKey"], "digest": digest_id},
            mode=UpdateMode.MERGE,
            etag=row.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )

    def delete_row(self, row_key: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.table.delete_entity(QUEUE_PARTITION, row_key)

    # Reports
    def report_summary(self, result: ImageResult) -> ReportSummary | None:
        """The stored report's summary, None when the result has none or it cannot be read (logged)."""
        if not result.report:
            return None
        container = self._clients.container(self._settings.results_container)
        prefix = container.url.rstrip("/") + "/"
        if not result.report.startswith(prefix):
            return None
        name = unquote(result.report[len(prefix) :].split("?", 1)[0])
        try:
            raw = read_blob(container, name, MAX_REPORT_BYTES)
            if raw is None:
                log.warning("alert: report of %s is missing; its findings cannot be fingerprinted", result.image)
                return None
            return parse_sarif(raw) if name.endswith((".sarif", ".sarif.json")) else parse_json_report(raw)
        except (BlobTooLarge, InvalidUpload, HttpResponseError) as error:
            log.warning("alert: report of %s unreadable (%s); not deduplicated", result.image, type(error).__name__)
            return None


def suppression_counts(settings: Settings) -> dict[str, int]:
    """What was left out, read from the alerts table: `duplicates` (image results not alerted again: same findings
    as their last alert, one per scan and image) and `by_exception` (findings exceptions took out, per scan or expiry
    re-evaluation and image).
    """
    table = clients_for(settings).table(settings.alerts_table)
    duplicates = sum(1 for _ in table.query_entities(f"PartitionKey eq '{SUPPRESSED_PARTITION}'"))
    excepted = sum(int(r.get("count", 0)) for r in table.query_entities(f"PartitionKey eq '{EXCEPTED_PARTITION}'"))
    return {"duplicates": duplicates, "by_exception": excepted}


def alert_counts(settings: Settings) -> dict[str, int]:
    """Digests sent and what was suppressed (the demo's summary): `suppressed_findings` is the sum of both kinds of
    `suppression_counts` (duplicates + findings suppressed by exceptions).
    """
    table = clients_for(settings).table(settings.alerts_table)
    digests = sum(
        1
        for row in table.query_entities(f"PartitionKey eq '{QUEUE_PARTITION}'")
        if str(row["RowKey"]).startswith(HEADER_PREFIX) and row.get("state") == STATE_SENT
    )
    return {"suppressed_findings": sum(suppression_counts(settings).values()), "digests": digests}
