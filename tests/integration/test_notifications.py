"""Alerts through a real SMTP server (STARTTLS with a trustme certificate, AUTH) and a loopback webhook receiver."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from activities.notifications import (
    IDEMPOTENCY_HEADER,
    LEGACY_SIGNATURE_HEADER,
    NotificationError,
    NotifyRequest,
    TableSentLedger,
    build_alert,
    render_text,
    send_notifications,
)
from core.report import ImageResult, Severity
from core.settings import Settings
from devhost.azurite import Azurite, free_port
from tests.integration.test_results_store_support import azurite_settings
from tests.loopback import loopback_http_server

pytestmark = pytest.mark.azurite

SMTP_USER = "scanner@example.com"
SMTP_PASSWORD = "smtp-password-do-not-leak"
WEBHOOK_SECRET = "webhook-secret-do-not-leak"
WEBHOOK_TOKEN = "url-token-do-not-leak"
EVENT = {
    "kind": "containerApp",
    "subscription_id": "00000000-0000-0000-0000-000000000001",
    "resource_group": "rg-apps",
    "name": "shop",
    "resource_id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-apps/providers/"
    "Microsoft.App/containerApps/shop",
    "correlation_id": "c0ffee",
    "event_time": "2026-10-02T08:00:00Z",
}
REPORT_URL = "http://127.0.0.1:10000/devstoreaccount1/scan-reports/abc/scan-n1/report.json"


@dataclass
class SmtpServer:
    port: int
    messages: list[Message] = field(default_factory=list)
    logins: list[tuple[bytes, bool]] = field(default_factory=list)


@pytest.fixture(scope="module")
def tls() -> tuple[trustme.CA, ssl.SSLContext]:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    return ca, server_context


@pytest.fixture
def client_tls(tls: tuple[trustme.CA, ssl.SSLContext]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    tls[0].configure_trust(context)
    return context


@pytest.fixture
def smtp_server(tls: tuple[trustme.CA, ssl.SSLContext]) -> Iterator[SmtpServer]:
    state = SmtpServer(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            state.messages.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        state.logins.append((data.login, session.ssl is not None))
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=state.port,
        tls_context=tls[1],
        require_starttls=True,
        auth_required=True,
        authenticator=authenticate,
    )
    controller.start()
    yield state
    controller.stop()


@dataclass
class Receiver:
    url: str = ""
    status: int = 204
    posts: list[tuple[dict[str, str], bytes, str]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.posts.append((dict(self.headers.items()), body, self.path))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with loopback_http_server(Handler) as base:
        state.url = f"{base}/hooks/scan?token={WEBHOOK_TOKEN}"
        yield state


def _settings(azurite: Azurite, smtp: SmtpServer, receiver: Receiver, **extra: str) -> Settings:
    env = {
        "NOTIFICATION_EMAIL": "secops@example.com,oncall@example.com",
        "SMTP_HOST": "localhost",
        "SMTP_PORT": str(smtp.port),
        "SMTP_USERNAME": SMTP_USER,
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "SMTP_FROM": "qscanner@example.com",
        "NOTIFY_WEBHOOK_URL": receiver.url,
        "NOTIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "NOTIFY_SEVERITY_THRESHOLD": "HIGH",
    }
    return azurite_settings(azurite, **{**env, **extra})


def _result(image: str, status: str, **counts: int) -> ImageResult:
    worst = next((s for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW") if counts.get(s)), None)
    return ImageResult.model_validate(
        {
            "image": image,
            "status": status,
            "vulnerabilities": counts,
            "worst_severity": worst,
            "report": REPORT_URL if status == "completed" else None,
            "instance_id": "scan-n1",
            "reason": "scanner group timed out after 1800 s" if status == "timed_out" else None,
        }
    )


def _sent(counts: dict[str, int]) -> dict[str, int]:
    """The e-mail and webhook counts (the answer also has teams, slack, suppressed and queued)."""
    return {channel: counts[channel] for channel in ("email", "webhook")}


REQUEST = NotifyRequest(
    instance_id="scan-n1",
    event={"kind": "deployment", "event": EVENT},  # the orchestration's scan target
    results=[
        _result("docker.io/library/nginx:1.27", "completed", CRITICAL=1, HIGH=2, LOW=5),
        _result("docker.io/library/busybox:1.36", "completed", LOW=1),
        _result("docker.io/library/redis:7", "timed_out"),
    ],
)


def test_one_email_and_one_signed_webhook_per_scan(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver)
    ledger = TableSentLedger(settings)

    counts = send_notifications(settings, REQUEST, ledger, tls_context=client_tls)

    assert _sent(counts) == {"email": 1, "webhook": 1}
    assert smtp_server.logins == [(SMTP_USER.encode(), True)]  # AUTH happened, and only after STARTTLS
    [message] = smtp_server.messages
    assert message["Message-ID"] == "<scan-n1@qscanner.invalid>"
    assert message["To"] == "secops@example.com, oncall@example.com"
    assert message["Subject"] == "[QScanner] 2 image(s) need attention in containerApp shop"
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Deployment: containerApp shop (resource group rg-apps" in text
    assert "docker.io/library/nginx:1.27" in text
    assert "findings: CRITICAL 1, HIGH 2, MEDIUM 0, LOW 5" in text
    assert f"report:   {REPORT_URL}" in text
    assert "timed_out" in text
    assert "scanner group timed out after 1800 s" in text
    assert "docker.io/library/busybox:1.36: completed" in text

    [(headers, body, path)] = receiver.posts
    assert path == f"/hooks/scan?token={WEBHOOK_TOKEN}"
    assert headers[IDEMPOTENCY_HEADER] == "scan-n1"
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[LEGACY_SIGNATURE_HEADER], expected)
    document = json.loads(body)
    assert document["idempotency_key"] == "scan-n1"
    assert document["deployment"]["name"] == "shop"
    assert [(i["image"], i["needs_attention"]) for i in document["images"]] == [
        ("docker.io/library/nginx:1.27", True),
        ("docker.io/library/redis:7", True),
        ("docker.io/library/busybox:1.36", False),
    ]
    assert document["images"][0]["vulnerabilities"] == {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 0, "LOW": 5}

    everything = text + body.decode() + str(message)
    for secret in (SMTP_PASSWORD, WEBHOOK_SECRET, WEBHOOK_TOKEN):
        assert secret not in everything

    again = send_notifications(settings, REQUEST, TableSentLedger(settings), tls_context=client_tls)
    assert _sent(again) == {"email": 1, "webhook": 1}
    assert (len(smtp_server.messages), len(receiver.posts)) == (1, 1)  # a redelivered activity does not spam


def test_nothing_at_or_above_threshold_sends_nothing(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver)
    quiet = REQUEST.model_copy(update={"results": [_result("docker.io/library/busybox:1.36", "completed", MEDIUM=3)]})
    assert _sent(send_notifications(settings, quiet, TableSentLedger(settings), tls_context=client_tls)) == {
        "email": 0,
        "webhook": 0,
    }
    assert (smtp_server.messages, receiver.posts) == ([], [])
    louder = quiet.model_copy(update={"threshold": "MEDIUM"})
    assert send_notifications(settings, louder, TableSentLedger(settings), tls_context=client_tls)["email"] == 1


def test_a_failing_webhook_raises_and_its_retry_does_not_resend_the_email(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver)
    receiver.status = 500
    with pytest.raises(NotificationError, match="webhook answered 500"):
        send_notifications(settings, REQUEST, TableSentLedger(settings), tls_context=client_tls)
    assert len(smtp_server.messages) == 1

    receiver.status = 200
    counts = send_notifications(settings, REQUEST, TableSentLedger(settings), tls_context=client_tls)
    assert _sent(counts) == {"email": 1, "webhook": 1}
    assert (len(smtp_server.messages), len(receiver.posts)) == (1, 2)


def test_bad_smtp_password_fails_without_leaking_it(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver, SMTP_PASSWORD="wrong-password")
    with pytest.raises(NotificationError) as failure:
        send_notifications(settings, REQUEST, TableSentLedger(settings), tls_context=client_tls)
    assert "email: SMTPAuthenticationError" in str(failure.value)
    assert "wrong-password" not in str(failure.value)
    assert smtp_server.messages == []
    assert len(receiver.posts) == 1  # the other channel still delivered


def test_untrusted_smtp_certificate_is_refused(azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver) -> None:
    settings = _settings(azurite, smtp_server, receiver)
    with pytest.raises(NotificationError, match="email: SSLCertVerificationError"):
        send_notifications(settings, REQUEST, TableSentLedger(settings))
    assert smtp_server.logins == []


def test_unreachable_webhook_fails_fast(azurite: Azurite, smtp_server: SmtpServer, client_tls: ssl.SSLContext) -> None:
    closed = Receiver(url=f"http://127.0.0.1:{free_port()}/hook")
    settings = _settings(azurite, smtp_server, closed, NOTIFICATION_EMAIL="")
    started = time.monotonic()
    with pytest.raises(NotificationError, match="webhook unreachable: ConnectionRefusedError"):
        send_notifications(settings, REQUEST, TableSentLedger(settings), tls_context=client_tls)
    assert time.monotonic() - started < 2
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    ("event", "title_end", "has_deployment"),
    [
        (EVENT, "in containerApp shop", True),
        ({"kind": "deployment", "event": EVENT}, "in containerApp shop", True),
        ({"kind": "image", "image": "docker.io/library/nginx:1.27"}, "in manual scan", False),
        (None, "in manual scan", False),
    ],
)
def test_alert_accepts_a_scan_target_or_a_bare_event(
    event: dict[str, Any] | None, title_end: str, has_deployment: bool
) -> None:
    alert = build_alert(REQUEST.model_copy(update={"event": event}), Severity.HIGH)
    assert alert is not None
    assert alert.title.endswith(title_end)
    assert ("Deployment: containerApp shop" in render_text(alert)) is has_deployment


def test_images_of_a_mode_without_a_report_are_listed_not_alerted() -> None:
    results = [
        *REQUEST.results,
        _result("docker.io/library/app:1", "uploaded"),
        _result("docker.io/library/b:1", "inventory"),
    ]
    alert = build_alert(REQUEST.model_copy(update={"results": results}), Severity.LOW)
    assert alert is not None and {r.status for r in alert.attention} == {"completed", "timed_out"}
    text = render_text(alert)
    assert "docker.io/library/app:1: uploaded (this QSCANNER_MODE writes no vulnerability report)" in text
    assert "docker.io/library/b:1: inventory (this QSCANNER_MODE" in text
