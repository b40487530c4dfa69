"""The janitor deletes old scanner groups of finished or unknown orchestrations, and nothing else."""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.janitor import ScannerGroupInfo, decide, minimum_age
from devhost.armsim.testing import BASE_APP_SETTINGS

NOW = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(hours=2)


def fates(groups: list[ScannerGroupInfo], statuses: dict[str, str | None]) -> dict[str, bool]:
    decisions = decide(groups, statuses, now=NOW, scan_timeout_s=1800, grace_minutes=15)
    return {d.name: d.delete for d in decisions}


def test_minimum_age_is_timeout_plus_grace() -> None:
    assert minimum_age(1800, 15) == timedelta(minutes=45)


def test_old_groups_of_finished_or_unknown_orchestrations_go() -> None:
    groups = [
        ScannerGroupInfo(name="done", instance_id="a", created_at=OLD),
        ScannerGroupInfo(name="failed", instance_id="b", created_at=OLD),
        ScannerGroupInfo(name="purged", instance_id="c", created_at=OLD),
        ScannerGroupInfo(name="untagged", created_at=OLD),
    ]
    assert fates(groups, {"a": "Completed", "b": "Failed", "c": None}) == {
        "done": True,
        "failed": True,
        "purged": True,
        "untagged": True,
    }


def test_young_live_and_undated_groups_stay() -> None:
    groups = [
        ScannerGroupInfo(name="young", instance_id="a", created_at=NOW - timedelta(minutes=44)),
        ScannerGroupInfo(name="running", instance_id="b", created_at=OLD),
        ScannerGroupInfo(name="pending", instance_id="c", created_at=OLD),
        ScannerGroupInfo(name="undated", instance_id="d"),
    ]
    decisions = decide(
        groups, {"a": None, "b": "Running", "c": "Pending", "d": None}, now=NOW, scan_timeout_s=1800, grace_minutes=15
    )
    assert [(d.name, d.delete, d.reason) for d in decisions] == [
        ("young", False, "younger than the minimum age"),
        ("running", False, "orchestration is Running"),
        ("pending", False, "orchestration is Pending"),
        ("undated", False, "creation time unknown"),
    ]


def test_exactly_at_the_minimum_age_is_old_enough() -> None:
    group = ScannerGroupInfo(name="edge", instance_id="a", created_at=NOW - timedelta(minutes=45))
    assert fates([group], {"a": "Terminated"}) == {"edge": True}


class FakeStatus:
    def __init__(self, runtime_status: str | None) -> None:
        self.runtime_status = None if runtime_status is None else type("S", (), {"value": runtime_status})()


