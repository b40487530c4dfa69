"""Deduplication and digests against Azurite and real receivers (aiosmtpd, the webhook, strict Teams and Slack)."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from activities.notifications import AlertStore, NotificationError, NotifyRequest, flush_digests, send_notifications
from activities.notify_store import alert_counts
from activities.storage_clients import clients_for
from core.alerts import SIGNATURE_HEADER, verify_signature
from core.images import parse_image_ref
from core.naming import image_key
from core.report import ImageResult
from core.settings import Settings
from devhost.armsim.scanner_run import EXIT_CODES, ImageOutcome, report_document
from devhost.armsim.scenario import ScanBehaviour
from devhost.azurite import Azurite
from devhost.demo_chat_receivers import ChatReceiver, slack_receiver, teams_receiver
from tests.integration import test_notifications as base
from tests.integration.test_notifications import WEBHOOK_SECRET, Receiver, SmtpServer, _settings

pytestmark = pytest.mark.azurite
tls, client_tls, smtp_server, receiver = base.tls, base.client_tls, base.smtp_server, base.receiver  # fixtures

EVENT = {
    "kind": "containerApp",
    "subscription_id": "00000000-0000-0000-0000-000000000001",
    "resource_group": "rg-apps",
    "resource_id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-apps/providers/"
    "Microsoft.App/containerApps/",
    "correlation_id": "c0ffee",
    "event_time": "2026-10-02T08:00:00Z",
}


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[dict[str, ChatReceiver]]:
    receivers = {
        "teams": teams_receiver(tmp_path / "teams").start(),
        "slack": slack_receiver(tmp_path / "slack").start(),
    }
    yield receivers
    for each in receivers.values():
        each.stop()


def _scan(settings: Settings, instance_id: str, image: str, app: str, **counts: int) -> NotifyRequest:
    """A scan of one image whose report (the fake scanner's SARIF) is stored where the app stores reports."""
    canonical = parse_image_ref(image).canonical
    now = datetime.now(UTC)
    behaviour = ScanBehaviour.model_validate({"result": "ok", "vulnerabilities": counts})
    outcome = ImageOutcome(0, canonical, "ok", EXIT_CODES["ok"], now, now, behaviour, None)
    reports = clients_for(settings).container(settings.results_container)
    blob = reports.upload_blob(
        f"{image_key(canonical)}/{instance_id}/report.sarif.json",
        json.dumps(report_document(outcome)).encode(),
        overwrite=True,
    )
    result = ImageResult.model_validate(
        {"image": canonical, "status": "completed", "vulnerabilities": counts, "report": str(blob.url)}
    )
    event = {**EVENT, "name": app, "resource_id": EVENT["resource_id"] + app}
    return NotifyRequest(instance_id=instance_id, event={"kind": "deployment", "event": event}, results=[result])


def test_the_same_image_is_not_alerted_twice_for_the_same_findings(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver, ALERTS_TABLE="alertsdedup")
    store = AlertStore(settings)
    first = send_notifications(
        settings, _scan(settings, "scan-d1", "nginx:1.27", "shop", HIGH=2), store, tls_context=client_tls
    )
    assert (first["email"], first["webhook"], first["suppressed"]) == (1, 1, 0)
    again = send_notifications(
        settings, _scan(settings, "scan-d2", "nginx:1.27", "cart", HIGH=2), store, tls_context=client_tls
    )
    assert (again["email"], again["webhook"], again["suppressed"]) == (0, 0, 1)
    retry = send_notifications(
        settings, _scan(settings, "scan-d1", "nginx:1.27", "shop", HIGH=2), store, tls_context=client_tls
    )
    assert retry["suppressed"] == 0  # a retry of the scan that alerted is not a duplicate (and the ledger holds it)
    changed = send_notifications(
        settings, _scan(settings, "scan-d3", "nginx:1.27", "shop", HIGH=3), store, tls_context=client_tls
    )
    assert changed["email"] == 1  # a new QID: alerted again
    assert (len(smtp_server.messages), len(receiver.posts)) == (2, 2)
    assert alert_counts(settings) == {"suppressed_findings": 1, "digests": 0}
    [headers, body, _] = receiver.posts[0]
    assert verify_signature(WEBHOOK_SECRET, body, headers[SIGNATURE_HEADER], now=int(time.time()))


def test_a_wave_makes_one_digest_per_channel_and_a_failed_channel_is_resent_alone(
    azurite: Azurite,
    smtp_server: SmtpServer,
    receiver: Receiver,
    client_tls: ssl.SSLContext,
    chat: dict[str, ChatReceiver],
) -> None:
    settings = _settings(
        azurite,
        smtp_server,
        receiver,
        ALERT_DIGEST_MINUTES="15",
        ALERTS_TABLE="alertswave",
        NOTIFY_TEAMS_URL=chat["teams"].url,
        NOTIFY_SLACK_URL=chat["slack"].url,
        PUBLIC_BASE_URL="https://scanner.example.com",
    )
    store = AlertStore(settings)
    wave = [("nginx:1.27", "web"), ("redis:7.4", "cache"), ("httpd:2.4", "status"), ("nginx:1.27", "admin")]
    for index, (image, app) in enumerate(wave):
        counts = send_notifications(settings, _scan(settings, f"scan-w{index}", image, app, CRITICAL=1), store)
        assert counts["email"] == counts["webhook"] == 0  # queued, not sent
    assert (smtp_server.messages, receiver.posts, chat["teams"].count) == ([], [], 0)

    receiver.status = 500
    with pytest.raises(NotificationError, match="webhook answered 500"):
        flush_digests(settings, store, tls_context=client_tls)
    receiver.status = 204
    [digest_id] = flush_digests(settings, store, tls_context=client_tls)
    assert flush_digests(settings, store, tls_context=client_tls) == []

    assert (len(smtp_server.messages), chat["teams"].count, chat["slack"].count) == (1, 1, 1)  # not resent
    assert len(receiver.posts) == 2 and receiver.posts[1][0]["Idempotency-Key"] == digest_id
    document = json.loads(receiver.posts[1][1])
    assert document["event"] == "scan.digest" and len(document["scans"]) == 4
    nginx = next(i for i in document["images"] if i["image"] == "docker.io/library/nginx:1.27")
    assert nginx["workloads"] == ["containerApp web (rg-apps)", "containerApp admin (rg-apps)"]
    assert {f["severity"] for f in nginx["new_findings"]} == {"CRITICAL"}
    assert alert_counts(settings) == {"suppressed_findings": 1, "digests": 1}

    later = send_notifications(settings, _scan(settings, "scan-w9", "redis:7.4", "cache", CRITICAL=1), store)
    assert later["suppressed"] == 1 and flush_digests(settings, store) == []  # already alerted: no new digest


def test_failures_alert_once_per_reason_within_a_window_and_again_in_the_next(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver, ALERT_DIGEST_MINUTES="5", ALERTS_TABLE="alertsfail")
    store = AlertStore(settings)

    def failed(instance_id: str) -> NotifyRequest:
        result = ImageResult.model_validate(
            {"image": "docker.io/acme/payments:5.2.0", "status": "failed", "reason": "the scanner exited 9"}
        )
        return NotifyRequest(instance_id=instance_id, event=None, results=[result])

    assert send_notifications(settings, failed("scan-f1"), store)["queued"] == 1
    assert send_notifications(settings, failed("scan-f2"), store)["suppressed"] == 1  # same reason, same window
    assert len(flush_digests(settings, store, tls_context=client_tls)) == 1
    assert send_notifications(settings, failed("scan-f3"), store)["queued"] == 1  # a new window alerts again
    assert len(flush_digests(settings, store, tls_context=client_tls)) == 1
    assert len(smtp_server.messages) == len(receiver.posts) == 2
    assert alert_counts(settings) == {"suppressed_findings": 1, "digests": 2}
