"""The simulated storage system topic: BlobCreated events in the real schema, the subscription filter, delivery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.naming import instance_id_for, scanner_group_name, uploads_container_name
from core.upload_events import parse_upload_event
from devhost.armsim.blob_events import BlobEvents, account_and_container, blob_created_event
from devhost.armsim.groups import SimGroup
from devhost.clock import RealClock, VirtualClock

WHEN = datetime(2026, 10, 2, 8, 1, 50, 123456, tzinfo=UTC)
INSTANCE = instance_id_for("/subscriptions/s/resourceGroups/r/providers/Microsoft.App/jobs/j", "c")
CONTAINER = uploads_container_name("scan-uploads", scanner_group_name(INSTANCE))
SAS = f"http://127.0.0.1:10000/devstoreaccount1/{CONTAINER}?sv=2021&sig=x"
SCHEMA = {"id", "topic", "subject", "eventType", "eventTime", "data", "dataVersion", "metadataVersion"}
DATA = {"api", "clientRequestId", "requestId", "eTag", "contentType", "contentLength", "blobType", "url", "sequencer",
        "storageDiagnostics"}  # fmt: skip


def _group() -> SimGroup:
    return SimGroup(
        path_id="/subscriptions/0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a/resourceGroups/rg-scanner/providers/"
        "Microsoft.ContainerInstance/containerGroups/qscan-x",
        name="qscan-x", body={}, created_at=WHEN, start_at=WHEN, plan=None, sas_url=SAS, prefix=INSTANCE,
        operation_id="op",
    )  # fmt: skip


def test_account_and_container_of_path_and_host_style_sas_urls() -> None:
    assert account_and_container(SAS) == ("devstoreaccount1", CONTAINER, "http://127.0.0.1:10000/devstoreaccount1")
    assert account_and_container("https://acct.blob.core.windows.net/c1?sig=1") == (
        "acct", "c1", "https://acct.blob.core.windows.net",
    )  # fmt: skip


def test_the_event_has_the_documented_shape_and_the_app_accepts_it() -> None:
    event = blob_created_event(
        subscription="0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a", resource_group="rg-app", account="devstoreaccount1",
        endpoint="http://127.0.0.1:10000/devstoreaccount1", container=CONTAINER, blob=f"{INSTANCE}/2/status.json",
        size=120, content_type="application/json", when=WHEN,
    )  # fmt: skip
    assert set(event) == SCHEMA and set(event["data"]) == DATA
    assert (event["eventType"], event["metadataVersion"], event["dataVersion"]) == (
        "Microsoft.Storage.BlobCreated", "1", "",
    )  # fmt: skip
    assert event["eventTime"] == "2026-10-02T08:01:50.1234560Z"
    assert event["data"]["blobType"] == "BlockBlob" and len(event["data"]["sequencer"]) == 32
    parsed = parse_upload_event(event, account="devstoreaccount1", uploads_prefix="scan-uploads")
    assert (parsed.instance_id, parsed.container, parsed.index) == (INSTANCE, CONTAINER, 2)
    again = blob_created_event(
        subscription="0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a", resource_group="rg-app", account="devstoreaccount1",
        endpoint="http://127.0.0.1:10000/devstoreaccount1", container=CONTAINER, blob=f"{INSTANCE}/2/status.json",
        size=120, content_type="application/json", when=WHEN,
    )  # fmt: skip
    assert again == event  # deterministic: the same upload is the same event


def test_only_status_blobs_of_uploads_containers_pass_and_delivery_waits_for_the_virtual_time() -> None:
    delivered: list[list[dict[str, Any]]] = []
    clock = VirtualClock(WHEN)
    topic = BlobEvents(clock=clock)
    topic.subscribe(delivered.append, "scan-uploads")
    group = _group()
    later = WHEN.replace(minute=5)
    for blob in (f"{INSTANCE}/0/report.json", f"{INSTANCE}/0/scan.log", f"{INSTANCE}/0/status.json"):
        topic.blob_uploaded(group, blob, 10, "application/json", later)
    assert topic.stats()["published"] == 1 and delivered == []
    clock.advance_to(later)
    for call in clock.take_due():
        call()
    [[event]] = delivered
    assert event["subject"].endswith(f"/{INSTANCE}/0/status.json")
    assert topic.stats() == {"published": 1, "delivered": 1, "failed": 0}


def test_failed_and_disabled_delivery() -> None:
    def refuse(events: list[dict[str, Any]]) -> None:
        raise RuntimeError("HTTP 500")

    topic = BlobEvents(clock=RealClock())
    topic.subscribe(refuse, "scan-uploads")
    topic.blob_uploaded(_group(), f"{INSTANCE}/0/status.json", 10, "application/json", WHEN)
    assert topic.stats() == {"published": 1, "delivered": 0, "failed": 1}
    off = BlobEvents(enabled=False, clock=RealClock())
    off.subscribe(refuse, "scan-uploads")
    off.blob_uploaded(_group(), f"{INSTANCE}/0/status.json", 10, "application/json", WHEN)
    assert off.stats()["published"] == 0
    other = BlobEvents(clock=RealClock())
    other.subscribe(refuse, "other-prefix")
    other.blob_uploaded(_group(), f"{INSTANCE}/0/status.json", 10, "application/json", WHEN)
    assert other.stats()["published"] == 0
