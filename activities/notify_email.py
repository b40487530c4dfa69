"""The alert e-mail: plain text over SMTP with STARTTLS or implicit TLS; plain text only to a loopback relay that
SMTP_ALLOW_PLAINTEXT allows.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from core.alerts import Alert, render_text
from core.setting_types import is_loopback
from core.settings import Settings
from core.settings_notify import IMPLICIT_TLS_PORT, PLAINTEXT_REFUSED

SMTP_TIMEOUT_SECONDS = 20
MESSAGE_ID_DOMAIN = "qscanner.invalid"


class NotificationError(RuntimeError):
    """A channel failed; raised after every channel was tried, so the orchestrator's retry options retry it."""


def message_id(instance_id: str) -> str:
    """The stable Message-ID of an alert: a resent alert is recognisably the same message."""
    return f"<{instance_id}@{MESSAGE_ID_DOMAIN}>"


def send_email(settings: Settings, alert: Alert, *, tls_context: ssl.SSLContext | None = None) -> None:
    """Send the alert to NOTIFICATION_EMAIL; STARTTLS unless disabled; credentials only over TLS (or loopback)."""
    if not settings.smtp_host or not settings.smtp_from:
        raise NotificationError("SMTP_HOST and SMTP_FROM are required to send e-mail")
    implicit_tls = settings.smtp_port == IMPLICIT_TLS_PORT
    plaintext = not settings.smtp_starttls and not implicit_tls
    if plaintext and not (settings.smtp_allow_plaintext and is_loopback(settings.smtp_host)):
        raise NotificationError(PLAINTEXT_REFUSED)
    message = EmailMessage()
    message["Subject"] = alert.title
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(settings.notification_email)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(alert.instance_id)
    message["X-QScanner-Instance"] = alert.instance_id
    message.set_content(render_text(alert))
    context = tls_context or ssl.create_default_context()
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
