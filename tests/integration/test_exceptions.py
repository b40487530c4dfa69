"""Exceptions against Azurite and real receivers: versions and audit, suppressed alerts, expiry alerting once."""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities import wallclock
from activities.exceptions_expiry import reevaluate_expired
from activities.exceptions_store import ExceptionsConflict, ExceptionStore
from activities.notifications import AlertStore, send_notifications
from activities.notify_store import suppression_counts
from activities.results_store import store_results
from activities.storage_clients import clients_for
from core.exceptions_doc import InvalidExceptions
from core.report import Severity
from core.results import StoreRequest
from core.settings import Settings
from devhost.azurite import Azurite
from tests.integration import test_notifications as base
from tests.integration.test_notifications import Receiver, SmtpServer, _settings
from tests.integration.test_notify_digest import EVENT, _scan

pytestmark = pytest.mark.azurite
tls, client_tls, smtp_server, receiver = base.tls, base.client_tls, base.smtp_server, base.receiver  # fixtures
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RG = f"/subscriptions/{EVENT['subscription_id']}/resourceGroups/rg-apps"


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    now = [NOW]
    wallclock.use(lambda: now[0])
    yield now
    wallclock.use(None)


def entry(ident: str, qid: int, **fields: object) -> dict[str, object]:
    base_fields = {"id": ident, "qid": qid, "reason": "accepted", "owner": "secops"}
    return base_fields | {"expires": (NOW + timedelta(days=30)).isoformat()} | fields


def _env(azurite: Azurite, smtp: SmtpServer, receiver: Receiver, name: str, **extra: str) -> Settings:
    return _settings(
        azurite,
        smtp,
        receiver,
        ALERTS_TABLE=f"alerts{name}",
        RESULTS_CONTAINER=f"reports-{name}",
        EXCEPTIONS_AUDIT_TABLE=f"exaudit{name}",
        **extra,
    )


def test_versions_conflicts_validation_and_audit(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, clock: list[datetime]
) -> None:
    store = ExceptionStore(_env(azurite, smtp_server, receiver, "ver"))
    assert store.load().version == 0
    first = store.put(
        {"version": 0, "exceptions": [entry("ex-1", 100001, image="docker.io/library/nginx:*")]}, "a", NOW
    )
    assert first.version == 1
    with pytest.raises(ExceptionsConflict, match="current version 1"):
        store.put({"version": 0, "exceptions": []}, "b", NOW)  # a concurrent writer that read version 0
    with pytest.raises(InvalidExceptions, match=r"exceptions\[1\]\.owner"):
        store.put({"version": 1, "exceptions": [entry("ex-1", 1, scope=RG), {"id": "x", "qid": 2}]}, "c", NOW)
    assert store.load().version == 1  # a bad document changes nothing
    second = store.put({"version": 1, "exceptions": []}, "alice@example.com", NOW + timedelta(minutes=1))
    assert second.version == 2
    audit = store.audit_rows()
    assert [(r["actor"], r["version_before"], r["version_after"]) for r in audit] == [
        ("alice@example.com", 1, 2),
        ("a", 0, 1),
    ]
    row = store.audit.get_entity("audit", "0000000002")
    assert '"ex-1"' in row["before"] and row["after"] == '{"version":2,"exceptions":[]}'


