"""Never twice for the same findings, under concurrency (issue 12 item 4): two scans of one image with the same findings
alert once, on Azurite's Table optimistic concurrency and real receivers (aiosmtpd, the loopback webhook).

The race is made deterministic without sleeps: a hand-written wrapper around the real TableClient holds each thread's
first read of the image's fingerprint row at a barrier, so both scans have read "not alerted yet" before either
writes. Also: a loser's workload joins the winner's alert while it is being built, a send that reached no channel
releases the claim (a retry, and a later scan, still send), and a claim whose scan vanished is taken over.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from activities import wallclock
from activities.notifications import AlertStore, NotificationError, NotifyRequest, flush_digests, send_notifications
from activities.notify_claims import CLAIM_TTL, FINGERPRINT_PARTITION
from activities.notify_rescan import rescan_alert_count
from activities.notify_store import SUPPRESSED_PARTITION, alert_counts
from core.alerts import findings_fingerprint
from core.naming import image_key
from core.report import Severity
from core.settings import Settings
from devhost.azurite import Azurite
from tests.integration import test_notifications as base
from tests.integration import test_notify_rescan as rescan_support
from tests.integration.test_notifications import Receiver, SmtpServer, _settings
from tests.integration.test_notify_digest import _scan

pytestmark = pytest.mark.azurite
tls, client_tls, smtp_server, receiver = base.tls, base.client_tls, base.smtp_server, base.receiver  # fixtures

NGINX = "docker.io/library/nginx:1.27"


class _ReadBarrier:
    """The real TableClient, except that each thread's first read of a fingerprint row waits for the other thread's."""

    def __init__(self, table: Any, barrier: threading.Barrier) -> None:
        self._table = table
        self._barrier = barrier
        self._waited: set[int] = set()

    def get_entity(self, partition_key: str, row_key: str, **kwargs: Any) -> Any:
        try:
            return self._table.get_entity(partition_key, row_key, **kwargs)
        finally:
            me = threading.get_ident()
            if partition_key == FINGERPRINT_PARTITION and me not in self._waited:
                self._waited.add(me)
                self._barrier.wait(timeout=30)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def _racing_stores(settings: Settings) -> list[AlertStore]:
    barrier = threading.Barrier(2)
    stores = [AlertStore(settings), AlertStore(settings)]
    for store in stores:
        store.table = _ReadBarrier(store.table, barrier)  # type: ignore[assignment]
    return stores


def _race(calls: list[Callable[[], dict[str, int]]]) -> list[dict[str, int]]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result(timeout=60) for f in [pool.submit(call) for call in calls]]


def _suppressed_rows(settings: Settings) -> list[dict[str, Any]]:
    table = AlertStore(settings).table
    return [dict(r) for r in table.query_entities(f"PartitionKey eq '{SUPPRESSED_PARTITION}'")]


def test_two_concurrent_scans_of_the_same_findings_alert_once(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver, ALERTS_TABLE="alertsrace")
    requests = [_scan(settings, "scan-r1", NGINX, "shop", HIGH=2), _scan(settings, "scan-r2", NGINX, "cart", HIGH=2)]
    stores = _racing_stores(settings)
    results = _race(
        [
            lambda: send_notifications(settings, requests[0], stores[0], tls_context=client_tls),
            lambda: send_notifications(settings, requests[1], stores[1], tls_context=client_tls),
        ]
    )

    assert sorted((r["email"], r["webhook"], r["suppressed"]) for r in results) == [(0, 0, 1), (1, 1, 0)]
    assert (len(smtp_server.messages), len(receiver.posts)) == (1, 1)
    winner = 0 if results[0]["email"] else 1
    apps = ("shop", "cart")
    document = json.loads(receiver.posts[0][1])
    [image] = document["images"]
    assert f"containerApp {apps[winner]} (rg-apps)" in image["workloads"]
    [row] = _suppressed_rows(settings)  # the loser: same findings, with its workload (joined if still open)
    assert row["why"] == "same findings" and json.loads(row["workloads"]) == [
        f"containerApp {apps[1 - winner]} (rg-apps)"
    ]
    assert alert_counts(settings) == {"suppressed_findings": 1, "digests": 0}
    # and afterwards, in sequence, as before: the same findings once more are suppressed
    later = send_notifications(settings, _scan(settings, "scan-r3", NGINX, "admin", HIGH=2), AlertStore(settings))
    assert (later["email"], later["suppressed"]) == (0, 1)


def test_a_loser_joins_the_alert_the_winner_is_still_building(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver, ALERTS_TABLE="alertsjoin")
    store = AlertStore(settings)
    first = _scan(settings, "scan-j1", NGINX, "shop", HIGH=2)
    key = image_key(NGINX)
    fingerprint = _fingerprint_of(settings, first)
    # scan-j1 has claimed the findings and not sent yet (its claim is what send_notifications writes first)
    assert store.claim_alert(key, fingerprint, "scan-j1", NGINX, ["containerApp shop (rg-apps)"]).won
    loser = send_notifications(settings, _scan(settings, "scan-j2", NGINX, "cart", HIGH=2), store)
    assert (loser["email"], loser["suppressed"]) == (0, 1)
    winner = send_notifications(settings, first, store, tls_context=client_tls)
    assert (winner["email"], winner["webhook"]) == (1, 1)
    [image] = json.loads(receiver.posts[0][1])["images"]
    assert image["workloads"] == ["containerApp shop (rg-apps)", "containerApp cart (rg-apps)"]


def _fingerprint_of(settings: Settings, request: NotifyRequest) -> str:
    """The fingerprint the activity claims for the request's image (its stored report, threshold HIGH)."""
    summary = AlertStore(settings).report_summary(request.results[0])
    assert summary is not None
    return findings_fingerprint(summary, Severity.HIGH)


