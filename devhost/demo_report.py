"""What a demo run produced, read from the app's own store: per-image outcomes, summary.json and the table."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from activities.notify_rescan import rescan_alert_count
from activities.results_store import get_scan_record
from activities.storage_clients import clients_for
from core.report import ImageResult
from core.settings import Settings
from devhost.orchestration import COMPLETED, FAILED, RUNNING, TERMINATED

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
ORCHESTRATION_KEYS = (COMPLETED, FAILED, RUNNING, TERMINATED)
IMAGE_STATUSES = ("completed", "denied", "uploaded", "inventory", "cached", "failed", "timed_out")
NOT_AN_OUTCOME = "skipped"
SUMMARY_FILE = "summary.json"
NOTIFICATION_KEYS = ("email", "webhook", "teams", "slack", "suppressed_findings", "digests")
REPORTS_DIR = "reports"
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
ORCHESTRATIONS_FILE = "orchestrations.json"
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RunRecord:
    """One orchestration of the run as the app stored it (scan record), or as its output said when none was stored."""

    instance_id: str
    runtime_status: str
    finished_at: datetime
    created_rank: int
    status: str
    target: str
    results: list[ImageResult]
    source: str


def _status_time(value: object) -> datetime:
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return _EPOCH


def _target_label(event: Mapping[str, Any] | None) -> str:
    if not event:
        return "?"
    inner = event.get("event") if isinstance(event.get("event"), Mapping) else event
    assert isinstance(inner, Mapping)
    return str(inner.get("name") or inner.get("image") or inner.get("resource_id") or "?")


def _results_from_output(output: object) -> list[ImageResult]:
    images = output.get("images") if isinstance(output, Mapping) else None
    results: list[ImageResult] = []
    for item in images or []:
        try:
            results.append(ImageResult.model_validate(item))
        except ValidationError:
            continue
    return results


def run_records(settings: Settings, instances: Iterable[Mapping[str, Any]]) -> list[RunRecord]:
    """The stored scan record of each orchestration (its output when it stored none), in the order they finished.

    Ties (an instant cache hit finishes in the same virtual second as a long scan) go to the one created later; the
    status API lists instances in creation order.
    """
    clients = clients_for(settings)
    records: list[RunRecord] = []
    listed = list(enumerate(instances))
    ranks = {
        str(instance["instanceId"]): rank
        for rank, (_, instance) in enumerate(
            sorted(listed, key=lambda item: (_status_time(item[1].get("createdTime")), item[0]))
        )
    }
    for _, instance in listed:
        instance_id = str(instance["instanceId"])
        runtime_status = str(instance.get("runtimeStatus"))
        stored = get_scan_record(clients, settings, instance_id)
        if stored is not None:
            finished = stored.finished_at or _status_time(instance.get("lastUpdatedTime"))
            label = _target_label(stored.event)
            records.append(
                RunRecord(
                    instance_id,
                    runtime_status,
                    finished,
                    ranks[instance_id],
                    stored.status,
                    label,
                    stored.results,
                    "scans table",
                )
            )
            continue
        output = instance.get("output")
        status = str(output.get("status")) if isinstance(output, Mapping) else runtime_status.lower()
        target = output.get("target") if isinstance(output, Mapping) else None
        records.append(
            RunRecord(
                instance_id,
                runtime_status,
                _status_time(instance.get("lastUpdatedTime")),
                ranks[instance_id],
                status,
                _target_label(target if isinstance(target, Mapping) else None),
                _results_from_output(output),
                "orchestration output",
            )
        )
    return sorted(records, key=lambda r: (r.finished_at, r.created_rank))


def image_outcomes(records: Sequence[RunRecord]) -> dict[str, ImageResult]:
    """Per distinct image, the outcome of its last scan in this run (by finish time).

    `cached` only for an image that this run never scanned because the cache already held it (a `cache` seed): an
    image scanned and later redeployed within the cache window shows its scan's outcome, and an image shared by two
    concurrent deployments shows the one scan's outcome (the waiting orchestration reuses the scanner's result).
    """
    scanned: dict[str, ImageResult] = {}
    cached: dict[str, ImageResult] = {}
    for record in records:
        for result in record.results:
            if result.status == NOT_AN_OUTCOME:
                continue
            (cached if result.status == "cached" else scanned)[result.image] = result
    return dict(sorted({**cached, **scanned}.items()))


def image_entry(result: ImageResult) -> dict[str, Any]:
    """One `images` item of summary.json."""
    counts = result.vulnerabilities
    return {
        "image": result.image,
        "status": result.status,
        "vulnerabilities": {severity: counts.of(severity) for severity in SEVERITIES},
        "report": result.report or "",
    }


def orchestration_counts(instances: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Orchestrations by runtime status; anything not finished (Pending, ContinuedAsNew...) counts as Running."""
    counts = dict.fromkeys(ORCHESTRATION_KEYS, 0)
    for instance in instances:
        status = str(instance.get("runtimeStatus"))
        counts[status if status in counts else RUNNING] += 1
    return counts


