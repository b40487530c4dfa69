"""Alert channels: which are configured (e-mail, signed webhook, Teams, Slack) and sending one alert on each of them.

Shared by the per-scan alerts (activities/notifications.py) and the digests (activities/notify_digest.py). Each
channel is sent at most once per alert id (the `sent`/`mark` ledger the caller passes).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable

from activities import telemetry
from activities.notify_email import NotificationError, send_email
from activities.notify_http import send_slack, send_teams, send_webhook
from core.alerts import Alert
from core.settings import Settings

log = logging.getLogger(__name__)

EMAIL_CHANNEL, WEBHOOK_CHANNEL, TEAMS_CHANNEL, SLACK_CHANNEL = "email", "webhook", "teams", "slack"
CHANNELS = (EMAIL_CHANNEL, WEBHOOK_CHANNEL, TEAMS_CHANNEL, SLACK_CHANNEL)


def configured_channels(settings: Settings) -> list[tuple[str, Callable[..., None]]]:
    configured = (
        (EMAIL_CHANNEL, bool(settings.notification_email), send_email),
        (WEBHOOK_CHANNEL, settings.notify_webhook_url is not None, send_webhook),
        (TEAMS_CHANNEL, settings.notify_teams_url is not None, send_teams),
        (SLACK_CHANNEL, settings.notify_slack_url is not None, send_slack),
    )
    return [(channel, send) for channel, on, send in configured if on]


def send_all(
    settings: Settings,
    alert: Alert,
    sent: Callable[[str, str], bool],
    mark: Callable[[str, str], None],
    tls_context: ssl.SSLContext | None,
) -> dict[str, int]:
    """Every configured channel once per alert id; every channel is tried before a failure is raised."""
    counts = dict.fromkeys(CHANNELS, 0)
    failures: list[str] = []
    for channel, send in configured_channels(settings):
        if sent(alert.instance_id, channel):
            counts[channel] = 1
            continue
        try:
            send(settings, alert, tls_context=tls_context)
        except (NotificationError, smtplib.SMTPException, OSError) as error:
            log.warning("%s alert for %s failed: %s", channel, alert.instance_id, type(error).__name__)
            failures.append(f"{channel}: {error if isinstance(error, NotificationError) else type(error).__name__}")
            telemetry.alert(channel, digest=alert.is_digest, sent=False)
            continue
        mark(alert.instance_id, channel)
        telemetry.alert(channel, digest=alert.is_digest, sent=True)
        counts[channel] = 1
    if failures:
        raise NotificationError("; ".join(failures))
    return counts