def test_concurrent_scans_in_a_digest_window_queue_one_entry_with_both_workloads(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver, ALERT_DIGEST_MINUTES="15", ALERTS_TABLE="alertsracedigest")
    requests = [_scan(settings, "scan-q1", NGINX, "shop", HIGH=2), _scan(settings, "scan-q2", NGINX, "cart", HIGH=2)]
    stores = _racing_stores(settings)
    results = _race(
        [
            lambda: send_notifications(settings, requests[0], stores[0]),
            lambda: send_notifications(settings, requests[1], stores[1]),
        ]
    )
    assert sorted((r["queued"], r["suppressed"]) for r in results) == [(0, 1), (1, 0)]
    assert len(flush_digests(settings, AlertStore(settings), tls_context=client_tls)) == 1
    assert (len(smtp_server.messages), len(receiver.posts)) == (1, 1)
    [image] = json.loads(receiver.posts[0][1])["images"]
    assert sorted(image["workloads"]) == ["containerApp cart (rg-apps)", "containerApp shop (rg-apps)"]
    assert alert_counts(settings) == {"suppressed_findings": 1, "digests": 1}


def test_a_send_that_reached_no_channel_releases_the_claim(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver, ALERTS_TABLE="alertsrelease", NOTIFICATION_EMAIL="")
    store = AlertStore(settings)
    receiver.status = 500
    with pytest.raises(NotificationError, match="webhook answered 500"):
        send_notifications(settings, _scan(settings, "scan-x1", NGINX, "shop", HIGH=2), store)
    receiver.status = 204
    # a later, different scan of the same findings is not blocked by the failed one
    other = send_notifications(settings, _scan(settings, "scan-x2", NGINX, "cart", HIGH=2), store)
    assert (other["webhook"], other["suppressed"]) == (1, 0)
    # a retry of the failed scan (same instance id) is now a duplicate of scan-x2's alert
    retry = send_notifications(settings, _scan(settings, "scan-x1", NGINX, "shop", HIGH=2), store)
    assert (retry["webhook"], retry["suppressed"]) == (0, 1)
    assert len(receiver.posts) == 2  # the failed post and scan-x2's


def test_a_failed_scan_retried_sends_and_a_partial_send_counts_as_alerted(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver, ALERTS_TABLE="alertspartial")
    store = AlertStore(settings)
    receiver.status = 500  # e-mail goes, the webhook fails
    with pytest.raises(NotificationError):
        send_notifications(settings, _scan(settings, "scan-p1", NGINX, "shop", HIGH=2), store, tls_context=client_tls)
    other = send_notifications(settings, _scan(settings, "scan-p2", NGINX, "cart", HIGH=2), store)
    assert (other["email"], other["webhook"], other["suppressed"]) == (0, 0, 1)  # alerted on e-mail already
    receiver.status = 204
    retry = send_notifications(
        settings, _scan(settings, "scan-p1", NGINX, "shop", HIGH=2), store, tls_context=client_tls
    )
    assert (retry["email"], retry["webhook"]) == (1, 1)  # the retry owns its claim: the webhook now, e-mail not again
    assert (len(smtp_server.messages), len(receiver.posts)) == (1, 2)


def test_a_claim_whose_scan_vanished_is_taken_over_after_the_ttl(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(azurite, smtp_server, receiver, ALERTS_TABLE="alertsstale")
    store = AlertStore(settings)
    request = _scan(settings, "scan-s2", NGINX, "cart", HIGH=2)
    fingerprint = _fingerprint_of(settings, request)
    assert store.claim_alert(image_key(NGINX), fingerprint, "scan-s1", NGINX, ["containerApp shop (rg-apps)"]).won
    assert send_notifications(settings, request, store)["suppressed"] == 1  # scan-s1 may still be sending
    start = wallclock.now()
    wallclock.use(lambda: start + CLAIM_TTL + timedelta(minutes=1))
    try:
        late = send_notifications(
            settings, _scan(settings, "scan-s3", NGINX, "cart", HIGH=2), store, tls_context=client_tls
        )
    finally:
        wallclock.use(None)
    assert (late["email"], late["webhook"], late["suppressed"]) == (1, 1, 0)


def test_a_rescan_and_a_redeploy_sharing_one_scan_alert_its_findings_once(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, client_tls: ssl.SSLContext
) -> None:
    settings = _settings(
        azurite,
        smtp_server,
        receiver,
        ALERTS_TABLE="alertsracerescan",
        INVENTORY_TABLE="invracerescan",
        CACHE_TABLE="cacheracerescan",
    )
    rescan_support._place(settings)
    first = rescan_support._scan(settings, "scan-a", 0, rescan=False, HIGH=2)
    assert send_notifications(settings, first, AlertStore(settings), tls_context=client_tls)["email"] == 1
    shared = rescan_support._scan(settings, "rescan-b", 1, rescan=True, HIGH=3)  # one scan, two waiting for it
    redeploy = NotifyRequest(instance_id="scan-c", event=first.event, results=shared.results)
    stores = _racing_stores(settings)
    results = _race(
        [
            lambda: send_notifications(settings, shared, stores[0], tls_context=client_tls),
            lambda: send_notifications(settings, redeploy, stores[1], tls_context=client_tls),
        ]
    )
    assert sorted((r["email"], r["webhook"], r["suppressed"]) for r in results) == [(0, 0, 1), (1, 1, 0)]
    assert (len(smtp_server.messages), len(receiver.posts)) == (2, 2)
    assert rescan_alert_count(settings) == results[0]["email"]  # counted as a rescan alert only when the rescan won
    assert "100003" in receiver.posts[1][1].decode()
