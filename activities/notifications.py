"""One alert per scan: a plain-text e-mail over SMTP (STARTTLS) and/or a signed JSON webhook, sent at most once each."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import urlsplit

import azure.durable_functions as df
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from pydantic import BaseModel, ConfigDict, Field

from activities import names
from activities.activity_registry import activity_registrar, validated
from activities.storage_clients import clients_for
from core.report import NO_REPORT_STATUSES, ImageResult, Severity, needs_notification
from core.results import MAX_IMAGES, InstanceId
from core.setting_types import is_loopback
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

EMAIL_CHANNEL = "email"
WEBHOOK_CHANNEL = "webhook"
IMPLICIT_TLS_PORT = 465
NO_REPORT_NOTE = " (this QSCANNER_MODE writes no vulnerability report)"
SMTP_TIMEOUT_SECONDS = 20
WEBHOOK_TIMEOUT_SECONDS = 10
MAX_WEBHOOK_RESPONSE_BYTES = 64 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_HEADER = "X-QScanner-Signature-256"
EVENT_HEADER = "X-QScanner-Event"
WEBHOOK_EVENT = "scan.alert"
MESSAGE_ID_DOMAIN = "qscanner.invalid"
LEDGER_ROW_PREFIX = "notified-"
USER_AGENT = "aci-image-scanner/0.1 (+notifications)"
TARGET_EVENT_KEY = "event"
DEPLOYMENT_ID_KEY = "resource_id"


class NotificationError(RuntimeError):
    """A channel failed; raised after every channel was tried, so the orchestrator's retry options retry it."""


class NotifyRequest(BaseModel):
    """Input of `send_notifications`: the instance id, the scan target or DeploymentEvent (optional), the results."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: InstanceId
    event: dict[str, Any] | None = None
    results: list[ImageResult] = Field(max_length=MAX_IMAGES)
    threshold: Severity | None = None


class Deployment(BaseModel):
    """The parts of a `core.events.DeploymentEvent` an alert shows."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: str = "deployment"
    name: str = "?"
    resource_group: str = "?"
    subscription_id: str = "?"
    resource_id: str | None = None
    event_time: datetime | None = None


class SentLedger(Protocol):
    """Remembers which channels already delivered a scan's alert, so a redelivered activity does not spam."""

    def already_sent(self, instance_id: str, channel: str) -> bool: ...

    def mark_sent(self, instance_id: str, channel: str) -> None: ...


class TableSentLedger:
    """The ledger as rows `notified-<channel>` in the scan's partition of the scans table."""

    def __init__(self, settings: Settings) -> None:
        self._table = clients_for(settings).table(settings.scans_table)

    def already_sent(self, instance_id: str, channel: str) -> bool:
        try:
            self._table.get_entity(instance_id, LEDGER_ROW_PREFIX + channel)
        except ResourceNotFoundError:
            return False
        return True

    def mark_sent(self, instance_id: str, channel: str) -> None:
        row = {"PartitionKey": instance_id, "RowKey": LEDGER_ROW_PREFIX + channel, "sent_at": datetime.now(UTC)}
        with contextlib.suppress(ResourceExistsError):
            self._table.create_entity(row)


@dataclass(frozen=True)
class Alert:
    """What one scan's alert says, rendered for both channels."""

    instance_id: str
    deployment: Deployment | None
    threshold: Severity
    attention: list[ImageResult]
    others: list[ImageResult]

    @property
    def title(self) -> str:
        where = f"{self.deployment.kind} {self.deployment.name}" if self.deployment else "manual scan"
        return f"[QScanner] {len(self.attention)} image(s) need attention in {where}"


def build_alert(request: NotifyRequest, threshold: Severity) -> Alert | None:
    """The alert for a scan, None when no image needs notification."""
    attention = [r for r in request.results if needs_notification(r, threshold)]
    if not attention:
        return None
    others = [r for r in request.results if not needs_notification(r, threshold)]
    return Alert(request.instance_id, deployment_of(request.event), threshold, attention, others)


