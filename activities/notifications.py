"""Alerts: one per scan, or one digest per window (ALERT_DIGEST_MINUTES), never twice for the same findings.

Channels: e-mail (activities/notify_email.py), the signed webhook, Teams and Slack (activities/notify_http.py); the
messages are built in core/alerts.py and core/alert_cards.py; the alerts table in activities/notify_store.py.

With ALERT_DIGEST_MINUTES 0 the activity sends the scan's alert on every channel at once (at most once per channel
and scan). Otherwise it queues each image in the alerts table and the `alert_digest` timer (starters/alert_digest.py)
sends one digest per window and channel. Either way an image whose findings at or above the threshold have the same
fingerprint as its last alert is left out (counted as suppressed); a failure is alerted again only with another
reason, or in a later window. The orchestrator's call is unchanged: same activity, same input.

Exceptions (activities/exceptions_store.py) apply first: a finding an active exception matches is taken out of the
result's counts and fingerprint, so it neither crosses the threshold nor makes news; each is counted (`excepted`)
and recorded in the alerts table. The stored results are untouched.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df
from azure.core.exceptions import ResourceModifiedError
from azure.data.tables import TableEntity
from pydantic import BaseModel, ConfigDict, Field

from activities import names, wallclock
from activities.activity_registry import activity_registrar, validated
from activities.exceptions_store import ExceptionStore, apply_to_result, inventory_workloads, workloads_of
from activities.notify_email import NotificationError, message_id, send_email
from activities.notify_http import IDEMPOTENCY_HEADER, send_slack, send_teams, send_webhook
from activities.notify_store import (
    HEADER_PREFIX,
    PENDING_PREFIX,
    STATE_OPEN,
    STATE_SENDING,
    STATE_SENT,
    AlertStore,
    PendingEntry,
)
from core.alerts import (
    LEGACY_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    Alert,
    Deployment,
    attention_of,
    deployment_of,
    failure_fingerprint,
    findings_at_or_above,
    findings_fingerprint,
    is_failure,
    render_json,
    render_text,
)
from core.exceptions_doc import ExceptionsDocument, active_entries
from core.naming import image_key
from core.report import Finding, ImageResult, ReportSummary, Severity
from core.results import MAX_IMAGES, InstanceId
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

EMAIL_CHANNEL, WEBHOOK_CHANNEL, TEAMS_CHANNEL, SLACK_CHANNEL = "email", "webhook", "teams", "slack"
CHANNELS = (EMAIL_CHANNEL, WEBHOOK_CHANNEL, TEAMS_CHANNEL, SLACK_CHANNEL)
SUPPRESSED_KEY, QUEUED_KEY, EXCEPTED_KEY = "suppressed", "queued", "excepted"
DIGEST_ID_PREFIX = "digest-"
TableSentLedger = AlertStore  # the name the per-scan ledger had
__all__ = [
    "IDEMPOTENCY_HEADER",
    "LEGACY_SIGNATURE_HEADER",
    "SIGNATURE_HEADER",
    "Alert",
    "AlertStore",
    "Deployment",
    "NotificationError",
    "NotifyRequest",
    "TableSentLedger",
    "build_alert",
    "flush_digests",
    "message_id",
    "render_json",
    "render_text",
    "send_email",
    "send_notifications",
]


class NotifyRequest(BaseModel):
    """Input of `send_notifications`: the instance id, the scan target or DeploymentEvent (optional), the results."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: InstanceId
    event: dict[str, Any] | None = None
    results: list[ImageResult] = Field(max_length=MAX_IMAGES)
    threshold: Severity | None = None


def build_alert(request: NotifyRequest, threshold: Severity) -> Alert | None:
    """The scan's alert before deduplication, None when no image needs notification."""
    attention, others = attention_of(request.results, threshold)
    if not attention:
        return None
    return Alert(request.instance_id, deployment_of(request.event), threshold, attention, others)


def _channels(settings: Settings) -> list[tuple[str, Callable[..., None]]]:
    configured = (
        (EMAIL_CHANNEL, bool(settings.notification_email), send_email),
        (WEBHOOK_CHANNEL, settings.notify_webhook_url is not None, send_webhook),
        (TEAMS_CHANNEL, settings.notify_teams_url is not None, send_teams),
        (SLACK_CHANNEL, settings.notify_slack_url is not None, send_slack),
    )
    return [(channel, send) for channel, on, send in configured if on]


def _send_all(
    settings: Settings,
    alert: Alert,
    sent: Callable[[str, str], bool],
    mark: Callable[[str, str], None],
    tls_context: ssl.SSLContext | None,
) -> dict[str, int]:
    """Every configured channel once per alert id; every channel is tried before a failure is raised."""
    counts = dict.fromkeys(CHANNELS, 0)
    failures: list[str] = []
    for channel, send in _channels(settings):
        if sent(alert.instance_id, channel):
            counts[channel] = 1
            continue
        try:
            send(settings, alert, tls_context=tls_context)
        except (NotificationError, smtplib.SMTPException, OSError) as error:
            log.warning("%s alert for %s failed: %s", channel, alert.instance_id, type(error).__name__)
            failures.append(f"{channel}: {error if isinstance(error, NotificationError) else type(error).__name__}")
            continue
        mark(alert.instance_id, channel)
        counts[channel] = 1
    if failures:
        raise NotificationError("; ".join(failures))
    return counts


