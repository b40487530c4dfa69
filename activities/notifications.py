"""Alerts: one per scan, or one digest per window (ALERT_DIGEST_MINUTES), never twice for the same findings.

Channels: e-mail (activities/notify_email.py), the signed webhook, Teams and Slack (activities/notify_http.py), sent
by activities/notify_channels.py; digests in activities/notify_digest.py; the
messages are built in core/alerts.py and core/alert_cards.py; the alerts table in activities/notify_store.py.

With ALERT_DIGEST_MINUTES 0 the activity sends the scan's alert on every channel at once (at most once per channel
and scan). Otherwise it queues each image in the alerts table and the `alert_digest` timer (starters/alert_digest.py)
sends one digest per window and channel. Either way an image whose findings at or above the threshold have the same
fingerprint as its last alert is left out (counted as suppressed); a failure is alerted again only with another
reason, or in a later window. Concurrent scans of one image (two workloads deploying it, a rescan and a redeploy
sharing one scan) cannot both alert: each claims the findings with an ETag-conditional write before sending
(activities/notify_claims.py); the loser is suppressed and adds its workloads to the winner's alert while it is open.
The orchestrator's call is unchanged: same activity, same input.

Exceptions (activities/exceptions_store.py) apply first: a finding an active exception matches is taken out of the
result's counts and fingerprint, so it neither crosses the threshold nor makes news; each is counted (`excepted`)
and recorded in the alerts table. The stored results are untouched.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df
from pydantic import BaseModel, ConfigDict, Field

from activities import names, telemetry, wallclock
from activities import notify_rescan as rescan
from activities.activity_registry import activity_registrar, validated
from activities.exceptions_store import ExceptionStore, apply_to_result, inventory_workloads, workloads_of
from activities.notify_channels import CHANNELS, configured_channels, send_all
from activities.notify_claims import Claim
from activities.notify_digest import flush_digests
from activities.notify_email import NotificationError, message_id, send_email
from activities.notify_http import IDEMPOTENCY_HEADER
from activities.notify_store import (
    PENDING_PREFIX,
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
from core.workloads import Workload

log = logging.getLogger(__name__)

SUPPRESSED_KEY, QUEUED_KEY, EXCEPTED_KEY = "suppressed", "queued", "excepted"
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
    rescan: bool = False
    """A rescan (ScanInput.rescan): alerted only when the findings changed (activities/notify_rescan.py)."""


def build_alert(request: NotifyRequest, threshold: Severity) -> Alert | None:
    """The scan's alert before deduplication, None when no image needs notification."""
    attention, others = attention_of(request.results, threshold)
    if not attention:
        return None
    return Alert(request.instance_id, deployment_of(request.event), threshold, attention, others)


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


def _claim(store: AlertStore, item: _Checked, instance_id: str, workloads: tuple[str, ...]) -> Claim | None:
    """Claim the image's findings for this scan before alerting them (activities/notify_claims.py); None when they
    are not comparable (a failure, a report that cannot be read): those are not deduplicated here.
    """
    if item.failure or item.fingerprint is None:
        return None
    return store.claim_alert(item.key, item.fingerprint, instance_id, item.result.image, list(workloads))


def _settle(store: AlertStore, won: list[_Checked], instance_id: str, *, sent: bool) -> None:
    """After the send: the claimed findings are the images' last alert, or (nothing sent) released."""
    for item in won:
        if item.fingerprint and not item.failure:
            settle = store.record_alerted if sent else store.release_alert
            settle(item.key, item.fingerprint, instance_id)


