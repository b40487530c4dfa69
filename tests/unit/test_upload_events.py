"""core.upload_events: which BlobCreated events name a scanner's status upload, and whose; the starter's handling."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.naming import instance_id_for, rescan_instance_id, scanner_group_name, uploads_container_name
from core.scan_plan import group_prefix
from core.upload_events import (
    UPLOAD_EVENT_NAME,
    InvalidUploadEvent,
    is_gone_or_unknown,
    owner_of_prefix,
    parse_batch,
    parse_upload_event,
    storage_account_name,
)
from starters.upload_events import UploadEventError, raise_upload_events

ACCOUNT = "qscanstore01"
UPLOADS = "scan-uploads"
INSTANCE = instance_id_for("/subscriptions/x/resourceGroups/rg/providers/Microsoft.App/containerApps/a", "corr-1")
CONTAINER = uploads_container_name(UPLOADS, scanner_group_name(INSTANCE))
TOPIC = (
    "/subscriptions/0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a/resourceGroups/rg-app/providers/Microsoft.Storage/"
    f"storageAccounts/{ACCOUNT}"
)


def blob_event(prefix: str = INSTANCE, index: int = 0, *, container: str = CONTAINER, **changes: Any) -> dict[str, Any]:
    """A BlobCreated event shaped as on Microsoft's "Azure Blob Storage as an Event Grid source" page."""
    blob = f"{prefix}/{index}/status.json"
    event: dict[str, Any] = {
        "topic": TOPIC,
        "subject": f"/blobServices/default/containers/{container}/blobs/{blob}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": "2026-12-06T09:00:00.1234567Z",
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "data": {
            "api": "PutBlob",
            "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
            "requestId": "831e1650-001e-001b-66ab-eeb76e000000",
            "eTag": '"0x8D4BCC2E4835CD0"',
            "contentType": "application/json",
            "contentLength": 120,
            "blobType": "BlockBlob",
            "url": f"https://{ACCOUNT}.blob.core.windows.net/{container}/{blob}",
            "sequencer": "00000000000004420000000000028963",
            "storageDiagnostics": {"batchId": "b68529f3-68cd-4744-baa4-3c0498ec19f0"},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }
    event.update(changes)
    return event


def parse(event: object) -> Any:
    return parse_upload_event(event, account=ACCOUNT, uploads_prefix=UPLOADS)


def test_a_status_upload_names_its_orchestration() -> None:
    parsed = parse(blob_event(index=3))
    assert (parsed.instance_id, parsed.container, parsed.prefix, parsed.index) == (INSTANCE, CONTAINER, INSTANCE, 3)
    assert parsed.event_data() == {"container": CONTAINER, "prefix": INSTANCE, "index": 3}
    assert UPLOAD_EVENT_NAME == "scanner_upload"


def test_later_groups_and_rescans_belong_to_their_instance() -> None:
    rescan = rescan_instance_id("nginx:1", "n")
    assert parse(blob_event(group_prefix(INSTANCE, 2))).instance_id == INSTANCE
    assert parse(blob_event(group_prefix(rescan, 0))).instance_id == rescan
    assert parse(blob_event(f"{INSTANCE}-g1/batch-7")).prefix == f"{INSTANCE}-g1/batch-7"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"eventType": "Microsoft.Storage.BlobDeleted"}, "is not Microsoft.Storage.BlobCreated"),
        ({"topic": TOPIC.replace(ACCOUNT, "otheraccount")}, "is not the app's"),
        (
            {"topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a1b"},
            "resource id",
        ),
        ({"topic": TOPIC.replace("Microsoft.Storage", "Microsoft.EventHub")}, "resource id"),
        ({"id": ""}, "id missing"),
        ({"data": "x"}, "data is not a JSON object"),
        ({"specversion": "1.0"}, "CloudEvents"),
        ({"subject": "/blobServices/default/containers/c"}, "not a blob subject"),
    ],
)
def test_forged_envelopes_are_rejected(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidUploadEvent, match=reason):
        parse(blob_event(**changes))