def deployment_of(event: dict[str, Any] | None) -> Deployment | None:
    """The deployment in a scan target (`{"kind": "deployment", "event": {...}}`) or a bare DeploymentEvent.

    None for a manual image scan (`{"kind": "image", ...}`) or no event.
    """
    if not event:
        return None
    inner = event.get(TARGET_EVENT_KEY)
    candidate = inner if isinstance(inner, dict) else event
    return Deployment.model_validate(candidate) if DEPLOYMENT_ID_KEY in candidate else None


def _image_lines(result: ImageResult, threshold: Severity) -> list[str]:
    counts = result.vulnerabilities
    worst = result.worst_severity or counts.worst
    status = f"{result.status}, worst finding {worst.value if worst else 'none'} (threshold {threshold.value})"
    lines = [f"  {result.image}", f"    status:   {status}"]
    lines.append(
        f"    findings: CRITICAL {counts.CRITICAL}, HIGH {counts.HIGH}, MEDIUM {counts.MEDIUM}, LOW {counts.LOW}"
    )
    for label, value in (("digest", result.digest), ("report", result.report), ("log", result.log)):
        if value:
            lines.append(f"    {label + ':':<9} {value}")
    if result.reason:
        lines.append(f"    reason:   {result.reason}")
    return lines


def render_text(alert: Alert) -> str:
    """The plain-text body of the alert e-mail."""
    lines = ["QScanner found container images that need attention.", ""]
    if alert.deployment:
        d = alert.deployment
        lines += [
            f"Deployment: {d.kind} {d.name} (resource group {d.resource_group}, subscription {d.subscription_id})",
            f"Resource:   {d.resource_id or '?'}",
            f"Event time: {d.event_time.isoformat() if d.event_time else '?'}",
        ]
    lines += [f"Scan:       {alert.instance_id}", f"Threshold:  {alert.threshold.value}", ""]
    lines.append(f"Needs attention ({len(alert.attention)} of {len(alert.attention) + len(alert.others)} images):")
    for result in alert.attention:
        lines += ["", *_image_lines(result, alert.threshold)]
    if alert.others:
        lines += ["", "Other images (nothing at or above the threshold):"]
        lines += [
            f"  {r.image}: {r.status}{NO_REPORT_NOTE if r.status in NO_REPORT_STATUSES else ''}" for r in alert.others
        ]
    lines += ["", "--", "Sent once per scan by the ACI image scanner. Reports are in the scan-reports container."]
    return "\n".join(lines) + "\n"