def _apply_exceptions(
    settings: Settings,
    request: NotifyRequest,
    store: AlertStore,
    document: ExceptionsDocument | None,
    counts: dict[str, int],
    *,
    workloads: list[str],
    views: dict[str, dict[str, Any]],
) -> tuple[NotifyRequest, SummaryOf | None]:
    """The request with the active exceptions applied to its results, and the effective report summaries (of any
    result: a rescan's previous one too). `workloads`: the ARM ids the scopes are matched against (none: where the
    inventory says each image runs). `views` gets what was suppressed per image (for the alert's text).
    """
    now = wallclock.now()
    entries = active_entries(document if document is not None else ExceptionStore(settings).load(), now)
    if not entries:
        return request, None
    has_scopes = any(entry.scope is not None for entry in entries)
    summaries: dict[tuple[str, str | None, str | None], ReportSummary | None] = {}
    adjusted: list[ImageResult] = []
    for result in request.results:
        # No deployment of its own (a sweep's or a manual scan): scopes match where the inventory says it runs.
        targets = workloads or (inventory_workloads(settings, result.image) if has_scopes else [])
        effective, summary, applied = apply_to_result(store.report_summary, result, targets, entries, now)
        adjusted.append(effective)
        summaries[(effective.image, effective.digest, effective.report)] = summary
        if applied is not None and applied.suppressed:
            counts[EXCEPTED_KEY] += len(applied.suppressed)
            telemetry.suppressed("exception", len(applied.suppressed))
            key = image_key(result.image, result.digest)
            views[result.image] = applied.view()
            store.record_excepted(request.instance_id, key, result.image, views[result.image])

    def summary_of(result: ImageResult) -> ReportSummary | None:
        found = (result.image, result.digest, result.report)
        if found in summaries:
            return summaries[found]
        return apply_to_result(store.report_summary, result, workloads, entries, now)[1]

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
    placed = {r.image: rescan.running(settings, r.image) for r in request.results} if request.rescan else {}
    scoped = [w.resource_id for found, _ in placed.values() for w in found] or workloads_of(request.event)
    excepted: dict[str, dict[str, Any]] = {}
    request, summary_of = _apply_exceptions(
        settings, request, store, exceptions, counts, workloads=scoped, views=excepted
    )
    alert = build_alert(request, threshold)
    if alert is None:
        return counts
    instance_id = request.instance_id
    reader = summary_of or store.report_summary
    views = rescan.rescan_views(settings, alert.attention, threshold, reader) if request.rescan else {}
    workload = (
        alert.deployment.workload
        if alert.deployment
        else f"{'rescan' if request.rescan else 'manual scan'} {instance_id}"
    )
    fresh: list[_Checked] = []
    for result in alert.attention:
        item = _check(store, result, threshold, summary_of)
        view = views.get(result.image)
        if view is not None and not view.worth_alerting:  # a rescan without changes (failures have no view)
            counts[SUPPRESSED_KEY] += 1
            store.record_suppressed(instance_id, item.key, result.image, rescan.NO_CHANGE)
            continue
        where = rescan.workloads_for(placed, result.image, workload)
        claim = _claim(store, item, instance_id, where)
        repeated = claim is not None and not claim.won  # another scan alerts (or alerted) these findings
        if claim is not None and not claim.won:
            log.info("alert: %s has the findings %s alerts%s", result.image, claim.holder, " (joined)" * claim.joined)
        if settings.alert_digest_minutes:
            anonymous = hashlib.sha256(instance_id.encode()).hexdigest()[:16]
            row_key = f"{PENDING_PREFIX}{item.key}-{item.fingerprint or 'scan-' + anonymous}"
            news = view.diff.new if view else item.findings  # a rescan's new findings are those new since the last scan
            entry = PendingEntry(
                row_key, result, news, diff=view.diff if view else None, exceptions=excepted.get(result.image)
            )
            # A loser whose winner is still queueing creates the entry too (the same row): its workloads never miss it.
            create = claim is None or claim.won or claim.joined
            new = store.enqueue(entry, list(where), instance_id, create=create)
            won = claim is not None and claim.won
            if won and item.fingerprint:
                store.record_alerted(item.key, item.fingerprint, instance_id)  # queued: the digest sends it
            if won or (new and claim is None):
                counts[QUEUED_KEY] += 1
                if request.rescan:
                    rescan.record_rescan_alert(store.table, instance_id, item.key, result.image, entry.diff)
                continue
        elif not repeated:
            fresh.append(item)
            continue
        counts[SUPPRESSED_KEY] += 1
        why = "window" if not repeated else "same findings"
        store.record_suppressed(instance_id, item.key, result.image, why, where)
        telemetry.suppressed("window" if not repeated else "same_findings")
    if not fresh:
        return counts
    return counts | _send(
        settings,
        store,
        request,
        fresh,
        alert=alert,
        views=views,
        placed=placed,
        workload=workload,
        suppressed=counts[SUPPRESSED_KEY],
        excepted=excepted,
        tls_context=tls_context,
    )


def _send(
    settings: Settings,
    store: AlertStore,
    request: NotifyRequest,
    fresh: list[_Checked],
    *,
    alert: Alert,
    views: dict[str, rescan.RescanView],
    placed: dict[str, tuple[list[Workload], bool]],
    workload: str,
    suppressed: int,
    excepted: dict[str, dict[str, Any]],
    tls_context: ssl.SSLContext | None,
) -> dict[str, int]:
    """Send the scan's alert of `fresh` (claimed) on every channel, naming the workloads that joined the claims;
    then settle the claims: alerted, or released when no channel took it (a retry, or a later scan, sends it).
    """
    instance_id = request.instance_id
    workloads: dict[str, tuple[str, ...]] = {}
    for item in fresh:
        own = rescan.workloads_for(placed, item.result.image, workload)
        joined = store.freeze_alert(item.key, item.fingerprint, instance_id) if item.fingerprint else []
        workloads[item.result.image] = tuple(dict.fromkeys([*own, *joined]))
    diffs = {item.result.image: views[item.result.image].diff for item in fresh if item.result.image in views}
    scan_alert = Alert(
        instance_id,
        alert.deployment,
        alert.threshold,
        [item.result for item in fresh],
        alert.others,
        workloads=workloads,
        findings={
            i.result.image: news
            for i in fresh
            if (news := diffs[i.result.image].new if i.result.image in diffs else i.findings)
        },
        suppressed=suppressed,
        diffs=diffs,
        rescan=request.rescan,
        exceptions={image: v for image, v in excepted.items() if any(i.result.image == image for i in fresh)},
    )
    try:
        sent = send_all(settings, scan_alert, store.already_sent, store.mark_sent, tls_context)
    except NotificationError:
        reached = any(store.already_sent(instance_id, channel) for channel, _ in configured_channels(settings))
        _settle(store, fresh, instance_id, sent=reached)
        raise
    _settle(store, fresh, instance_id, sent=True)
    if request.rescan:
        for item in fresh:
            rescan.record_rescan_alert(
                store.table, instance_id, item.key, item.result.image, diffs.get(item.result.image)
            )
    return sent


notifications_blueprint = df.Blueprint()
activity = activity_registrar(notifications_blueprint)


@activity(names.SEND_NOTIFICATIONS)
def send_notifications_activity(payload: dict[str, Any]) -> dict[str, int]:
    """Activity: `NotifyRequest` -> {"email", "webhook", "teams", "slack": 0/1, "suppressed", "queued": n}."""
    settings = get_settings()
    return send_notifications(settings, validated(NotifyRequest, payload), AlertStore(settings))
