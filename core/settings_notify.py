"""The notification settings (a base of `core.settings.Settings`, kept apart so settings.py stays small).

Every variable is documented in docs/configuration.md ("Notifications"); webhook URLs are secrets (`SecretStr`,
never logged) and must be https, or http to a loopback host (devhost and tests only).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from core.options import Severity
from core.setting_types import (
    EmailAddress,
    EmailList,
    HostName,
    Printable,
    Problem,
    SecretUrl,
    TableName,
    Url,
    is_loopback,
    strip_upper,
)

IMPLICIT_TLS_PORT = 465
MAX_DIGEST_MINUTES = 24 * 60
MINUTES_PER_HOUR = 60
PLAINTEXT_REFUSED = "plain-text SMTP is refused; set SMTP_ALLOW_PLAINTEXT for a loopback relay"


def digest_minutes_problem(minutes: int) -> str | None:
    """ALERT_DIGEST_MINUTES must give an NCRONTAB schedule whose runs are evenly spaced: 0 (off), a divisor of 60,
    or whole hours dividing 24.
    """
    if minutes == 0 or MINUTES_PER_HOUR % minutes == 0:
        return None
    if minutes % MINUTES_PER_HOUR == 0 and MAX_DIGEST_MINUTES % minutes == 0:
        return None
    return "must be 0, a divisor of 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60) or whole hours dividing 24"


def digest_schedule(minutes: int) -> str:
    """The NCRONTAB schedule of the digest timer: one run per window (daily when digests are off: it then only
    sends what an earlier, non-zero setting left pending).
    """
    if minutes == 0:
        return "0 0 0 * * *"
    if minutes < MINUTES_PER_HOUR:
        return f"0 */{minutes} * * * *"
    hours = minutes // MINUTES_PER_HOUR
    return "0 0 * * * *" if hours == 1 else f"0 0 */{hours} * * *"


class NotificationSettings(BaseModel):
    """E-mail, the signed webhook, Teams and Slack, and the alert window; `x_y` is variable `X_Y`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    notification_email: EmailList = ()
    notify_severity_threshold: Annotated[Severity, BeforeValidator(strip_upper)] = "HIGH"
    smtp_host: HostName | None = None
    smtp_port: int = Field(default=587, ge=1, le=65_535)
    smtp_username: Printable | None = None
    smtp_password: SecretStr | None = None
    smtp_from: EmailAddress | None = None
    smtp_starttls: bool = True
    smtp_allow_plaintext: bool = False
    notify_webhook_url: SecretUrl | None = None
    notify_webhook_secret: SecretStr | None = None
    notify_teams_url: SecretUrl | None = None
    notify_slack_url: SecretUrl | None = None
    alert_digest_minutes: int = Field(default=0, ge=0, le=MAX_DIGEST_MINUTES)
    alerts_table: TableName = "alerts"
    public_base_url: Url | None = None


def notification_problems(settings: NotificationSettings) -> list[Problem]:
    """Rules that span the notification variables, checked on validated settings."""
    problems: list[Problem] = []
    reason = digest_minutes_problem(settings.alert_digest_minutes)
    if reason:
        problems.append(("ALERT_DIGEST_MINUTES", reason))
    plaintext = not settings.smtp_starttls and settings.smtp_port != IMPLICIT_TLS_PORT
    if settings.smtp_host and plaintext:
        if not settings.smtp_allow_plaintext:
            problems.append(
                ("SMTP_STARTTLS", "plain-text SMTP is refused; set SMTP_ALLOW_PLAINTEXT for a loopback relay")
            )
        elif not is_loopback(settings.smtp_host):
            problems.append(("SMTP_ALLOW_PLAINTEXT", "allows plain-text SMTP only to a loopback SMTP_HOST"))
    return problems
