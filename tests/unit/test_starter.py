"""The Event Hub starter's logic against a hand-written Durable client: idempotent starts, rejects, retries."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.events import parse_deployment_events
from core.naming import instance_id_for
from core.options import ScanOptions
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT_V2
from starters.eventhub_starter import BatchOutcome, ScanStartError, start_scans

EVENTS = Path(__file__).parents[1] / "events"
SCANNER_RG = "rg-qscanner"
OPTIONS = ScanOptions().model_dump(mode="json")


@dataclass
class FakeStatus:
    runtime_status: str | None


@dataclass
class FakeDurableClient:
    """In-memory instances; `fail_starts` makes that many start_new calls fail, `race` creates before failing."""

    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_starts: int = 0
    fail_status: int = 0
    race: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def get_status(self, instance_id: str) -> FakeStatus:
        self.calls.append(("get_status", instance_id))
        if self.fail_status:
            self.fail_status -= 1
            raise ConnectionError("status endpoint unavailable")
        instance = self.instances.get(instance_id)
        return FakeStatus(instance["runtimeStatus"] if instance else None)

    async def start_new(
        self, orchestration_function_name: str, instance_id: str | None = None, client_input: Any | None = None
    ) -> str:
        assert instance_id is not None
        self.calls.append(("start_new", instance_id))
        if self.race:
            self.instances[instance_id] = {"name": orchestration_function_name, "runtimeStatus": "Running"}
            raise RuntimeError("An instance with this id already exists")
        if self.fail_starts:
            self.fail_starts -= 1
            raise ConnectionError("task hub unavailable")
        if instance_id in self.instances:
            raise RuntimeError("An instance with this id already exists")
        json.dumps(client_input)  # the input must be plain JSON
        self.instances[instance_id] = {
            "name": orchestration_function_name,
            "input": client_input,
            "runtimeStatus": "Pending",
        }
        return instance_id


def body(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def run(client: FakeDurableClient, bodies: list[str | bytes]) -> BatchOutcome:
    return asyncio.run(start_scans(client, bodies, scanner_resource_group=SCANNER_RG, options=OPTIONS))


def test_batch_starts_one_orchestration_per_target_with_deterministic_ids() -> None:
    client = FakeDurableClient()
    outcome = run(client, [body("activity-log-mixed.json"), body("cloudevent-single.json")])
    assert outcome == BatchOutcome(received=2, targets=4, started=4, duplicates=0, rejected=0, skipped=0, failed=0)
    targets = parse_deployment_events(body("activity-log-mixed.json"), scanner_resource_group=SCANNER_RG)
    expected_id = instance_id_for(targets[0].resource_id, targets[0].correlation_id)
    instance = client.instances[expected_id]
    assert instance["name"] == ORCHESTRATOR_SCAN_DEPLOYMENT_V2
    assert instance["input"] == {"event": targets[0].model_dump(mode="json"), "options": OPTIONS}


def test_redelivery_starts_nothing_twice() -> None:
    client = FakeDurableClient()
    batch: list[str | bytes] = [body("event-grid-array.json"), body("cloudevents-batch.json")]
    first = run(client, batch)
    for instance in client.instances.values():
        instance["runtimeStatus"] = "Completed"
    again = run(client, batch)
    assert first.started == 4
    assert (again.started, again.duplicates, again.targets) == (0, 4, 4)
    assert len(client.instances) == 4


def test_duplicates_within_a_batch_and_across_routes_are_counted_once() -> None:
    client = FakeDurableClient()
    single = body("event-grid-single.json")
    same_as_cloudevent = json.loads(body("cloudevent-single.json"))
    same_as_cloudevent["data"]["correlationId"] = json.loads(single)["data"]["correlationId"]
    outcome = run(client, [single, single, json.dumps(same_as_cloudevent)])
    assert (outcome.targets, outcome.started, outcome.duplicates) == (3, 1, 2)
    assert [call for call in client.calls if call[0] == "start_new"] == [("start_new", next(iter(client.instances)))]


def test_bad_messages_are_rejected_and_the_rest_of_the_batch_proceeds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client = FakeDurableClient()
    outcome = run(
        client, [b"\x00garbage", "{not json", "42", body("activity-log-garbled.json"), body("event-grid-single.json")]
    )
    assert (outcome.received, outcome.rejected, outcome.started, outcome.skipped) == (5, 3, 2, 16)
    batch_lines = [r for r in caplog.records if r.getMessage().startswith("event batch ")]
    assert len(batch_lines) == 1
    assert batch_lines[0].getMessage() == (
        "event batch received=5 targets=2 started=2 duplicates=0 rejected=3 skipped=16 failed=0"
        " unmonitored=0 excluded=0"
    )
    assert batch_lines[0].batch["rejected"] == 3  # type: ignore[attr-defined]


def test_transient_start_failure_raises_after_the_rest_and_redelivery_completes() -> None:
    client = FakeDurableClient(fail_starts=1)
    batch: list[str | bytes] = [body("activity-log-mixed.json")]
    with pytest.raises(ScanStartError, match="1 of 3") as caught:
        run(client, batch)
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert len(client.instances) == 2  # the other two targets were started before raising
    again = run(client, batch)
    assert (again.started, again.duplicates, again.failed) == (1, 2, 0)


def test_status_failure_is_transient_too() -> None:
    client = FakeDurableClient(fail_status=2)
    with pytest.raises(ScanStartError):
        run(client, [body("event-grid-single.json")])
    assert client.instances == {}


def test_losing_a_start_race_counts_as_a_duplicate() -> None:
    client = FakeDurableClient(race=True)
    outcome = run(client, [body("event-grid-single.json")])
    assert (outcome.started, outcome.duplicates, outcome.failed) == (0, 1, 0)


def test_scanner_resource_group_writes_start_nothing() -> None:
    client = FakeDurableClient()
    outcome = asyncio.run(
        start_scans(client, [body("event-grid-single.json")], scanner_resource_group="DEMO-APPS", options=OPTIONS)
    )
    assert outcome.targets == 0
    assert client.calls == []
