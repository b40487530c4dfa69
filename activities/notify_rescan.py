"""A rescan's alert (issue 11 item 4): only when the image's findings changed since its previous result.

A scan started with `ScanInput.rescan` passes `rescan: true` to `send_notifications` (orchestrators/queue_run.py).
For each image with a report, the activity reads the image's result history (activities/results_store.py: the
latest plus the previous result with a report, one row), applies the active exceptions to both summaries and diffs
them (core/result_diff.py). The image is alerted only when the diff has changes (new QIDs, a changed severity or
fix, a status change); with no comparable previous result it falls back to the fingerprint rule alone. The
never-twice rule still applies on top: findings already alerted (same fingerprint) are not alerted again. A failed
rescan is alerted like any failure (once per reason). The alert names every workload running the image, from the
inventory (at most MAX_WORKLOADS, then a pointer to the API). Alerted rescans are counted in the alerts table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from azure.data.tables import TableClient, UpdateMode

from activities.exceptions_store import ExceptionStore, apply_to_result
from activities.inventory_store import table as inventory_table
from activities.inventory_store import workloads_running
from activities.notify_store import AlertStore
from activities.results_store import get_result_history
from activities.storage_clients import clients_for
from core.alerts import IMAGES_PATH
from core.exceptions_doc import active_entries
from core.report import ImageResult, ReportSummary, Severity
from core.result_diff import FindingsDiff, comparable, diff_findings, same_scan
from core.settings import Settings
from core.workloads import Workload

RESCAN_PARTITION = "rescan"
MAX_WORKLOADS = 50
NO_CHANGE = "rescan: no change since the previous result"

SummaryReader = Callable[[ImageResult], ReportSummary | None]


@dataclass(frozen=True)
class RescanView:
    """One rescanned image with a report: what changed since its previous result."""

    diff: FindingsDiff

    @property
    def worth_alerting(self) -> bool:
        """Changes against the previous result; without one, the fingerprint rule alone decides."""
        return self.diff.has_changes or not self.diff.baseline


def workload_label(workload: Workload) -> str:
    """How alerts name a workload: `aca shop (rg-apps)` (the inventory's kind), like a deployment's."""
    return f"{workload.kind} {workload.name} ({workload.resource_group})"


def running(settings: Settings, image: str) -> tuple[list[Workload], bool]:
    """The workloads running `image` (at most MAX_WORKLOADS) and whether there are more."""
    return workloads_running(inventory_table(settings), image, MAX_WORKLOADS)


def baseline_of(result: ImageResult, latest: ImageResult | None, previous: ImageResult | None) -> ImageResult | None:
    """The result to compare with: the one before `result` in the history, None when it is not known."""
    if same_scan(latest, result):
        return previous if comparable(previous) else None
    if comparable(latest) and latest is not None and not same_scan(previous, result):
        older = (
            latest.scanned_at is not None and result.scanned_at is not None and latest.scanned_at < result.scanned_at
        )
        return latest if older else None  # not stored yet (the store runs beside this activity): latest is before it
    return None


def rescan_views(
    settings: Settings,
    results: Sequence[ImageResult],
    threshold: Severity,
    summary_of: SummaryReader,
) -> dict[str, RescanView]:
    """Per image with a readable report: its diff against the previous result (exceptions applied through
    `summary_of`).
    """
    clients = clients_for(settings)
    views: dict[str, RescanView] = {}
    for result in results:
        if not comparable(result):
            continue
        current = summary_of(result)
        if current is None:  # the report cannot be read: no diff (the fingerprint rule cannot compare either)
            continue
        latest, previous = get_result_history(clients, settings, result.image)
        baseline = baseline_of(result, latest, previous)
        before = summary_of(baseline) if baseline is not None else None
        diff = diff_findings(before, current, threshold, previous_result=baseline if before else None, result=result)
        views[result.image] = RescanView(diff)
    return views


def labels(found: list[Workload], more: bool, image: str) -> tuple[str, ...]:
    """The workloads as alerts name them, and where the rest are when there are more than MAX_WORKLOADS."""
    named = [workload_label(w) for w in found]
    return tuple([*named, f"more workloads: GET {IMAGES_PATH}{image}"] if more else named)


def workloads_for(placed: dict[str, tuple[list[Workload], bool]], image: str, workload: str) -> tuple[str, ...]:
    """The workloads an alert names for an image: a rescan's from the inventory (any outcome, failures too), else
    the scanned deployment (or the rescan itself when the inventory has none).
    """
    found, more = placed.get(image, ([], False))
    return labels(found, more, image) or (workload,)


def record_rescan_alert(table: TableClient, instance_id: str, key: str, image: str, diff: FindingsDiff | None) -> None:
    """One row per rescan and image alerted (or queued for the digest); retries count once."""
    counts = diff.counts() if diff is not None else {}
    row = {"PartitionKey": RESCAN_PARTITION, "RowKey": f"{instance_id}-{key}", "image": image, **counts}
    table.upsert_entity(row, mode=UpdateMode.REPLACE)


def rescan_alert_count(settings: Settings) -> int:
    """Rescan image results alerted or queued for a digest (the demo's `rescans.alerts`)."""
    table = clients_for(settings).table(settings.alerts_table)
    return sum(1 for _ in table.query_entities(f"PartitionKey eq '{RESCAN_PARTITION}'"))


def stored_diff(
    settings: Settings, latest: ImageResult | None, previous: ImageResult | None, workloads: list[str], now: datetime
) -> FindingsDiff | None:
    """The diff between an image's stored previous and latest results, as a rescan's alert would compute it (the
    active exceptions applied, `workloads`: ARM ids for their scopes); None unless both have a readable report.
    """
    if latest is None or previous is None or not (comparable(latest) and comparable(previous)):
        return None
    entries = active_entries(ExceptionStore(settings).load(), now)
    reader = AlertStore(settings).report_summary
    current = apply_to_result(reader, latest, workloads, entries, now)[1]
    before = apply_to_result(reader, previous, workloads, entries, now)[1]
    if current is None or before is None:
        return None
    threshold = Severity(settings.notify_severity_threshold)
    return diff_findings(before, current, threshold, previous_result=previous, result=latest)