def test_an_exception_suppresses_the_alert_and_its_expiry_alerts_once(
    azurite: Azurite,
    smtp_server: SmtpServer,
    receiver: Receiver,
    client_tls: ssl.SSLContext,
    clock: list[datetime],
) -> None:
    settings = _env(azurite, smtp_server, receiver, "exp")
    exceptions = ExceptionStore(settings)
    alerts = AlertStore(settings)
    expires = NOW + timedelta(hours=2)
    exceptions.put(
        {
            "version": 0,
            "exceptions": [
                entry("ex-match", 100001, image="docker.io/library/nginx:*", expires=expires.isoformat()),
                entry("ex-miss", 100001, scope=RG.replace("rg-apps", "rg-other")),
            ],
        },
        "test",
        NOW,
    )
    request = _scan(settings, "scan-e1", "nginx:1.27", "shop", CRITICAL=1, MEDIUM=1)
    store_results(clients_for(settings), settings, StoreRequest(instance_id="scan-e1", event=request.event, results=[
        r.model_copy(update={"instance_id": "scan-e1", "worst_severity": Severity.CRITICAL}) for r in request.results
    ]))  # fmt: skip
    counts = send_notifications(settings, request, alerts, tls_context=client_tls)
    assert (counts["email"], counts["webhook"], counts["excepted"]) == (0, 0, 1)  # CRITICAL suppressed, MEDIUM < HIGH
    other = send_notifications(
        settings, _scan(settings, "scan-e2", "redis:7.4", "cache", CRITICAL=1), alerts, tls_context=client_tls
    )
    assert (other["email"], other["excepted"]) == (1, 0)  # ex-miss: another resource group
    assert reevaluate_expired(settings)["sent"] == 0  # nothing expired yet

    clock[0] = expires + timedelta(minutes=5)
    totals = reevaluate_expired(settings, tls_context=client_tls)
    assert (totals["expired"], totals["images"]) == (1, 1)
    assert len(smtp_server.messages) == 2 and "nginx:1.27" in str(smtp_server.messages[-1])
    clock[0] = expires + timedelta(hours=1)
    assert reevaluate_expired(settings, tls_context=client_tls)["expired"] == 0  # the next run: nothing new expired
    assert len(smtp_server.messages) == 2
    assert suppression_counts(settings) == {"duplicates": 0, "by_exception": 1}


def test_a_deployed_file_is_stored_once_per_change_and_put_is_refused(
    azurite: Azurite, smtp_server: SmtpServer, receiver: Receiver, clock: list[datetime], tmp_path: Path
) -> None:
    path = tmp_path / "exceptions.json"
    path.write_text(json.dumps({"exceptions": [entry("ex-f", 100001, image="docker.io/library/nginx:*")]}))
    store = ExceptionStore(_env(azurite, smtp_server, receiver, "file", EXCEPTIONS_FILE=str(path)))
    assert store.load().version == 1 and store.load().version == 1  # unchanged: not stored again
    with pytest.raises(ExceptionsConflict, match="EXCEPTIONS_FILE"):
        store.put({"version": 1, "exceptions": []}, "a", NOW)
    path.write_text(json.dumps({"exceptions": []}))
    os.utime(path, (1, 1))  # a new deployment: another mtime
    assert store.load().version == 2
    assert [r["actor"] for r in store.audit_rows()] == [f"file:{path}", f"file:{path}"]
    path.write_text(json.dumps({"exceptions": [{"id": "bad"}]}))
    os.utime(path, (2, 2))
    with pytest.raises(InvalidExceptions, match=r"exceptions\[0\]"):
        store.load()  # loud, never "no exceptions"


def test_a_removed_exception_alerts_at_the_next_run(
    azurite: Azurite,
    smtp_server: SmtpServer,
    receiver: Receiver,
    client_tls: ssl.SSLContext,
    clock: list[datetime],
) -> None:
    settings = _env(azurite, smtp_server, receiver, "rm")
    exceptions = ExceptionStore(settings)
    exceptions.put({"version": 0, "exceptions": [entry("ex-rm", 100001, scope=RG)]}, "test", NOW)
    request = _scan(settings, "scan-r1", "httpd:2.4", "web", CRITICAL=1)
    stored = [r.model_copy(update={"instance_id": "scan-r1"}) for r in request.results]
    store_results(
        clients_for(settings), settings, StoreRequest(instance_id="scan-r1", event=request.event, results=stored)
    )
    assert send_notifications(settings, request, AlertStore(settings), tls_context=client_tls)["excepted"] == 1
    assert reevaluate_expired(settings, tls_context=client_tls)["images"] == 0  # remembers ex-rm as active
    exceptions.put({"version": 1, "exceptions": []}, "alice", NOW)
    clock[0] = NOW + timedelta(hours=1)
    totals = reevaluate_expired(settings, tls_context=client_tls)
    assert (totals["withdrawn"], totals["images"], len(smtp_server.messages)) == (1, 1, 1)
    assert reevaluate_expired(settings, tls_context=client_tls)["withdrawn"] == 0
    assert len(smtp_server.messages) == 1