def build_summary(
    instances: Sequence[Mapping[str, Any]],
    *,
    outcomes: Mapping[str, ImageResult],
    sim_stats: Mapping[str, Any],
    emails: int,
    webhooks: int,
    extra_notifications: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """summary.json, exactly in the documented shape (docs/demo.md); scanner counts from the ARM simulator."""
    groups = sim_stats.get("groups", {})
    return {
        "orchestrations": orchestration_counts(instances),
        "images": [image_entry(result) for result in outcomes.values()],
        "scans_started": int(sim_stats.get("scans", {}).get("images_started", 0)),
        "scanner_groups": {"created": int(groups.get("created", 0)), "remaining": int(groups.get("remaining", 0))},
        "arm_requests": int(sim_stats.get("total", 0)),
        "notifications": {**dict.fromkeys(NOTIFICATION_KEYS, 0), "email": emails, "webhook": webhooks}
        | dict(extra_notifications or {}),
    }


def rescan_summary(settings: Settings, started: int) -> dict[str, int]:
    """summary.json's `rescans`: `started` = scheduled rescans started (devhost/demo_rescans.py), `alerts` = rescanned
    images alerted (or queued for a digest) because their findings changed (activities/notify_rescan.py).
    """
    return {"started": started, "alerts": rescan_alert_count(settings)}


def orchestration_details(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """orchestrations.json: each orchestration's target, status and per-image statuses (for reading, not a contract)."""
    return [
        {
            "instance_id": r.instance_id,
            "runtime_status": r.runtime_status,
            "status": r.status,
            "target": r.target,
            "finished_at": r.finished_at.isoformat() if r.finished_at != _EPOCH else None,
            "source": r.source,
            "images": [{"image": x.image, "status": x.status, "reason": x.reason} for x in r.results],
        }
        for r in records
    ]


def save_reports(settings: Settings, summary: Mapping[str, Any], directory: Path) -> int:
    """Copy each image's stored report into `directory` (Azurite is in memory: its URLs end with the run)."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    reports = clients_for(settings).container(settings.results_container)
    prefix = f"/{settings.results_container}/"
    saved = 0
    for entry in summary["images"]:
        path = urllib.parse.urlsplit(entry["report"]).path
        if prefix not in path:
            continue
        blob_name = urllib.parse.unquote(path.split(prefix, 1)[1])
        data = reports.download_blob(blob_name).readall()
        (directory / f"{_UNSAFE_FILE_CHARS.sub('_', entry['image'])}.json").write_bytes(data)
        saved += 1
    return saved


def write_json(path: Path, document: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def render_table(summary: Mapping[str, Any]) -> str:
    """The images as an aligned text table: image, status, counts by severity, report."""
    header = ("IMAGE", "STATUS", "CRIT", "HIGH", "MED", "LOW", "REPORT")
    rows = [header]
    for entry in summary["images"]:
        counts = entry["vulnerabilities"]
        rows.append(
            (
                entry["image"],
                entry["status"],
                *(str(counts[s]) for s in SEVERITIES),
                entry["report"] or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def summary_line(summary: Mapping[str, Any]) -> str:
    """One line: images by status, orchestrations, scans, groups, ARM requests, notifications."""
    by_status = Counter(entry["status"] for entry in summary["images"])
    statuses = ", ".join(f"{by_status[s]} {s}" for s in IMAGE_STATUSES if by_status[s])
    orchestrations = summary["orchestrations"]
    finished = ", ".join(f"{n} {k}" for k, n in orchestrations.items() if n)
    groups = summary["scanner_groups"]
    notes = summary["notifications"]
    return (
        f"{len(summary['images'])} images ({statuses or 'none'}); "
        f"{sum(orchestrations.values())} orchestrations ({finished or 'none'}); "
        f"{summary['scans_started']} images scanned in {groups['created']} scanner groups "
        f"({groups['remaining']} left); {summary['arm_requests']} ARM requests; "
        f"{notes['email']} e-mails, {notes['webhook']} webhooks, {notes.get('teams', 0)} Teams, "
        f"{notes.get('slack', 0)} Slack, {notes.get('digests', 0)} digests, "
        f"{notes.get('suppressed_findings', 0)} suppressed"
    )
