"""Rescans of deployed images (issue 11 item 3), the pure parts: which images are due, their instance ids, and the
state the `inventory_rescan` orchestration carries through continue_as_new.

An image is due when
- it is still deployed: at least one live inventory entry (a workload of a monitored subscription that SCAN_EXCLUDE
  does not exclude) runs it, and SCAN_EXCLUDE does not exclude the image itself; an image no longer deployed
  anywhere is never rescanned, whatever its results;
- it has a stored latest result, scanned at least RESCAN_INTERVAL_HOURS ago (an image never scanned is the sweep's:
  it queues it as a normal scan);
Each due image is rescanned once, however many workloads run it: its rescan's instance id is derived from the image
and the scan that produced its latest result (`scheduled_rescan_instance_id`), so every timer run, retry or
redelivery until that rescan has stored a newer result names the same instance, which is started once
(activities/rescan_activities.py). Its result is the next latest, with another scan id: the next rescan is due an
interval later, with a new id. No clock in the id: the same scenario names the same rescans.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from core.workloads import Workload

RESCAN_INSTANCE_ID = "rescan-inventory"
"""The singleton instance id of the `inventory_rescan` orchestration: at most one looks for due images at a time."""
SCHEDULED_RESCAN_PREFIX = "recheck-"
"""Instance ids of scheduled rescans (`scan_deployment_v2` with `rescan: true`); manual rescans are `rescan-...`."""
RESCAN_PAGE_SIZE = 250
"""Distinct images examined per page (one `rescan_select`, one `start_rescans`: 4 activities, ~8 history events)."""
PAGES_PER_EXECUTION = 10
"""Pages per execution before the orchestration continues as new (history of ~80 events at most)."""
MAX_RESCANS_PER_RUN = 500
"""Rescans one run starts at most: about what the default budget scans in an hour (ACI's 300 creates an hour, two
images a group, one group kept for deployments; docs/performance.md "Rescans"). The due images after them are
started by the next hourly runs, so the scan queue's low class (the entity's state) stays short and no rescan waits
anywhere near SCAN_QUEUE_MAX_HOURS."""


class LatestSeen(BaseModel):
    """What the rescan needs of an image's latest stored result: when, and which scan produced it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scanned_at: datetime | None = None
    instance_id: str | None = None


class DueRescan(BaseModel):
    """An image to rescan and the instance id of its rescan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    instance_id: str


def scheduled_rescan_instance_id(image: str, latest_scan: str | None) -> str:
    """The rescan of `image` whose latest result came from scan `latest_scan`: one instance per (image, result)."""
    digest = hashlib.sha256("\x1f".join(("rescan", image, latest_scan or "")).encode("utf-8")).hexdigest()
    return SCHEDULED_RESCAN_PREFIX + digest[:32]


def deployed_images(
    workloads: Iterable[Workload],
    *,
    subscriptions: Iterable[str],
    resource_excluded: Callable[[str], bool],
    image_excluded: Callable[[str], bool],
) -> list[str]:
    """The distinct images (sorted) run by a live workload of `subscriptions` that neither it nor the image is
    excluded from scanning.
    """
    monitored = {s.lower() for s in subscriptions}
    images: set[str] = set()
    for workload in workloads:
        if workload.subscription_id.lower() in monitored and not resource_excluded(workload.resource_id):
            images.update(image for image in workload.distinct_images() if not image_excluded(image))
    return sorted(images)


def page_after(images: Sequence[str], after: str | None, size: int = RESCAN_PAGE_SIZE) -> tuple[list[str], str | None]:
    """The next `size` images (sorted) after `after`, and the cursor of the page after it (None: last page)."""
    rest = [image for image in images if after is None or image > after]
    page = rest[:size]
    return page, (page[-1] if len(rest) > size else None)


def is_due(latest: LatestSeen | None, now: datetime, interval_hours: int) -> bool:
    """A stored latest result scanned at least `interval_hours` before `now`."""
    return (
        latest is not None
        and latest.scanned_at is not None
        and latest.scanned_at <= now - timedelta(hours=interval_hours)
    )


def due_rescans(latest: Mapping[str, LatestSeen | None], now: datetime, interval_hours: int) -> list[DueRescan]:
    """The due images among `latest` (image -> its latest result, None when never scanned), in image order."""
    return [
        DueRescan(image=image, instance_id=scheduled_rescan_instance_id(image, seen.instance_id))
        for image, seen in sorted(latest.items())
        if seen is not None and is_due(seen, now, interval_hours)
    ]


class RescanState(BaseModel):
    """The `inventory_rescan` orchestration's input, carried through continue_as_new."""

    model_config = ConfigDict(extra="forbid")

    trigger: str = "schedule"
    started_at: datetime | None = None
    after: str | None = None
    """The last image of the previous page (the cursor); None before the first page."""
    pages: int = 0
    checked: int = 0
    due: int = 0
    started: int = 0
    already: int = 0
    """Due images whose rescan instance already existed (started by an earlier run, still running or done)."""
    deferred: int = 0
    """Due images left for the next run (MAX_RESCANS_PER_RUN reached)."""
    executions: int = Field(default=1, ge=1)
