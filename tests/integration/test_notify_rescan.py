"""Rescans alert only on change (issue 11 item 4), with the diff and every workload running the image: Azurite,
aiosmtpd and the loopback webhook, the stored history and the inventory."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta

import pytest

from activities.inventory_store import record_sweep_rows
from activities.inventory_store import table as inventory_table
from activities.notifications import AlertStore, NotifyRequest, flush_digests, send_notifications
from activities.notify_rescan import rescan_alert_count
from activities.results_store import store_results
from activities.storage_clients import clients_for
from core.naming import image_key
from core.report import ImageResult
from core.results import StoreRequest
from core.settings import Settings
from core.workloads import Observed, WorkloadImage
from devhost.armsim.scanner_run import EXIT_CODES, ImageOutcome, report_document
from devhost.armsim.scenario import ScanBehaviour
from devhost.azurite import Azurite
from tests.integration import test_notifications as base
from tests.integration.test_notifications import Receiver, SmtpServer, _settings

pytestmark = pytest.mark.azurite
tls, client_tls, smtp_server, receiver = base.tls, base.client_tls, base.smtp_server, base.receiver  # fixtures

NGINX = "docker.io/library/nginx:1.27"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
SUB = "00000000-0000-0000-0000-000000000001"
APPS = [
    f"/subscriptions/{SUB}/resourceGroups/rg-apps/providers/Microsoft.App/containerApps/{n}" for n in ("shop", "cart")
]
EVENT = {
    "kind": "containerApp",
    "subscription_id": SUB,
    "resource_group": "rg-apps",
    "name": "shop",
    "resource_id": APPS[0],
    "correlation_id": "c0ffee",
    "event_time": "2026-10-02T08:00:00Z",
}


def _place(settings: Settings) -> None:
    rows = [Observed(resource_id=rid, location="westeurope", images=(WorkloadImage(image=NGINX),)) for rid in APPS]
    record_sweep_rows(inventory_table(settings), rows, "sweep-1", T0, T0)


def _scan(settings: Settings, instance_id: str, day: int, *, rescan: bool, **counts: int) -> NotifyRequest:
    """A scan's stored result (report blob, history row) and the notify request its orchestration sends."""
    now = T0 + timedelta(days=day)
    behaviour = ScanBehaviour.model_validate({"result": "ok", "vulnerabilities": counts})
    outcome = ImageOutcome(0, NGINX, "ok", EXIT_CODES["ok"], now, now, behaviour, None)
    reports = clients_for(settings).container(settings.results_container)
    blob = reports.upload_blob(
        f"{image_key(NGINX)}/{instance_id}/report.sarif.json", json.dumps(report_document(outcome)).encode()
    )
    result = ImageResult.model_validate(
        {
            "image": NGINX,
            "status": "completed",
            "vulnerabilities": counts,
            "report": str(blob.url),
            "scanned_at": now,
            "instance_id": instance_id,
        }
    )
    store_results(clients_for(settings), settings, StoreRequest(instance_id=instance_id, results=[result]))
    target = {"kind": "image", "image": NGINX} if rescan else {"kind": "deployment", "event": EVENT}
    return NotifyRequest(instance_id=instance_id, event=target, results=[result], rescan=rescan)


def test_a_rescan_alerts_only_a_change_with_the_diff_and_every_workload(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(
        azurite,
        smtp_server,
        receiver,
        ALERTS_TABLE="alertsrescan",
        INVENTORY_TABLE="invalertsrescan",
        CACHE_TABLE="cacherescan",
    )
    store = AlertStore(settings)
    _place(settings)
    deployed = send_notifications(
        settings, _scan(settings, "scan-a", 0, rescan=False, HIGH=2), store, tls_context=client_tls
    )
    assert deployed["email"] == 1  # a deployment scan alerts as today
    same = send_notifications(
        settings, _scan(settings, "rescan-b", 1, rescan=True, HIGH=2), store, tls_context=client_tls
    )
    assert (same["email"], same["webhook"], same["suppressed"]) == (0, 0, 1)
    changed_request = _scan(settings, "rescan-c", 2, rescan=True, HIGH=3)
    changed = send_notifications(settings, changed_request, store, tls_context=client_tls)
    assert (changed["email"], changed["webhook"]) == (1, 1)
    text = smtp_server.messages[-1].get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "rescan found changed findings" in text
    assert "change:   1 new, 0 changed, 0 resolved, 2 still open since scan rescan-b" in text
    assert "workload: aca shop (rg-apps)" in text and "workload: aca cart (rg-apps)" in text
    body = json.loads(receiver.posts[-1][1])
    image = body["images"][0]
    assert body["rescan"] is True
    assert [f["qid"] for f in image["diff"]["new"]] == ["100003"]
    assert len(image["diff"]["still_open"]) == 2 and image["diff"]["previous_scan"] == "rescan-b"
    assert sorted(image["workloads"]) == ["aca cart (rg-apps)", "aca shop (rg-apps)"]
    retry = send_notifications(settings, changed_request, store, tls_context=client_tls)
    assert retry["email"] == 1 and len(smtp_server.messages) == 2  # the ledger: a retry sends nothing again
    resolved = send_notifications(
        settings, _scan(settings, "rescan-d", 3, rescan=True, HIGH=2), store, tls_context=client_tls
    )
    assert resolved["email"] == 0 and resolved["suppressed"] == 1  # one QID resolved: good news is not an alert
    assert rescan_alert_count(settings) == 1


def test_a_rescan_change_reaches_the_digest_with_its_diff(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(
        azurite,
        smtp_server,
        receiver,
        ALERTS_TABLE="alertsrescandigest",
        INVENTORY_TABLE="invalertsrescandigest",
        CACHE_TABLE="cacherescandigest",
        ALERT_DIGEST_MINUTES="15",
    )
    store = AlertStore(settings)
    _place(settings)
    send_notifications(settings, _scan(settings, "scan-a", 0, rescan=False, CRITICAL=1), store, tls_context=client_tls)
    flush_digests(settings, store, tls_context=client_tls)
    queued = send_notifications(
        settings, _scan(settings, "rescan-b", 1, rescan=True, CRITICAL=1, HIGH=1), store, tls_context=client_tls
    )
    assert queued["queued"] == 1
    flush_digests(settings, store, tls_context=client_tls)
    body = json.loads(receiver.posts[-1][1])
    assert body["event"] == "scan.digest"
    [image] = body["images"]
    assert [f["qid"] for f in image["diff"]["new"]] == ["100002"]
    assert sorted(image["workloads"]) == ["aca cart (rg-apps)", "aca shop (rg-apps)"]
    assert rescan_alert_count(settings) == 1


def test_a_failed_rescan_is_alerted_like_any_failure_naming_the_workloads(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(
        azurite,
        smtp_server,
        receiver,
        ALERTS_TABLE="alertsrescanfail",
        INVENTORY_TABLE="invalertsrescanfail",
        CACHE_TABLE="cacherescanfail",
    )
    store = AlertStore(settings)
    _place(settings)
    failed = ImageResult.model_validate(
        {"image": NGINX, "status": "failed", "reason": "scanner exited 9", "instance_id": "rescan-f"}
    )
    request = NotifyRequest(
        instance_id="rescan-f", event={"kind": "image", "image": NGINX}, results=[failed], rescan=True
    )
    counts = send_notifications(settings, request, store, tls_context=client_tls)
    assert counts["webhook"] == 1  # never silently dropped
    [image] = json.loads(receiver.posts[-1][1])["images"]
    assert "diff" not in image and sorted(image["workloads"]) == ["aca cart (rg-apps)", "aca shop (rg-apps)"]