class FakeClient:
    """Answers get_status like DurableOrchestrationClient: an object whose runtime_status is None when unknown."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.asked: list[str] = []

    async def get_status(self, instance_id: str) -> FakeStatus:
        self.asked.append(instance_id)
        return FakeStatus(self.statuses.get(instance_id))


def test_sweep_deletes_only_stale_groups_and_survives_a_failed_delete() -> None:
    import asyncio

    from core.settings import load_settings
    from starters.janitor import ScannerGroupStore, sweep

    groups = [
        ScannerGroupInfo(name="qscan-done", instance_id="a", created_at=OLD),
        ScannerGroupInfo(name="qscan-live", instance_id="b", created_at=OLD),
        ScannerGroupInfo(name="qscan-stuck", instance_id="c", created_at=OLD),
        ScannerGroupInfo(name="qscan-new", instance_id="a", created_at=NOW),
    ]
    deleted: list[str] = []

    def delete(name: str) -> None:
        if name == "qscan-stuck":
            raise RuntimeError("ARM said no")
        deleted.append(name)

    settings = load_settings({**BASE_APP_SETTINGS, "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    client = FakeClient({"a": "Completed", "b": "Running"})
    report = asyncio.run(sweep(client, ScannerGroupStore(lambda: groups, delete), settings, NOW))
    assert deleted == report.deleted == ["qscan-done"]
    assert report.failed == ["qscan-stuck"]
    assert sorted(client.asked) == ["a", "b", "c"]


def test_sweep_then_clears_uploads_containers_by_the_same_rule_asking_each_owner_once() -> None:
    import asyncio

    from core.settings import load_settings
    from starters.janitor import ScannerGroupStore, sweep

    groups = [ScannerGroupInfo(name="qscan-done", instance_id="a", created_at=OLD)]
    containers = [
        ScannerGroupInfo(name="scan-uploads-done", instance_id="a", created_at=OLD),
        ScannerGroupInfo(name="scan-uploads-live", instance_id="b", created_at=OLD),
        ScannerGroupInfo(name="scan-uploads-young", instance_id="c", created_at=NOW),
    ]
    deleted: list[str] = []
    settings = load_settings({**BASE_APP_SETTINGS, "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    client = FakeClient({"a": "Terminated", "b": "Running"})
    uploads = ScannerGroupStore(
        lambda: containers, deleted.append, summary="janitor: %d container(s), %d deleted, %d failed"
    )
    report = asyncio.run(
        sweep(client, ScannerGroupStore(lambda: groups, deleted.append), settings, NOW, uploads=uploads)
    )
    assert deleted == report.deleted == ["qscan-done", "scan-uploads-done"]
    assert [d.reason for d in report.decisions[1:]] == [
        "old and orchestration Terminated",
        "orchestration is Running",
        "younger than the minimum age",
    ]
    assert sorted(client.asked) == ["a", "b", "c"]


def test_only_a_terminal_or_definitely_missing_orchestration_lets_an_old_group_go() -> None:
    from core.janitor import STATUS_UNREADABLE

    groups = [
        ScannerGroupInfo(name="unreadable", instance_id="a", created_at=OLD),
        ScannerGroupInfo(name="unrecognised", instance_id="b", created_at=OLD),
        ScannerGroupInfo(name="not-asked", instance_id="c", created_at=OLD),
        ScannerGroupInfo(name="canceled", instance_id="d", created_at=OLD),
        ScannerGroupInfo(name="suspended", instance_id="e", created_at=OLD),
    ]
    statuses = {"a": STATUS_UNREADABLE, "b": "SomethingNew", "d": "Canceled", "e": "Suspended"}
    decisions = decide(groups, statuses, now=NOW, scan_timeout_s=1800, grace_minutes=15)
    assert [(d.name, d.delete, d.reason) for d in decisions] == [
        ("unreadable", False, "orchestration status unreadable"),
        ("unrecognised", False, "orchestration is SomethingNew"),
        ("not-asked", False, "orchestration status not asked"),
        ("canceled", True, "old and orchestration Canceled"),
        ("suspended", False, "orchestration is Suspended"),
    ]


class ErrorBody:
    """What the SDK makes of a 500 with the host's error body: a status object with no runtime status."""

    def __init__(self) -> None:
        self.runtime_status = None
        self.Message = "An error has occurred."


class FlakyClient(FakeClient):
    """`a` raises (an unexpected code or a connection error), `b` answers a 500 error body, the rest as FakeClient."""

    async def get_status(self, instance_id: str) -> Any:
        self.asked.append(instance_id)
        if instance_id == "a":
            raise Exception("The operation failed with an unexpected status code 503")
        if instance_id == "b":
            return ErrorBody()
        return FakeStatus(self.statuses.get(instance_id))


def test_sweep_keeps_groups_whose_status_is_unreadable_and_goes_on_with_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    from core.settings import load_settings
    from starters.janitor import ScannerGroupStore, sweep

    groups = [
        ScannerGroupInfo(name="qscan-raises", instance_id="a", created_at=OLD),
        ScannerGroupInfo(name="qscan-error-body", instance_id="b", created_at=OLD),
        ScannerGroupInfo(name="qscan-purged", instance_id="c", created_at=OLD),
        ScannerGroupInfo(name="qscan-done", instance_id="d", created_at=OLD),
    ]
    deleted: list[str] = []
    settings = load_settings({**BASE_APP_SETTINGS, "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    client = FlakyClient({"d": "Completed"})
    with caplog.at_level(logging.WARNING, logger="starters.janitor"):
        report = asyncio.run(sweep(client, ScannerGroupStore(lambda: groups, deleted.append), settings, NOW))
    assert deleted == report.deleted == ["qscan-purged", "qscan-done"]
    assert [d.reason for d in report.decisions[:2]] == ["orchestration status unreadable"] * 2
    unreadable = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(unreadable) == 2
    assert all("its groups are kept" in line for line in unreadable)
