"""What an alert says, built purely from scan results: the alert itself, its fingerprints, its text and JSON forms,
the webhook signature and the links back to the API.

An alert covers one scan (ALERT_DIGEST_MINUTES 0) or a digest of every scan of a window. Fingerprints decide what
is new: an image is alerted again only when the findings at or above the threshold changed (QIDs, severities, fix
availability); a failed or timed-out scan is alerted again only with a new reason, or in a later window.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from core.report import (
    ALERT_STATUSES,
    NO_REPORT_STATUSES,
    SEVERITIES_WORST_FIRST,
    Finding,
    ImageResult,
    ReportSummary,
    Severity,
    needs_notification,
)
from core.result_diff import FindingsDiff

WEBHOOK_EVENT = "scan.alert"
DIGEST_EVENT = "scan.digest"
SIGNATURE_HEADER = "X-QScan-Signature"
LEGACY_SIGNATURE_HEADER = "X-QScanner-Signature-256"
SIGNATURE_TOLERANCE_SECONDS = 300
NO_REPORT_NOTE = " (this QSCANNER_MODE writes no vulnerability report)"
TARGET_EVENT_KEY = "event"
DEPLOYMENT_ID_KEY = "resource_id"
IMAGES_PATH = "/api/images?ref="
SCANS_PATH = "/api/scans/"
FINGERPRINT_CHARS = 32


class Deployment(BaseModel):
    """The parts of a `core.events.DeploymentEvent` an alert shows."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: str = "deployment"
    name: str = "?"
    resource_group: str = "?"
    subscription_id: str = "?"
    resource_id: str | None = None
    event_time: datetime | None = None

    @property
    def workload(self) -> str:
        """How a digest names the workload: `containerApp shop (rg-apps)`."""
        return f"{self.kind} {self.name} ({self.resource_group})"


MAX_NOTE_QIDS = 5


@dataclass(frozen=True)
class Alert:
    """What one alert says: the images that need attention (worst first as scanned), the others, and for each image
    its workloads and new findings. `instance_id` is the scan's, or the digest's id for a digest.
    """

    instance_id: str
    deployment: Deployment | None
    threshold: Severity
    attention: list[ImageResult]
    others: list[ImageResult]
    workloads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    findings: Mapping[str, tuple[Finding, ...]] = field(default_factory=dict)
    scans: tuple[str, ...] = ()
    suppressed: int = 0
    diffs: Mapping[str, FindingsDiff] = field(default_factory=dict)
    """Per rescanned image: what changed since its previous result (core/result_diff.py)."""
    rescan: bool = False
    """The alert of a rescan (ScanInput.rescan): sent only because findings changed."""
    exceptions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per image, what exceptions suppressed (`Applied.view()`: `suppressed_qids`, `exception_ids`, ...)."""

    def exception_note(self, image: str) -> str | None:
        """`hx-1, hx-2: 2 finding(s) accepted (QID 100001, 100002)`, None when no exception applied to the image."""
        view = self.exceptions.get(image)
        if not view or not view.get("exception_ids"):
            return None
        qids = [str(q) for q in view.get("suppressed_qids", ())]
        shown = ", ".join(qids[:MAX_NOTE_QIDS]) + (", ..." if len(qids) > MAX_NOTE_QIDS else "")
        return f"{', '.join(map(str, view['exception_ids']))}: {len(qids)} finding(s) accepted (QID {shown})"

    @property
    def is_digest(self) -> bool:
        return bool(self.scans)

    @property
    def title(self) -> str:
        if self.rescan and not self.is_digest:
            return f"[QScanner] rescan: findings changed in {len(self.attention)} running image(s)"
        if self.is_digest:
            return (
                f"[QScanner] {len(self.attention)} image(s) need attention ({len(self.scans)} scan(s) in this digest)"
            )
        where = f"{self.deployment.kind} {self.deployment.name}" if self.deployment else "manual scan"
        return f"[QScanner] {len(self.attention)} image(s) need attention in {where}"


def deployment_of(event: Mapping[str, Any] | None) -> Deployment | None:
    """The deployment in a scan target (`{"kind": "deployment", "event": {...}}`) or a bare DeploymentEvent.

    None for a manual image scan (`{"kind": "image", ...}`) or no event.
    """
    if not event:
        return None
    inner = event.get(TARGET_EVENT_KEY)
    candidate = inner if isinstance(inner, Mapping) else event
    return Deployment.model_validate(dict(candidate)) if DEPLOYMENT_ID_KEY in candidate else None


def attention_of(results: Iterable[ImageResult], threshold: Severity) -> tuple[list[ImageResult], list[ImageResult]]:
    """(results that need notification, the others)."""
    attention: list[ImageResult] = []
    others: list[ImageResult] = []
    for result in results:
        (attention if needs_notification(result, threshold) else others).append(result)
    return attention, others


def _at_or_above(severity: Severity, threshold: Severity) -> bool:
    return SEVERITIES_WORST_FIRST.index(severity) <= SEVERITIES_WORST_FIRST.index(threshold)


def findings_at_or_above(summary: ReportSummary, threshold: Severity) -> tuple[Finding, ...]:
    """The report's worst findings at or above the threshold, in report order."""
    return tuple(f for f in summary.worst_findings if _at_or_above(f.severity, threshold))


