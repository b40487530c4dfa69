"""The HTTP channels: the signed generic webhook, Microsoft Teams (Workflows webhook) and Slack (incoming webhook).

Every URL is a secret (it carries the receiver's token): it is never logged, and errors name only the channel.
"""

from __future__ import annotations

import http.client
import ssl
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from pydantic import SecretStr

from activities.notify_email import NotificationError
from core.alert_cards import slack_payload, teams_payload
from core.alerts import (
    DIGEST_EVENT,
    LEGACY_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    WEBHOOK_EVENT,
    Alert,
    legacy_signature,
    render_json,
    signature,
)
from core.settings import Settings

WEBHOOK_TIMEOUT_SECONDS = 10
MAX_WEBHOOK_RESPONSE_BYTES = 64 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-QScanner-Event"
USER_AGENT = "aci-image-scanner/0.1 (+notifications)"


def post_json(
    channel: str,
    url: SecretStr,
    body: bytes,
    headers: dict[str, str],
    *,
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """POST `body` as JSON; any non-2xx answer or connection error raises `NotificationError` naming `channel`."""
    parts = urlsplit(url.get_secret_value())
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = tls_context or ssl.create_default_context()
        connection = http.client.HTTPSConnection(parts.netloc, timeout=WEBHOOK_TIMEOUT_SECONDS, context=context)
    else:  # settings accept http only for a loopback host
        connection = http.client.HTTPConnection(parts.netloc, timeout=WEBHOOK_TIMEOUT_SECONDS)
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        connection.request("POST", target, body=body, headers=all_headers)
        response = connection.getresponse()
        response.read(MAX_WEBHOOK_RESPONSE_BYTES)
    except OSError as error:
        raise NotificationError(f"{channel} unreachable: {type(error).__name__}") from None
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise NotificationError(f"{channel} answered {response.status}")


def send_webhook(settings: Settings, alert: Alert, *, tls_context: ssl.SSLContext | None = None) -> None:
    """The generic JSON webhook; with NOTIFY_WEBHOOK_SECRET, signed with a timestamp (and the legacy body signature)."""
    if settings.notify_webhook_url is None:
        raise NotificationError("NOTIFY_WEBHOOK_URL is not set")
    body = render_json(alert, datetime.now(UTC))
    headers = {IDEMPOTENCY_HEADER: alert.instance_id, EVENT_HEADER: DIGEST_EVENT if alert.is_digest else WEBHOOK_EVENT}
    if settings.notify_webhook_secret is not None:
        secret = settings.notify_webhook_secret.get_secret_value()
        headers[SIGNATURE_HEADER] = signature(secret, body, int(time.time()))
        headers[LEGACY_SIGNATURE_HEADER] = legacy_signature(secret, body)
    post_json("webhook", settings.notify_webhook_url, body, headers, tls_context=tls_context)


def send_teams(settings: Settings, alert: Alert, *, tls_context: ssl.SSLContext | None = None) -> None:
    """An Adaptive Card to the Teams Workflows webhook (NOTIFY_TEAMS_URL)."""
    if settings.notify_teams_url is None:
        raise NotificationError("NOTIFY_TEAMS_URL is not set")
    body = teams_payload(alert, settings.public_base_url)
    post_json("teams", settings.notify_teams_url, body, {}, tls_context=tls_context)


def send_slack(settings: Settings, alert: Alert, *, tls_context: ssl.SSLContext | None = None) -> None:
    """A Block Kit message to the Slack incoming webhook (NOTIFY_SLACK_URL)."""
    if settings.notify_slack_url is None:
        raise NotificationError("NOTIFY_SLACK_URL is not set")
    body = slack_payload(alert, settings.public_base_url)
    post_json("slack", settings.notify_slack_url, body, {}, tls_context=tls_context)