@dataclass(frozen=True)
class _Checked:
    """One image that needs attention: its key, fingerprint (None: not comparable) and new findings."""

    result: ImageResult
    key: str
    fingerprint: str | None
    findings: tuple[Finding, ...]
    failure: bool


SummaryOf = Callable[[ImageResult], ReportSummary | None]


def _check(
    store: AlertStore, result: ImageResult, threshold: Severity, summary_of: SummaryOf | None = None
) -> _Checked:
    key = image_key(result.image, result.digest)
    if is_failure(result):
        return _Checked(result, key, failure_fingerprint(result), (), True)
    summary = (summary_of or store.report_summary)(result)
    if summary is None:
        return _Checked(result, key, None, (), False)
    return _Checked(
        result, key, findings_fingerprint(summary, threshold), findings_at_or_above(summary, threshold), False
    )


def _already_alerted(store: AlertStore, item: _Checked, instance_id: str) -> bool:
    """The image's findings are those of its last alert, from another scan (a retry of the same scan is not)."""
    if item.failure or item.fingerprint is None:
        return False
    last = store.last_alerted(item.key)
    return last is not None and last[0] == item.fingerprint and last[1] != instance_id


def _apply_exceptions(
    settings: Settings,
    request: NotifyRequest,
    store: AlertStore,
    document: ExceptionsDocument | None,
    counts: dict[str, int],
    *,
    views: dict[str, dict[str, Any]],
) -> tuple[NotifyRequest, SummaryOf | None]:
    """The request with the active exceptions applied to its results, and the effective report summaries; `views`
    gets what was suppressed per image (for the alert's text).
    """
    now = wallclock.now()
    entries = active_entries(document if document is not None else ExceptionStore(settings).load(), now)
    if not entries:
        return request, None
    workloads = workloads_of(request.event)
    scoped = any(entry.scope is not None for entry in entries)
    summaries: dict[tuple[str, str | None, str | None], ReportSummary | None] = {}
    adjusted: list[ImageResult] = []
    for result in request.results:
        # No deployment of its own (a sweep's or a manual scan): scopes match where the inventory says it runs.
        targets = workloads or (inventory_workloads(settings, result.image) if scoped else [])
        effective, summary, applied = apply_to_result(store.report_summary, result, targets, entries, now)
        adjusted.append(effective)
        summaries[(effective.image, effective.digest, effective.report)] = summary
        if applied is not None and applied.suppressed:
            counts[EXCEPTED_KEY] += len(applied.suppressed)
            key = image_key(result.image, result.digest)
            views[result.image] = applied.view()
            store.record_excepted(request.instance_id, key, result.image, views[result.image])

    def summary_of(result: ImageResult) -> ReportSummary | None:
        found = (result.image, result.digest, result.report)
        return summaries[found] if found in summaries else store.report_summary(result)

    return request.model_copy(update={"results": adjusted}), summary_of


def send_notifications(
    settings: Settings,
    request: NotifyRequest,
    store: AlertStore,
    *,
    tls_context: ssl.SSLContext | None = None,
    exceptions: ExceptionsDocument | None = None,
) -> dict[str, int]:
    """Alert (or queue for the digest) what is new in a scan; returns messages per channel (0 or 1), `suppressed`
    (image results left out as already alerted), `queued` (entries added to the digest queue) and `excepted`
    (findings left out by exceptions; `exceptions`: the document, else the stored one).
    """
    counts = dict.fromkeys((*CHANNELS, SUPPRESSED_KEY, QUEUED_KEY, EXCEPTED_KEY), 0)
    threshold = Severity(request.threshold or settings.notify_severity_threshold)
    views: dict[str, dict[str, Any]] = {}
    request, summary_of = _apply_exceptions(settings, request, store, exceptions, counts, views=views)
    alert = build_alert(request, threshold)
    if alert is None:
        return counts
    instance_id = request.instance_id
    workload = alert.deployment.workload if alert.deployment else f"manual scan {instance_id}"
    fresh: list[_Checked] = []
    for result in alert.attention:
        item = _check(store, result, threshold, summary_of)
        repeated = _already_alerted(store, item, instance_id)
        if settings.alert_digest_minutes:
            anonymous = hashlib.sha256(instance_id.encode()).hexdigest()[:16]
            row_key = f"{PENDING_PREFIX}{item.key}-{item.fingerprint or 'scan-' + anonymous}"
            entry = PendingEntry(row_key, result, item.findings, exceptions=views.get(result.image))
            new = store.enqueue(entry, workload, instance_id, create=not repeated)
            if new and not repeated:
                counts[QUEUED_KEY] += 1
                if item.fingerprint and not item.failure:
                    store.record_alerted(item.key, item.fingerprint, instance_id, result.image)
                continue
        elif not repeated:
            fresh.append(item)
            continue
        counts[SUPPRESSED_KEY] += 1
        store.record_suppressed(instance_id, item.key, result.image, "window" if not repeated else "same findings")
    if not fresh:
        return counts
    scan_alert = Alert(
        instance_id,
        alert.deployment,
        threshold,
        [item.result for item in fresh],
        alert.others,
        workloads={item.result.image: (workload,) for item in fresh},
        findings={item.result.image: item.findings for item in fresh if item.findings},
        suppressed=counts[SUPPRESSED_KEY],
        exceptions={image: view for image, view in views.items() if any(i.result.image == image for i in fresh)},
    )
    counts |= _send_all(settings, scan_alert, store.already_sent, store.mark_sent, tls_context)
    for item in fresh:
        if item.fingerprint and not item.failure:
            store.record_alerted(item.key, item.fingerprint, instance_id, item.result.image)
    return counts