def render_json(alert: Alert, sent_at: datetime) -> bytes:
    """The webhook body (UTF-8 JSON)."""
    document = {
        "event": WEBHOOK_EVENT,
        "idempotency_key": alert.instance_id,
        "instance_id": alert.instance_id,
        "sent_at": sent_at.isoformat(),
        "threshold": alert.threshold.value,
        "deployment": alert.deployment.model_dump(mode="json") if alert.deployment else None,
        "images": [{**r.model_dump(mode="json"), "needs_attention": True} for r in alert.attention]
        + [{**r.model_dump(mode="json"), "needs_attention": False} for r in alert.others],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def message_id(instance_id: str) -> str:
    """The stable Message-ID of a scan's alert: a resent alert is recognisably the same message."""
    return f"<{instance_id}@{MESSAGE_ID_DOMAIN}>"


def send_email(settings: Settings, alert: Alert, *, tls_context: ssl.SSLContext | None = None) -> None:
    """Send the alert to NOTIFICATION_EMAIL; STARTTLS unless disabled; credentials only over TLS (or loopback)."""
    if not settings.smtp_host or not settings.smtp_from:
        raise NotificationError("SMTP_HOST and SMTP_FROM are required to send e-mail")
    message = EmailMessage()
    message["Subject"] = alert.title
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(settings.notification_email)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(alert.instance_id)
    message["X-QScanner-Instance"] = alert.instance_id
    message.set_content(render_text(alert))
    context = tls_context or ssl.create_default_context()
    implicit_tls = settings.smtp_port == IMPLICIT_TLS_PORT
    smtp_class = smtplib.SMTP_SSL if implicit_tls else smtplib.SMTP
    kwargs: dict[str, Any] = {"context": context} if implicit_tls else {}
    with smtp_class(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS, **kwargs) as smtp:
        smtp.ehlo()
        encrypted = implicit_tls
        if settings.smtp_starttls and not implicit_tls:
            smtp.starttls(context=context)
            smtp.ehlo()
            encrypted = True
        if settings.smtp_username and settings.smtp_password:
            if not encrypted and not is_loopback(settings.smtp_host):
                raise NotificationError("refusing to send SMTP credentials without TLS")
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


def send_webhook(settings: Settings, alert: Alert, *, tls_context: ssl.SSLContext | None = None) -> None:
    """POST the alert as JSON; HMAC-SHA256 signature when a secret is set; any non-2xx answer raises."""
    if settings.notify_webhook_url is None:
        raise NotificationError("NOTIFY_WEBHOOK_URL is not set")
    body = render_json(alert, datetime.now(UTC))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        IDEMPOTENCY_HEADER: alert.instance_id,
        EVENT_HEADER: WEBHOOK_EVENT,
    }
    if settings.notify_webhook_secret is not None:
        key = settings.notify_webhook_secret.get_secret_value().encode()
        headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    url = urlsplit(settings.notify_webhook_url.get_secret_value())
    target = url.path or "/"
    if url.query:
        target += "?" + url.query
    connection: http.client.HTTPConnection
    if url.scheme == "https":
        context = tls_context or ssl.create_default_context()
        connection = http.client.HTTPSConnection(url.netloc, timeout=WEBHOOK_TIMEOUT_SECONDS, context=context)
    else:
        connection = http.client.HTTPConnection(url.netloc, timeout=WEBHOOK_TIMEOUT_SECONDS)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_WEBHOOK_RESPONSE_BYTES)
    except OSError as error:
        raise NotificationError(f"webhook unreachable: {type(error).__name__}") from None
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise NotificationError(f"webhook answered {response.status}")


def send_notifications(
    settings: Settings, request: NotifyRequest, ledger: SentLedger, *, tls_context: ssl.SSLContext | None = None
) -> dict[str, int]:
    """Alert once per scan on every configured channel; returns how many messages stand sent per channel (0 or 1).

    Every channel is tried before a failure is raised; a channel that already delivered this scan's alert (an
    activity redelivered or retried) is not sent again.
    """
    counts = {EMAIL_CHANNEL: 0, WEBHOOK_CHANNEL: 0}
    alert = build_alert(request, Severity(request.threshold or settings.notify_severity_threshold))
    if alert is None:
        return counts
    channels: Sequence[tuple[str, bool, Any]] = (
        (EMAIL_CHANNEL, bool(settings.notification_email), send_email),
        (WEBHOOK_CHANNEL, settings.notify_webhook_url is not None, send_webhook),
    )
    failures: list[str] = []
    for channel, configured, send in channels:
        if not configured:
            continue
        if ledger.already_sent(alert.instance_id, channel):
            counts[channel] = 1
            continue
        try:
            send(settings, alert, tls_context=tls_context)
        except (NotificationError, smtplib.SMTPException, OSError) as error:
            log.warning("%s alert for %s failed: %s", channel, alert.instance_id, type(error).__name__)
            failures.append(f"{channel}: {error if isinstance(error, NotificationError) else type(error).__name__}")
            continue
        ledger.mark_sent(alert.instance_id, channel)
        counts[channel] = 1
    if failures:
        raise NotificationError("; ".join(failures))
    return counts


notifications_blueprint = df.Blueprint()
activity = activity_registrar(notifications_blueprint)


@activity(names.SEND_NOTIFICATIONS)
def send_notifications_activity(payload: dict[str, Any]) -> dict[str, int]:
    """Activity: `NotifyRequest` -> {"email": n, "webhook": n}."""
    settings = get_settings()
    return send_notifications(settings, validated(NotifyRequest, payload), TableSentLedger(settings))
