"""Event Grid triggers on devhost: the host's webhook and the in-process API, through the real SDK and engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost import clock as clock_mod
from devhost import history as h
from devhost.engine import DurableEngine
from devhost.event_grid import EVENT_GRID_PATH, deliver, event_grid_value
from devhost.functions import load_app
from devhost.server import DevHostServer
from devhost.triggers import specs_from_index
from tests.devhost.apps import probe_event_grid_app as probe

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
TIMEOUT = 10


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[tuple[DevHostServer, DurableEngine]]:
    previous = clock_mod.current()
    probe.SEEN.clear()
    index = load_app(probe.__name__)
    engine = DurableEngine(index, store_path=str(tmp_path / "grid.sqlite"), clock=clock_mod.VirtualClock(START))
    try:
        with DevHostServer(specs_from_index(index), engine, manage_engine=False) as server:
            yield server, engine
    finally:
        engine.close()
        clock_mod.install(previous)


def _event(subject: str, **data: Any) -> dict[str, Any]:
    return {
        "id": f"id-{subject}",
        "topic": "/subscriptions/0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a/resourceGroups/rg/providers/"
        "Microsoft.Storage/storageAccounts/acct",
        "subject": subject,
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": "2026-10-02T08:00:05.1234567Z",
        "data": {"api": "PutBlob", **data},
        "dataVersion": "",
        "metadataVersion": "1",
    }


def _waiting(engine: DurableEngine, instance_id: str) -> None:
    engine.start_new("waiter", instance_id)
    engine.run_until(clock_mod.current().now(), timeout=TIMEOUT)  # first episode; the one-hour timer stays pending
    status = engine.get_status(instance_id)
    assert status is not None and status["runtimeStatus"] == "Running"


def test_worker_converter_builds_the_event() -> None:
    value = event_grid_value(_event("/x/y", url="https://acct.blob.core.windows.net/c/b"))
    assert (value.id, value.subject, value.event_type, value.data_version) == (
        "id-/x/y",
        "/x/y",
        _event("")["eventType"],
        "",
    )
    assert value.get_json() == {"api": "PutBlob", "url": "https://acct.blob.core.windows.net/c/b"}
    assert value.event_time is not None and value.event_time.year == 2026


def test_in_process_delivery_reaches_a_waiting_orchestration(hosted: tuple[DevHostServer, DurableEngine]) -> None:
    server, engine = hosted
    _waiting(engine, "w1")

    delivery = deliver(server, "grid", [_event("/blobs/w1", n=1)])

    assert delivery.succeeded and delivery.errors == (None,)
    engine.run_until(clock_mod.current().now(), timeout=TIMEOUT)
    status = engine.get_status("w1")
    assert status is not None and status["runtimeStatus"] == "Completed"
    assert status["output"] == {"event": {"api": "PutBlob", "n": 1}}
    assert clock_mod.current().now() == START  # the event won: virtual time never reached the timer
    [seen] = probe.SEEN
    assert seen["type"] == "EventGridEvent" and seen["topic"].endswith("/storageAccounts/acct")


def test_webhook_delivers_an_array_one_invocation_per_event(hosted: tuple[DevHostServer, DurableEngine]) -> None:
    server, engine = hosted
    _waiting(engine, "w2")
    _waiting(engine, "w3")
    url = f"{server.base_url}{EVENT_GRID_PATH}"
    headers = {"aeg-event-type": "Notification"}

    answer = requests.post(
        url, params={"functionName": "grid"}, headers=headers, json=[_event("/b/w2"), _event("/b/w3")], timeout=TIMEOUT
    )

    assert answer.status_code == 202
    engine.run_until(clock_mod.current().now(), timeout=TIMEOUT)
    assert [engine.get_status(i)["runtimeStatus"] for i in ("w2", "w3")] == ["Completed", "Completed"]  # type: ignore[index]
    assert [seen["subject"] for seen in probe.SEEN] == ["/b/w2", "/b/w3"]


def test_webhook_answers_500_when_an_invocation_fails_and_still_runs_the_rest(
    hosted: tuple[DevHostServer, DurableEngine],
) -> None:
    server, engine = hosted
    _waiting(engine, "w4")
    answer = requests.post(
        f"{server.base_url}{EVENT_GRID_PATH}?functionName=grid",
        headers={"aeg-event-type": "Notification"},
        json=[_event("fail"), _event("/b/w4")],
        timeout=TIMEOUT,
    )
    assert answer.status_code == 500
    engine.run_until(clock_mod.current().now(), timeout=TIMEOUT)
    assert engine.get_status("w4")["runtimeStatus"] == "Completed"  # type: ignore[index]


def test_an_event_for_an_unknown_instance_fails_the_invocation_as_the_sdk_raises(
    hosted: tuple[DevHostServer, DurableEngine],
) -> None:
    server, _ = hosted
    delivery = deliver(server, "grid", [_event("/b/nobody")])
    assert delivery.errors == ("Exception: No instance with ID nobody found.",)


def test_webhook_validation_and_bad_requests(hosted: tuple[DevHostServer, DurableEngine]) -> None:
    server, _ = hosted
    url = f"{server.base_url}{EVENT_GRID_PATH}"
    validation = [{**_event("x"), "data": {"validationCode": "abc"}}]
    ok = requests.post(
        url, params={"functionName": "grid"}, headers={"aeg-event-type": "SubscriptionValidation"}, json=validation,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert (ok.status_code, ok.json()) == (200, {"validationResponse": "abc"})
    notify = {"aeg-event-type": "Notification"}
    assert (
        requests.post(url, params={"functionName": "nope"}, headers=notify, json=[], timeout=TIMEOUT).status_code == 404
    )
    assert requests.post(url, params={"functionName": "grid"}, json=[], timeout=TIMEOUT).status_code == 400
    not_array = requests.post(url, params={"functionName": "grid"}, headers=notify, json={"id": 1}, timeout=TIMEOUT)
    assert not_array.status_code == 400
    garbled = requests.post(url, params={"functionName": "grid"}, headers=notify, data=b"{", timeout=TIMEOUT)
    assert garbled.status_code == 400
    assert probe.SEEN == []
    assert json.loads(json.dumps(_event("x")))["metadataVersion"] == "1"


def test_an_event_nobody_waits_for_is_buffered_and_changes_nothing(hosted: tuple[DevHostServer, DurableEngine]) -> None:
    server, engine = hosted
    engine.start_new("ignorer", "i1")
    engine.run_until(clock_mod.current().now(), timeout=TIMEOUT)

    assert deliver(server, "grid", [_event("/b/i1")]).succeeded
    engine.run_until_idle(timeout=TIMEOUT)

    status = engine.get_status("i1")
    assert status is not None and (status["runtimeStatus"], status["output"]) == ("Completed", "done")
    kinds = [event["EventType"] for event in engine.history("i1")]
    assert kinds.count(h.EventType.EVENT_RAISED) == 1 and kinds.count(h.EventType.TIMER_FIRED) == 1