def _hash(parts: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:FINGERPRINT_CHARS]


def findings_fingerprint(summary: ReportSummary, threshold: Severity) -> str:
    """The fingerprint of an image's findings at or above the threshold: per QID its severity and whether a fixed
    version is known, plus the per-severity counts at or above it (the summary keeps only the worst QIDs, so a
    change among the others shows in the counts).
    """
    counts = summary.vulnerabilities
    parts = [f"threshold:{threshold.value}"]  # not the status: a cached result of the same report is no news
    parts += [f"count:{s.value}:{counts.of(s)}" for s in SEVERITIES_WORST_FIRST if _at_or_above(s, threshold)]
    for finding in sorted(findings_at_or_above(summary, threshold), key=lambda f: f.qid):
        fixable = any(p.fixed_version for p in finding.packages)
        parts.append(f"qid:{finding.qid}:{finding.severity.value}:{'fix' if fixable else 'nofix'}")
    return _hash(parts)


def failure_fingerprint(result: ImageResult) -> str:
    """A failed or timed-out scan: its status and reason."""
    return _hash([f"failure:{result.status}", f"reason:{result.reason or ''}"])


def is_failure(result: ImageResult) -> bool:
    return result.status in ALERT_STATUSES


def image_link(base_url: str | None, image: str) -> str | None:
    """`GET /api/images?ref=<image>` on the app's public base URL, when one is set."""
    return f"{base_url.rstrip('/')}{IMAGES_PATH}{quote(image, safe='')}" if base_url else None


def scan_link(base_url: str | None, instance_id: str) -> str | None:
    """`GET /api/scans/<instance id>` on the app's public base URL, when one is set."""
    return f"{base_url.rstrip('/')}{SCANS_PATH}{quote(instance_id, safe='')}" if base_url else None


def _image_lines(alert: Alert, result: ImageResult) -> list[str]:
    counts = result.vulnerabilities
    worst = result.worst_severity or counts.worst
    status = f"{result.status}, worst finding {worst.value if worst else 'none'} (threshold {alert.threshold.value})"
    lines = [f"  {result.image}", f"    status:   {status}"]
    lines.append(
        f"    findings: CRITICAL {counts.CRITICAL}, HIGH {counts.HIGH}, MEDIUM {counts.MEDIUM}, LOW {counts.LOW}"
    )
    for label, value in (("digest", result.digest), ("report", result.report), ("log", result.log)):
        if value:
            lines.append(f"    {label + ':':<9} {value}")
    if result.reason:
        lines.append(f"    reason:   {result.reason}")
    for workload in alert.workloads.get(result.image, ()):
        lines.append(f"    workload: {workload}")
    note = alert.exception_note(result.image)
    if note:
        lines.append(f"    excepted: {note}; not counted here")
    diff = alert.diffs.get(result.image)
    if diff is not None:
        return lines + diff_lines(diff)
    for finding in alert.findings.get(result.image, ()):
        lines.append(f"    new:      {finding.qid} {finding.severity.value} {finding.title}")
    return lines


def diff_summary(diff: FindingsDiff) -> str:
    """`2 new, 1 changed, 0 resolved, 3 still open since scan scan-... (2026-12-06T10:00:00+00:00)`."""
    counts = diff.counts()
    text = f"{counts['new']} new, {counts['changed']} changed, {counts['resolved']} resolved, "
    text += f"{counts['still_open']} still open"
    if diff.previous_scan:
        when = f" ({diff.previous_scanned_at.isoformat()})" if diff.previous_scanned_at else ""
        text += f" since scan {diff.previous_scan}{when}"
    elif not diff.baseline:
        text += " (no earlier result with a report to compare with)"
    return text


