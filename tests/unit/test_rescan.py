"""core.rescan: which deployed images are due for a rescan, their instance ids, paging."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from activities.rescan_activities import StartRescansRequest, start_rescans
from core.exclusions import parse_exclusions
from core.rescan import (
    SCHEDULED_RESCAN_PREFIX,
    DueRescan,
    LatestSeen,
    deployed_images,
    due_rescans,
    page_after,
    scheduled_rescan_instance_id,
)
from core.settings import load_settings
from core.workloads import Workload, WorkloadImage
from tests.unit.test_settings import MINIMAL

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
SUB = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"
OTHER = "11111111-2222-3333-4444-555555555555"
NGINX, REDIS, ADMIN = "docker.io/library/nginx:1.27", "docker.io/library/redis:7.4", "docker.io/acme/admin:1"


def workload(name: str, *images: str, sub: str = SUB, rg: str = "apps") -> Workload:
    rid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups/{name}"
    return Workload(resource_id=rid, kind="aci", subscription_id=sub, resource_group=rg, name=name,
                    images=tuple(WorkloadImage(image=i) for i in images), first_seen=NOW, last_seen=NOW,
                    recorded_at=NOW)  # fmt: skip


def test_only_images_deployed_in_a_monitored_workload_and_not_excluded_are_candidates() -> None:
    rules = parse_exclusions(["rg:legacy", "image:docker.io/acme/*"])
    workloads = [
        workload("a", NGINX, REDIS),
        workload("b", NGINX),  # shared: once
        workload("c", "docker.io/library/httpd:2.4", rg="legacy"),  # excluded workload
        workload("d", ADMIN),  # excluded image
        workload("e", "docker.io/library/busybox:1", sub=OTHER),  # not monitored
    ]
    images = deployed_images(
        workloads,
        subscriptions=[SUB],
        resource_excluded=lambda r: rules.for_resource(r) is not None,
        image_excluded=lambda i: rules.for_image(i) is not None,
    )
    assert images == [NGINX, REDIS]


def test_due_when_the_latest_result_is_at_least_an_interval_old_and_once_per_result() -> None:
    latest = {
        NGINX: LatestSeen(scanned_at=NOW - timedelta(hours=24), instance_id="scan-1"),
        REDIS: LatestSeen(scanned_at=NOW - timedelta(hours=23, minutes=59), instance_id="scan-2"),
        ADMIN: None,  # never scanned: the sweep's, not a rescan
        "docker.io/library/x:1": LatestSeen(scanned_at=None),
    }
    due = due_rescans(latest, NOW, 24)
    assert [d.image for d in due] == [NGINX]
    assert due[0].instance_id == scheduled_rescan_instance_id(NGINX, "scan-1")
    assert due[0].instance_id.startswith(SCHEDULED_RESCAN_PREFIX)
    again = due_rescans(latest, NOW + timedelta(hours=5), 24)  # a later timer run before the rescan stored
    assert again[0].instance_id == due[0].instance_id  # the same instance: started once
    assert scheduled_rescan_instance_id(NGINX, "scan-9") != due[0].instance_id  # the next interval: a new one


def test_pages_follow_the_sorted_images_with_a_cursor() -> None:
    images = [f"i{n:02d}" for n in range(5)]
    assert page_after(images, None, 2) == (["i00", "i01"], "i01")
    assert page_after(images, "i01", 2) == (["i02", "i03"], "i03")
    assert page_after(images, "i03", 2) == (["i04"], None)
    assert page_after(images, "i02", 2) == (["i03", "i04"], None)
    assert page_after([], None, 2) == ([], None)


# ---- start_rescans: once per instance id, failed ones again, at most `limit` --------------------------------------


class FakeClient:
    """A hand-written durable client: instances by id with their runtime status."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.started: list[tuple[str, str, dict[str, Any]]] = []

    async def get_status(self, instance_id: str) -> object:
        runtime = self.statuses.get(instance_id)
        return SimpleNamespace(runtime_status=None if runtime is None else SimpleNamespace(value=runtime))

    async def start_new(self, name: str, instance_id: str, data: dict[str, Any]) -> str:
        self.started.append((name, instance_id, data))
        self.statuses[instance_id] = "Pending"
        return instance_id


def test_start_rescans_starts_each_instance_once_restarts_failed_ones_and_defers_over_the_limit() -> None:
    settings = load_settings({**MINIMAL, "RESCAN_INTERVAL_HOURS": "12", "SCAN_CACHE_HOURS": "48"})
    due = [DueRescan(image=i, instance_id=scheduled_rescan_instance_id(i, "s")) for i in (NGINX, REDIS, ADMIN, "x:1")]
    client = FakeClient({due[0].instance_id: "Running", due[1].instance_id: "Failed"})
    request = StartRescansRequest(rescans=due, limit=2)
    counts = asyncio.run(start_rescans(client, settings, request))  # type: ignore[arg-type]
    assert counts == {"started": 2, "already": 1, "deferred": 1}
    assert [s[1] for s in client.started] == [due[1].instance_id, due[2].instance_id]
    name, _, data = client.started[0]
    assert name == "scan_deployment_v2" and data["rescan"] is True and data["force"] is False
    assert data["options"]["scan_cache_hours"] == 12  # a cached result counts only when fresher than the interval
    again = asyncio.run(start_rescans(client, settings, request))  # type: ignore[arg-type]
    assert again == {"started": 1, "already": 3, "deferred": 0}  # a redelivered activity starts only what is left
