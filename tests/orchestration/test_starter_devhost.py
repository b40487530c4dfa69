"""The Event Hub starter in the real app on devhost: duplicates, bad messages and a transient failure, end to end."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from core.events import parse_deployment_events
from core.naming import instance_id_for
from core.settings import get_settings
from devhost.clock import VirtualClock
from devhost.engine import DurableEngine
from devhost.functions import load_app
from devhost.server import DevHostServer
from devhost.triggers import specs_from_index
from starters.eventhub_starter import EVENTHUB_STARTER_FUNCTION

EVENTS = Path(__file__).parents[1] / "events"
SCANNER_RG = "rg-qscanner"
START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
ENVIRONMENT = {
    "QUALYS_POD": "US2",
    "QUALYS_ACCESS_TOKEN": "devhost-test-token",
    "AZURE_SUBSCRIPTION_ID": "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a",
    "SCANNER_RESOURCE_GROUP": SCANNER_RG,
    "SCANNER_LOCATION": "westeurope",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "ARM_ENDPOINT": "https://127.0.0.1:9",  # nothing listens: the starter must not need ARM
    "RESOLVE_DIGESTS": "false",
}


class FlakyEngine(DurableEngine):
    """The devhost engine, whose next `fail_starts` starts fail as a task hub outage would."""

    fail_starts = 0

    def start_new(self, name: str, instance_id: str | None = None, input: Any = None) -> str:
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("task hub unavailable")
        return super().start_new(name, instance_id, input)


@pytest.fixture(scope="module")
def server() -> Iterator[DevHostServer]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENVIRONMENT.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        index = load_app("function_app")
        engine = FlakyEngine(index, clock=VirtualClock(START))
        try:
            with DevHostServer(specs_from_index(index), engine, task_hub="StarterTest") as running:
                yield running
        finally:
            engine.close()
            get_settings.cache_clear()


def deliver(server: DevHostServer, bodies: list[str]) -> dict[str, Any]:
    """One Event Hub batch through `POST /admin/functions/{name}`; returns the invocation record once idle."""
    response = requests.post(
        f"{server.base_url}/admin/functions/{EVENTHUB_STARTER_FUNCTION}", json={"input": json.dumps(bodies)}, timeout=10
    )
    assert response.status_code == 202
    invocation_id = response.headers["x-devhost-invocation-id"]
    idle = requests.post(f"{server.base_url}/admin/devhost/idle", params={"timeout": 30}, timeout=40)
    assert idle.status_code == 200
    return next(record for record in idle.json()["invocations"] if record["id"] == invocation_id)


def batch_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("event batch ")]


def fixture_text(name: str) -> str:
    return (EVENTS / name).read_text()


def test_batch_with_duplicates_and_bad_messages_then_redelivery(
    server: DevHostServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="starters.eventhub_starter")
    activity_log, event_grid = fixture_text("activity-log-mixed.json"), fixture_text("event-grid-array.json")
    batch = [activity_log, "this is not JSON", event_grid, "42", activity_log]

    record = deliver(server, batch)
    assert (record["status"], record["attempts"]) == ("succeeded", 1)
    assert batch_lines(caplog) == [
        "event batch received=5 targets=8 started=5 duplicates=3 rejected=2 skipped=1 failed=0 unmonitored=0 excluded=0"
    ]
    targets = parse_deployment_events(activity_log, scanner_resource_group=SCANNER_RG)
    targets += parse_deployment_events(event_grid, scanner_resource_group=SCANNER_RG)
    expected = {instance_id_for(t.resource_id, t.correlation_id): t for t in targets}
    statuses = {s["instanceId"]: s for s in server.engine.list_statuses()}
    assert set(expected) <= set(statuses)
    for instance_id, target in expected.items():
        status = server.engine.get_status(instance_id, show_input=True)
        assert status is not None
        assert status["name"] == "scan_deployment_v2"
        assert status["input"]["event"] == target.model_dump(mode="json")
        assert status["input"]["options"]["resolve_digests"] is False
        assert "devhost-test-token" not in json.dumps(status)
    created = {instance_id: statuses[instance_id]["createdTime"] for instance_id in expected}

    caplog.clear()
    again = deliver(server, batch)
    assert again["status"] == "succeeded"
    assert batch_lines(caplog) == [
        "event batch received=5 targets=8 started=0 duplicates=8 rejected=2 skipped=1 failed=0 unmonitored=0 excluded=0"
    ]
    after = {s["instanceId"]: s for s in server.engine.list_statuses()}
    assert {instance_id: after[instance_id]["createdTime"] for instance_id in expected} == created


def test_transient_start_failure_is_retried_by_the_host_policy(
    server: DevHostServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="starters.eventhub_starter")
    engine = server.engine
    assert isinstance(engine, FlakyEngine)
    engine.fail_starts = 1
    body = fixture_text("cloudevent-single.json")

    record = deliver(server, [body])
    assert (record["status"], record["attempts"]) == ("succeeded", 2)
    assert batch_lines(caplog) == [
        "event batch received=1 targets=1 started=0 duplicates=0 rejected=0 skipped=0 failed=1"
        " unmonitored=0 excluded=0",
        "event batch received=1 targets=1 started=1 duplicates=0 rejected=0 skipped=0 failed=0"
        " unmonitored=0 excluded=0",
    ]
    [target] = parse_deployment_events(body, scanner_resource_group=SCANNER_RG)
    assert engine.get_status(instance_id_for(target.resource_id, target.correlation_id)) is not None