@pytest.mark.parametrize(
    ("container", "blob"),
    [
        ("scan-uploads-" + "g" * 24, f"{INSTANCE}/0/status.json"),  # not hex
        ("scan-uploads-" + "a" * 23, f"{INSTANCE}/0/status.json"),  # one short
        ("results", f"{INSTANCE}/0/status.json"),  # the results container
        ("other-uploads-" + "a" * 24, f"{INSTANCE}/0/status.json"),  # another prefix
        (CONTAINER, f"{INSTANCE}/0/report.json"),
        (CONTAINER, f"{INSTANCE}/00/status.json"),
        (CONTAINER, f"{INSTANCE}/-1/status.json"),
        (CONTAINER, f"{INSTANCE}/10000/status.json"),
        (CONTAINER, "0/status.json"),
        (CONTAINER, f"{INSTANCE.upper()}/0/status.json"),
        (CONTAINER, "scan-" + "a" * 31 + "/0/status.json"),
        (CONTAINER, "run-" + "a" * 32 + "/0/status.json"),
        (CONTAINER, f"{INSTANCE}-g0/0/status.json"),
        (CONTAINER, f"{INSTANCE}-g01/0/status.json"),
        (CONTAINER, f"{INSTANCE}x/0/status.json"),
        (CONTAINER, f"{INSTANCE}/../0/status.json"),
        (CONTAINER, f"{INSTANCE}/a/b/c/d/e/0/status.json"),
        (CONTAINER, f"{INSTANCE}/0/status.json/x"),
        (CONTAINER, "status.json"),
        (CONTAINER, "/0/status.json"),
    ],
)
def test_forged_containers_and_blobs_are_rejected(container: str, blob: str) -> None:
    event = blob_event(subject=f"/blobServices/default/containers/{container}/blobs/{blob}")
    event["data"]["url"] = f"https://{ACCOUNT}.blob.core.windows.net/{container}/{blob}"
    with pytest.raises(InvalidUploadEvent):
        parse(event)


def test_the_url_must_name_the_subjects_blob() -> None:
    event = blob_event()
    event["data"]["url"] = f"https://{ACCOUNT}.blob.core.windows.net/{CONTAINER}/{INSTANCE}/1/status.json"
    with pytest.raises(InvalidUploadEvent, match=r"data\.url"):
        parse(event)
    del event["data"]["url"]
    assert parse(event).index == 0  # url is optional; the subject decides


def test_a_batch_keeps_the_valid_distinct_events_in_order() -> None:
    other = group_prefix(INSTANCE, 1)
    payload = [blob_event(index=1), "junk", blob_event(index=1), blob_event(other, 0), blob_event(eventType="x")]
    batch = parse_batch(payload, account=ACCOUNT, uploads_prefix=UPLOADS)
    assert [(e.prefix, e.index) for e in batch.events] == [(INSTANCE, 1), (other, 0)]
    assert batch.duplicates == 1
    assert [reason.split(":")[0] for reason in batch.rejected] == ["event 1", "event 4"]
    assert len(parse_batch(blob_event(), account=ACCOUNT, uploads_prefix=UPLOADS).events) == 1


def test_owner_of_prefix_and_account_names() -> None:
    assert owner_of_prefix(f"{INSTANCE}-g12") == INSTANCE
    with pytest.raises(InvalidUploadEvent):
        owner_of_prefix("scanner")
    assert storage_account_name("Acct01") == "acct01"
    azurite = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=k;BlobEndpoint=http://127.0.0.1/x;"
    assert storage_account_name(None, azurite) == "devstoreaccount1"
    assert storage_account_name(None, None, "https://acct02.blob.core.windows.net/") == "acct02"
    assert storage_account_name(None, None, "https://acct03.blob.core.chinacloudapi.cn") == "acct03"
    assert storage_account_name(None, None, "https://blob.core.windows.net/") is None
    assert storage_account_name(None, "UseDevelopmentStorage=true", "https://example.com/") is None