def _digest_alert(settings: Settings, digest_id: str, entries: list[PendingEntry]) -> Alert:
    entries = sorted(entries, key=lambda e: (e.result.image, e.row_key))
    return Alert(
        digest_id,
        None,
        Severity(settings.notify_severity_threshold),
        [e.result for e in entries],
        [],
        workloads={e.result.image: tuple(e.workloads) for e in entries},
        findings={e.result.image: e.findings for e in entries if e.findings},
        scans=tuple(sorted({scan for e in entries for scan in e.scans})),
        exceptions={e.result.image: e.exceptions for e in entries if e.exceptions},
    )


def _claim_new(store: AlertStore, rows: list[TableEntity]) -> str | None:
    """Open a digest over the unclaimed entries (its id from their keys: a rerun opens the same one)."""
    unclaimed = sorted(
        f"{r['RowKey']} {r.get('scans', '')}"
        for r in rows
        if str(r["RowKey"]).startswith(PENDING_PREFIX) and not r.get("digest")
    )
    if not unclaimed:
        return None
    # The scans are part of the id: the same image and failure queued again in a later window is a new digest.
    digest_id = DIGEST_ID_PREFIX + hashlib.sha256("\n".join(unclaimed).encode()).hexdigest()[:24]
    store.set_header(digest_id, STATE_OPEN)
    return digest_id


def _send_digest(
    settings: Settings, store: AlertStore, digest_id: str, state: str, tls_context: ssl.SSLContext | None
) -> dict[str, int]:
    if state == STATE_OPEN:  # claim what is waiting, then no more: what a channel got must not grow afterwards
        for row in store.queue_rows():
            if str(row["RowKey"]).startswith(PENDING_PREFIX) and not row.get("digest"):
                try:
                    store.claim(row, digest_id)
                except ResourceModifiedError:
                    log.info("alert digest: %s changed while claimed; it waits for the next window", row["RowKey"])
        store.set_header(digest_id, STATE_SENDING)
    claimed = [r for r in store.queue_rows() if r.get("digest") == digest_id]
    entries = [PendingEntry.from_row(r) for r in claimed]
    counts = dict.fromkeys(CHANNELS, 0)
    if entries:
        counts = _send_all(
            settings,
            _digest_alert(settings, digest_id, entries),
            store.digest_sent,
            store.mark_digest_sent,
            tls_context,
        )
    store.set_header(digest_id, STATE_SENT)
    for entry in entries:
        store.delete_row(entry.row_key)
    log.info("alert digest %s: %d image(s), sent %s", digest_id, len(entries), counts)
    return counts


def flush_digests(settings: Settings, store: AlertStore, *, tls_context: ssl.SSLContext | None = None) -> list[str]:
    """Send the digest of what is waiting (finishing first any digest a crashed run left); returns the digest ids.

    One run is one window: the timer runs once per ALERT_DIGEST_MINUTES. A channel that fails raises after the
    others were tried; the digest stays `sending` and the next run sends it to the channels that still lack it.
    """
    done: list[str] = []
    rows = store.queue_rows()
    unfinished = sorted(
        (str(r["RowKey"])[len(HEADER_PREFIX) :], str(r.get("state")))
        for r in rows
        if str(r["RowKey"]).startswith(HEADER_PREFIX) and r.get("state") in (STATE_OPEN, STATE_SENDING)
    )
    for digest_id, state in unfinished:
        _send_digest(settings, store, digest_id, state, tls_context)
        done.append(digest_id)
    new = _claim_new(store, store.queue_rows() if unfinished else rows)
    if new:
        _send_digest(settings, store, new, STATE_OPEN, tls_context)
        done.append(new)
    return done


notifications_blueprint = df.Blueprint()
activity = activity_registrar(notifications_blueprint)


@activity(names.SEND_NOTIFICATIONS)
def send_notifications_activity(payload: dict[str, Any]) -> dict[str, int]:
    """Activity: `NotifyRequest` -> {"email", "webhook", "teams", "slack": 0/1, "suppressed", "queued": n}."""
    settings = get_settings()
    return send_notifications(settings, validated(NotifyRequest, payload), AlertStore(settings))
