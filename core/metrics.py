"""The app's metrics as data: names, units, descriptions, where each is recorded, and the closed sets of attribute
values (pure; no OpenTelemetry or azure.* here).

activities/telemetry.py makes OpenTelemetry instruments from `METRICS` and records through `attributes`, which
maps any value outside an attribute's closed set to `other`: no metric ever carries a CVE, an image, a digest, an
instance id or a resource id, so the cardinality stays small (docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

METER_NAME: Final = "qscan"
OTHER: Final = "other"

InstrumentKind = Literal["counter", "histogram", "updown", "gauge"]

SCAN_OUTCOMES = frozenset({"completed", "partial", "failed"})
SCAN_KINDS = frozenset({"deployment", "image", "rescan"})
IMAGE_STATUSES = frozenset({"completed", "denied", "uploaded", "inventory", "cached", "failed", "timed_out", "skipped"})
SEVERITIES = frozenset({"CRITICAL", "HIGH", "MEDIUM", "LOW"})
CACHE_RESULTS = frozenset({"hit", "miss"})
QUOTA_REASONS = frozenset({"aci_quota", "capacity", "create_rate"})
CHANNELS = frozenset({"email", "webhook", "teams", "slack"})
ALERT_MODES = frozenset({"scan", "digest"})
ALERT_OUTCOMES = frozenset({"sent", "failed"})
SUPPRESSION_REASONS = frozenset({"same_findings", "window", "exception"})
SWEEP_TRIGGERS = frozenset({"schedule", "backfill", "api"})


@dataclass(frozen=True)
class MetricSpec:
    """One metric: OpenTelemetry instrument kind, name, UCUM unit, description, attributes and where it is recorded."""

    name: str
    kind: InstrumentKind
    unit: str
    description: str
    where: str
    attributes: Mapping[str, frozenset[str]] = field(default_factory=dict)


SCANS = MetricSpec(
    "qscan.scans", "counter", "{scan}", "Scan records stored (one per deployment, manual or scheduled rescan)",
    "store_results (a deployment's or image's record, not a batch runner's)",
    {"outcome": SCAN_OUTCOMES, "kind": SCAN_KINDS},
)  # fmt: skip
SCAN_DURATION = MetricSpec(
    "qscan.scan.duration", "histogram", "s", "From the scan's start to its record (resolve, cache, queue, scan)",
    "store_results (orchestration time: finished_at - started_at)",
    {"outcome": SCAN_OUTCOMES, "kind": SCAN_KINDS},
)  # fmt: skip
IMAGES = MetricSpec(
    "qscan.images", "counter", "{image}", "Image results the scanner groups produced, by status",
    "collect_results", {"status": IMAGE_STATUSES},
)  # fmt: skip
FINDINGS = MetricSpec(
    "qscan.findings", "counter", "{finding}", "Findings in the collected results (per QID), by severity",
    "collect_results", {"severity": SEVERITIES},
)  # fmt: skip
CACHE_LOOKUPS = MetricSpec(
    "qscan.cache.lookups", "counter", "{image}", "Cache lookups (SCAN_CACHE_HOURS), hit or miss",
    "lookup_cache", {"result": CACHE_RESULTS},
)  # fmt: skip
QUEUE_WAIT = MetricSpec(
    "qscan.queue.wait", "histogram", "s", "How long an image waited in the scan queue before its batch was granted",
    "wake_orchestrations (the grants it starts)",
)  # fmt: skip
QUEUE_DEPTH = MetricSpec(
    "qscan.queue.depth", "gauge", "{image}", "Images still pending in the scan queue after its latest grant",
    "wake_orchestrations (the grants it starts)",
)  # fmt: skip
GROUPS_CREATED = MetricSpec(
    "qscan.scanner.groups", "counter", "{group}", "Scanner groups created", "create_scanner_group",
)  # fmt: skip
GROUP_SECONDS = MetricSpec(
    "qscan.scanner.group_seconds", "counter", "s", "Scanner group lifetime from its create to its last collect",
    "store_results (the record that deletes the group's uploads)",
)  # fmt: skip
CORES_IN_USE = MetricSpec(
    "qscan.scanner.cores", "updown", "{core}", "ACI cores held by scanner groups (+SCANNER_CPU on create, - on delete)",
    "create_scanner_group, delete_scanner_group (also the janitor's deletes)",
)  # fmt: skip
QUOTA_WAITS = MetricSpec(
    "qscan.quota.waits", "counter", "{wait}",
    "Waits for ACI's limits: creates ACI refused for quota (aci_quota); batches the queue granted only once groups or"
    " cores were free (capacity) or the create rate allowed (create_rate)",
    "create_scanner_group (aci_quota), wake_orchestrations (the grants it starts)", {"reason": QUOTA_REASONS},
)  # fmt: skip
ALERTS = MetricSpec(
    "qscan.alerts", "counter", "{message}", "Alert messages per channel: a scan's alert or a digest, sent or failed",
    "send_notifications, alert_digest", {"channel": CHANNELS, "mode": ALERT_MODES, "outcome": ALERT_OUTCOMES},
)  # fmt: skip
ALERTS_SUPPRESSED = MetricSpec(
    "qscan.alerts.suppressed", "counter", "{item}",
    "Left out of alerts: images alerted before with the same findings or already queued in the window (counted per"
    " image); findings an active exception covers (per finding)",
    "send_notifications", {"reason": SUPPRESSION_REASONS},
)  # fmt: skip
SWEEPS = MetricSpec(
    "qscan.sweeps", "counter", "{sweep}", "Resource Graph sweeps finished", "sweep_record", {"trigger": SWEEP_TRIGGERS},
)  # fmt: skip
SWEEP_SCANS = MetricSpec(
    "qscan.sweep.scans", "counter", "{scan}", "Scans the sweeps started (images without a fresh result)",
    "sweep_record", {"trigger": SWEEP_TRIGGERS},
)  # fmt: skip

METRICS: tuple[MetricSpec, ...] = (
    SCANS, SCAN_DURATION, IMAGES, FINDINGS, CACHE_LOOKUPS, QUEUE_WAIT, QUEUE_DEPTH, GROUPS_CREATED, GROUP_SECONDS,
    CORES_IN_USE, QUOTA_WAITS, ALERTS, ALERTS_SUPPRESSED, SWEEPS, SWEEP_SCANS,
)  # fmt: skip


def attributes(spec: MetricSpec, **values: object) -> dict[str, str]:
    """The attributes of one measurement: exactly the spec's keys, each value from its closed set or `other`."""
    if set(values) != set(spec.attributes):
        raise ValueError(f"{spec.name} takes the attributes {sorted(spec.attributes)}, not {sorted(values)}")
    return {key: str(value) if str(value) in spec.attributes[key] else OTHER for key, value in values.items()}


def scan_kind(event: Mapping[str, Any] | None, *, rescan: bool) -> str | None:
    """`deployment`, `image` or `rescan` for a scan record's target; None for a batch runner's record (no target)."""
    kind = event.get("kind") if isinstance(event, Mapping) else None
    if kind not in ("deployment", "image"):
        return None
    return "rescan" if rescan else str(kind)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """`end - start` in seconds, None when either is unknown or the span is negative."""
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()
