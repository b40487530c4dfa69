"""Deployment events: which records of real-shaped messages become scan targets, and which are skipped."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.events import (
    DeploymentEvent,
    InvalidMessage,
    InvalidResourceId,
    parse_deployment_events,
    parse_message,
    parse_resource_id,
)

EVENTS = Path(__file__).parents[1] / "events"
SAMPLES = Path("/work/shared/samples")
SCANNER_RG = "rg-qscanner"
SUB = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"


def fixture(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def names(body: str | bytes) -> list[tuple[str, str]]:
    return [(t.kind, t.name) for t in parse_deployment_events(body, scanner_resource_group=SCANNER_RG)]


def test_activity_log_lifecycle_yields_one_target_per_successful_write() -> None:
    targets = parse_deployment_events(fixture("activity-log-mixed.json"), scanner_resource_group=SCANNER_RG)
    assert [(t.kind, t.name) for t in targets] == [
        ("aci", "web-frontend"),
        ("aca", "orders-api"),
        ("aca-job", "nightly-etl"),
    ]
    aci = targets[0]
    assert aci.resource_id == (
        f"/subscriptions/{SUB}/resourceGroups/Demo-Apps/providers/Microsoft.ContainerInstance/containerGroups/web-frontend"
    )
    assert aci.resource_group == "Demo-Apps"  # original case recovered from properties.entity
    assert aci.subscription_id == SUB
    assert aci.correlation_id == "c0ffee00-1234-4abc-9def-000000000101"
    assert aci.event_time == datetime(2026, 10, 2, 8, 0, 40, tzinfo=UTC)
    assert targets[2].resource_id.endswith("/providers/Microsoft.App/jobs/nightly-etl")


def test_shared_samples() -> None:
    aci = parse_deployment_events((SAMPLES / "activity-log-aci-write.json").read_text(), scanner_resource_group="x")
    assert [(t.kind, t.name, t.resource_group) for t in aci] == [("aci", "hello-aci", "demo-apps")]
    aca = parse_deployment_events((SAMPLES / "event-grid-aca-write.json").read_bytes(), scanner_resource_group="x")
    assert [(t.kind, t.name) for t in aca] == [("aca", "hello-aca")]
    assert aca[0].correlation_id == "c0ffee00-1234-4abc-9def-000000000002"


def test_garbled_records_are_skipped_and_logged_while_good_ones_survive(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="core.events")
    result = parse_message(fixture("activity-log-garbled.json"), scanner_resource_group=SCANNER_RG)
    assert [t.name for t in result.targets] == ["survivor"]
    assert result.records == 17
    assert result.skipped == 16
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 16
    assert all(len(m) < 600 for m in messages)
    assert any("name ARM would reject" in m for m in messages)
    assert any("not the exact id" in m for m in messages)
    assert not any("rm -rf" in m and "\n" in m for m in messages)


def test_event_grid_single_event_and_array() -> None:
    assert names(fixture("event-grid-single.json")) == [("aci", "hello-aci")]
    assert names(fixture("event-grid-array.json")) == [("aca-job", "nightly-etl"), ("aca", "orders-api")]


def test_event_grid_correlation_id_and_time() -> None:
    [target] = parse_deployment_events(fixture("event-grid-single.json"), scanner_resource_group=SCANNER_RG)
    assert target.correlation_id == "c0ffee00-0000-4000-8000-000000000401"
    assert target.event_time == datetime(2026, 10, 2, 9, 0, 0, 123456, tzinfo=UTC)


def test_cloudevents_single_and_batch() -> None:
    assert names(fixture("cloudevent-single.json")) == [("aci", "hello-aci")]
    result = parse_message(fixture("cloudevents-batch.json"), scanner_resource_group=SCANNER_RG)
    assert [(t.kind, t.name) for t in result.targets] == [("aca", "orders-api"), ("aca-job", "nightly-etl")]
    assert result.skipped == 1  # the event whose data is not an object


def test_scanner_resource_group_is_never_a_target_whatever_its_case() -> None:
    body = fixture("event-grid-array.json")
    assert ("aci", "qscan-aaaaaaaaaaaaaaaaaaaaaaaa") not in names(body)
    assert names(fixture("event-grid-single.json")) == [("aci", "hello-aci")]
    assert parse_deployment_events(fixture("event-grid-single.json"), scanner_resource_group="DEMO-APPS") == []


def test_one_target_per_resource_within_a_message() -> None:
    event = json.loads(fixture("event-grid-single.json"))
    second = {
        **event,
        "id": "other",
        "data": {**event["data"], "correlationId": "c0ffee00-0000-4000-8000-999999999999"},
    }
    upper = {**event, "subject": event["subject"].upper(), "data": {**event["data"], "resourceUri": None}}
    targets = parse_deployment_events(json.dumps([event, second, upper]), scanner_resource_group=SCANNER_RG)
    assert len(targets) == 1
    assert targets[0].correlation_id == "c0ffee00-0000-4000-8000-000000000401"


def test_event_grid_without_correlation_id_falls_back_to_the_event_id() -> None:
    event = json.loads(fixture("event-grid-single.json"))
    del event["data"]["correlationId"]
    [target] = parse_deployment_events(json.dumps(event), scanner_resource_group=SCANNER_RG)
    assert target.correlation_id == event["id"]


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe\x00", "{", b"[" * 100_000, "\ud800"])
def test_a_body_that_is_not_json_raises_invalid_message(body: str | bytes) -> None:
    with pytest.raises(InvalidMessage):
        parse_deployment_events(body, scanner_resource_group=SCANNER_RG)


@pytest.mark.parametrize("body", ["null", "42", '"text"', "[]", "{}", '{"records": 5}', '{"records": []}', "[[1]]"])
def test_json_that_is_not_a_deployment_message_has_no_targets(body: str) -> None:
    assert parse_deployment_events(body, scanner_resource_group=SCANNER_RG) == []


def test_unrecognised_shapes_are_flagged_for_the_starter() -> None:
    assert not parse_message("42", scanner_resource_group=SCANNER_RG).recognised
    assert not parse_message('{"records": {}}', scanner_resource_group=SCANNER_RG).recognised
    assert parse_message('{"records": []}', scanner_resource_group=SCANNER_RG).recognised


def test_activity_log_rest_shape_with_nested_operation_name() -> None:
    record = json.loads(fixture("activity-log-mixed.json"))["records"][2]
    record["operationName"] = {"value": record["operationName"], "localizedValue": "Create container group"}
    assert names(json.dumps({"records": [record]})) == [("aci", "web-frontend")]


def test_deployment_event_round_trips_through_json() -> None:
    [target] = parse_deployment_events(fixture("cloudevent-single.json"), scanner_resource_group=SCANNER_RG)
    dumped = target.model_dump(mode="json")
    assert json.loads(json.dumps(dumped)) == dumped
    assert DeploymentEvent.model_validate(dumped) == target
    with pytest.raises(ValueError, match="frozen"):
        target.name = "other"  # type: ignore[misc]


def test_deployment_event_rejects_inconsistent_fields() -> None:
    [target] = parse_deployment_events(fixture("cloudevent-single.json"), scanner_resource_group=SCANNER_RG)
    with pytest.raises(ValueError, match="must match"):
        DeploymentEvent.model_validate({**target.model_dump(), "name": "other-name"})
    with pytest.raises(ValueError):
        DeploymentEvent.model_validate({**target.model_dump(), "resource_id": "/subscriptions/x"})


@pytest.mark.parametrize(
    ("resource_id", "kind", "name"),
    [
        (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/a", "aci", "a"),
        (
            f"/SUBSCRIPTIONS/{SUB.upper()}/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.APP/CONTAINERAPPS/MY-APP",
            "aca",
            "my-app",
        ),
        (f"/subscriptions/{SUB}/resourcegroups/rg.(x)_y/providers/microsoft.app/jobs/j1", "aca-job", "j1"),
    ],
)
def test_parse_resource_id(resource_id: str, kind: str, name: str) -> None:
    parts = parse_resource_id(resource_id)
    assert (parts.kind, parts.name, parts.subscription_id) == (kind, name, SUB)
    assert parse_resource_id(parts.resource_id) == parts


@pytest.mark.parametrize(
    "resource_id",
    [
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/a/containers/b",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Web/sites/a",
        f"/subscriptions/{SUB}/resourceGroups/rg./providers/Microsoft.App/jobs/job",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/jobs/j",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/jobs/1job",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/jobs/job-",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/containerApps/{'a' * 33}",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/{'a' * 64}",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/a_b",
        f"/subscriptions/{SUB}/resourceGroups/{'r' * 91}/providers/Microsoft.App/jobs/job",
        "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.App/jobs/job",
        f"subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/jobs/job/",
        "",
    ],
)
def test_resource_ids_arm_would_reject(resource_id: str) -> None:
    with pytest.raises(InvalidResourceId):
        parse_resource_id(resource_id)


def test_the_scanner_group_is_excluded_in_its_own_subscription_only_when_that_is_given() -> None:
    body = json.dumps(
        [
            {
                "subject": f"/subscriptions/{sub}/resourceGroups/RG-QSCANNER/providers/"
                "Microsoft.ContainerInstance/containerGroups/app",
                "eventType": "Microsoft.Resources.ResourceWriteSuccess",
                "eventTime": "2026-10-02T08:00:00Z",
                "id": f"id-{sub}",
                "data": {"operationName": "Microsoft.ContainerInstance/containerGroups/write", "correlationId": sub},
            }
            for sub in ("0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a", "11111111-2222-3333-4444-555555555555")
        ]
    )
    assert parse_deployment_events(body, scanner_resource_group="rg-qscanner") == []
    targets = parse_deployment_events(
        body, scanner_resource_group="rg-qscanner", scanner_subscription_id="0B7D5E2A-9C41-4F0E-8A3B-6D2F1E0C9B8A"
    )
    assert [t.subscription_id for t in targets] == ["11111111-2222-3333-4444-555555555555"]
