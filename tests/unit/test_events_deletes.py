"""Deletes: recognised as their own kind of record (inventory removals), never scan targets."""

from __future__ import annotations

from pathlib import Path

from core.events import ParseResult, parse_message

EVENTS = Path(__file__).parents[1] / "events"
SCANNER_RG = "rg-qscanner"


def _parse(name: str) -> ParseResult:
    return parse_message((EVENTS / name).read_bytes(), scanner_resource_group=SCANNER_RG)


def test_deletes_of_the_three_kinds_are_recognised_and_are_not_targets() -> None:
    result = _parse("deletes-mixed.json")
    assert result.targets == []
    assert [(d.kind, d.name, d.correlation_id) for d in result.deletes] == [
        ("aci", "old-group", "c0ffee00-0000-4000-8000-000000000601"),
        ("aca-job", "nightly-etl", "c0ffee00-0000-4000-8000-000000000605"),
        ("aca", "session-cache", "c0ffee00-0000-4000-8000-000000000606"),
    ]
    assert result.skipped == 0
    # the ARM-cased id from the Activity Log record's entity, the time of the Success record
    session = result.deletes[2]
    assert session.resource_id.endswith("/resourceGroups/demo-apps/providers/Microsoft.App/containerApps/session-cache")
    assert session.event_time.isoformat() == "2026-10-02T10:01:30+00:00"


def test_existing_fixtures_deletes_are_recognised_beside_their_targets() -> None:
    mixed = _parse("activity-log-mixed.json")
    assert [d.name for d in mixed.deletes] == ["old-group"]
    assert "old-group" not in [t.name for t in mixed.targets]
    grid = _parse("event-grid-array.json")
    assert [(d.kind, d.name) for d in grid.deletes] == [("aca", "orders-api")]
    cloud = _parse("cloudevents-batch.json")
    assert [(d.kind, d.name) for d in cloud.deletes] == [("aca-job", "nightly-etl")]


def test_writes_are_never_deletes() -> None:
    sample = Path("/work/shared/samples/activity-log-aci-write.json")
    body = sample.read_bytes() if sample.exists() else (EVENTS / "event-grid-single.json").read_bytes()
    result = parse_message(body, scanner_resource_group=SCANNER_RG)
    assert result.deletes == []
    assert len(result.targets) == 1