def diff_lines(diff: FindingsDiff) -> list[str]:
    """A rescan's change, one finding a line (bounded: at most MAX_WORST_FINDINGS per kind)."""
    lines = [f"    change:   {diff_summary(diff)}"]
    if diff.status_changed:
        lines.append(f"    status:   {diff.previous_status} -> {diff.status}")
    for finding in diff.new:
        cves = f" ({', '.join(finding.cves)})" if finding.cves else ""
        lines.append(f"    new:      {finding.qid} {finding.severity.value} {finding.title}{cves}")
    for severity, count in diff.unlisted_new.items():
        lines.append(f"    new:      {count} more {severity.value} QID(s) not listed in the report summary")
    for change in diff.changed:
        what = [f"was {change.previous_severity.value}"] if change.previous_severity else []
        what += ["fix available"] if change.fix_available else []
        lines.append(f"    changed:  {change.qid} {change.severity.value} {change.title} ({', '.join(what)})")
    for finding in diff.resolved:
        lines.append(f"    resolved: {finding.qid} {finding.severity.value} {finding.title}")
    for finding in diff.still_open:
        lines.append(f"    open:     {finding.qid} {finding.severity.value} {finding.title}")
    return lines


def render_text(alert: Alert) -> str:
    """The plain-text body of the alert e-mail."""
    lines = ["QScanner found container images that need attention.", ""]
    if alert.rescan:
        lines = ["A scheduled rescan found changed findings in container images that are running.", ""]
    if alert.deployment:
        d = alert.deployment
        lines += [
            f"Deployment: {d.kind} {d.name} (resource group {d.resource_group}, subscription {d.subscription_id})",
            f"Resource:   {d.resource_id or '?'}",
            f"Event time: {d.event_time.isoformat() if d.event_time else '?'}",
        ]
    if alert.is_digest:
        lines += [f"Digest:     {alert.instance_id} ({len(alert.scans)} scan(s))"]
    else:
        lines += [f"Scan:       {alert.instance_id}"]
    lines += [f"Threshold:  {alert.threshold.value}", ""]
    lines.append(f"Needs attention ({len(alert.attention)} of {len(alert.attention) + len(alert.others)} images):")
    for result in alert.attention:
        lines += ["", *_image_lines(alert, result)]
    if alert.others:
        lines += ["", "Other images (nothing at or above the threshold):"]
        lines += [
            f"  {r.image}: {r.status}{NO_REPORT_NOTE if r.status in NO_REPORT_STATUSES else ''}" for r in alert.others
        ]
    if alert.suppressed:
        lines += ["", f"{alert.suppressed} image result(s) left out: already alerted with the same findings."]
    once = "per digest window" if alert.is_digest else "once per scan"
    lines += ["", "--", f"Sent {once} by the ACI image scanner. Reports are in the scan-reports container."]
    return "\n".join(lines) + "\n"


def _image_document(alert: Alert, result: ImageResult, needs_attention: bool) -> dict[str, Any]:
    document = {**result.model_dump(mode="json"), "needs_attention": needs_attention}
    if alert.is_digest or result.image in alert.workloads:
        document["workloads"] = list(alert.workloads.get(result.image, ()))
    if result.image in alert.findings:
        document["new_findings"] = [f.model_dump(mode="json") for f in alert.findings[result.image]]
    if result.image in alert.diffs:
        document["diff"] = alert.diffs[result.image].model_dump(mode="json")
    if result.image in alert.exceptions:
        document["exceptions"] = dict(alert.exceptions[result.image])
    return document


def render_json(alert: Alert, sent_at: datetime) -> bytes:
    """The generic webhook body (UTF-8 JSON)."""
    document: dict[str, Any] = {
        "event": DIGEST_EVENT if alert.is_digest else WEBHOOK_EVENT,
        "idempotency_key": alert.instance_id,
        "instance_id": alert.instance_id,
        "sent_at": sent_at.isoformat(),
        "threshold": alert.threshold.value,
        "deployment": alert.deployment.model_dump(mode="json") if alert.deployment else None,
        "images": [_image_document(alert, r, True) for r in alert.attention]
        + [_image_document(alert, r, False) for r in alert.others],
    }
    if alert.is_digest:
        document["scans"] = list(alert.scans)
        document["suppressed"] = alert.suppressed
    if alert.rescan:
        document["rescan"] = True
    return json.dumps(document, separators=(",", ":")).encode()


def legacy_signature(secret: str, body: bytes) -> str:
    """`X-QScanner-Signature-256`: `sha256=<hex HMAC-SHA256 of the body>` (no timestamp: replayable; kept for old
    receivers).
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """`X-QScan-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (Stripe's scheme)."""
    signed = str(timestamp).encode() + b"." + body
    return f"t={timestamp},v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str, body: bytes, header: str, now: int, tolerance: int = SIGNATURE_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does (docs/results.md): parse `t` and every `v1`, refuse a timestamp outside the tolerance,
    compare in constant time.
    """
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for key, value in parts if key.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, value) for key, value in parts if key.strip() == "v1")