def test_gone_or_unknown_matches_only_the_sdks_404_and_410_messages() -> None:
    assert is_gone_or_unknown(f"No instance with ID {INSTANCE} found.", INSTANCE)
    assert is_gone_or_unknown(f"Instance with ID {INSTANCE} is gone: either completed or failed", INSTANCE)
    assert not is_gone_or_unknown("Webhook returned unrecognized status code 500", INSTANCE)
    assert not is_gone_or_unknown("No instance with ID other found.", INSTANCE)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
segments = st.sampled_from([INSTANCE, f"{INSTANCE}-g1", "0", "1", "status.json", "..", "", "x", "scan-", CONTAINER])


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_is_rejected_without_other_errors(payload: object) -> None:
    batch = parse_batch(payload, account=ACCOUNT, uploads_prefix=UPLOADS)
    assert batch.events == []


@settings(max_examples=300)
@given(st.lists(segments, min_size=1, max_size=7), st.sampled_from([CONTAINER, "results", "scan-uploads-x"]))
def test_any_accepted_subject_is_a_status_blob_of_a_scan_prefix(parts: list[str], container: str) -> None:
    blob = "/".join(parts)
    event = blob_event(subject=f"/blobServices/default/containers/{container}/blobs/{blob}")
    del event["data"]["url"]
    try:
        parsed = parse(event)
    except InvalidUploadEvent:
        return
    assert blob == f"{parsed.prefix}/{parsed.index}/status.json"
    assert parsed.container == CONTAINER
    assert parsed.prefix.split("/")[0] in (INSTANCE, f"{INSTANCE}-g1")
    assert parsed.instance_id == INSTANCE


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["id", "topic", "subject", "eventType", "data"]), json_values, max_size=5))
def test_mutated_fields_never_raise_anything_but_invalid(changes: dict[str, Any]) -> None:
    event = copy.deepcopy(blob_event())
    event.update(changes)
    with contextlib.suppress(InvalidUploadEvent):
        parse(event)


class FakeClient:
    """Answers raise_event like the SDK: None (202) or a plain Exception with the SDK's message."""

    def __init__(self, answers: dict[str, str | None]) -> None:
        self.answers = answers
        self.raised: list[tuple[str, str, Any]] = []

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None:
        self.raised.append((instance_id, event_name, event_data))
        message = self.answers.get(instance_id)
        if message is not None:
            raise Exception(message.format(id=instance_id))


def run(client: FakeClient, payload: object, account: str | None = ACCOUNT) -> Any:
    return asyncio.run(raise_upload_events(client, payload, account=account, uploads_prefix=UPLOADS))


def test_starter_raises_once_per_distinct_upload_and_drops_bad_input() -> None:
    client = FakeClient({})
    outcome = run(client, [blob_event(index=0), blob_event(index=0), {"bad": 1}, blob_event(index=1)])
    assert [call[2]["index"] for call in client.raised] == [0, 1]
    assert {call[:2] for call in client.raised} == {(INSTANCE, "scanner_upload")}
    assert (outcome.raised, outcome.duplicates, outcome.rejected, outcome.failed) == (2, 1, 1, 0)


def test_starter_drops_events_for_ended_or_unknown_instances() -> None:
    gone = rescan_instance_id("a", "b")
    client = FakeClient(
        {INSTANCE: "No instance with ID {id} found.", gone: "Instance with ID {id} is gone: either completed or failed"}
    )
    outcome = run(client, [blob_event(), blob_event(gone)])
    assert (outcome.gone, outcome.failed) == (2, 0)


def test_starter_raises_transient_failures_after_trying_every_event() -> None:
    other = rescan_instance_id("a", "b")
    client = FakeClient({INSTANCE: "Webhook returned unrecognized status code 503"})
    with pytest.raises(UploadEventError, match="1 upload event"):
        run(client, [blob_event(), blob_event(other)])
    assert [call[0] for call in client.raised] == [INSTANCE, other]


def test_starter_without_an_account_name_drops_everything_loudly(caplog: pytest.LogCaptureFixture) -> None:
    client = FakeClient({})
    outcome = run(client, [blob_event()], account=None)
    assert (outcome.rejected, client.raised) == (1, [])
    assert "storage account name is unknown" in caplog.text
