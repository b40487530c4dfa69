"""Pure decisions of `scan_deployment`: which images to scan, scanner groups, per-image outcomes, status, output."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from core.custom_status import progress_status
from core.naming import image_key, scanner_group_name
from core.report import ALERT_STATUSES, ImageResult, clip_reason
from core.results import ImageToCheck

OverallStatus = Literal["completed", "partial", "failed"]
Phase = Literal[
    "resolving",
    "checking_cache",
    "leasing",
    "queued",
    "waiting",
    "waiting_for_quota",
    "scanning",
    "collecting",
    "storing",
    "done",
    "failed",
]
PENDING = "pending"
QUEUED = "queued"
SCANNING = "scanning"
WAITING = "waiting"
LEASE_GRACE_SECONDS = 900
"""Time after SCAN_TIMEOUT for collect, store and delete before a lease lapses on its own."""
QUOTA_WAIT_SECONDS = 1800
"""How long an orchestration waits for a scanner group slot before its images fail."""
QUOTA_RETRY_INITIAL_SECONDS = 30
QUOTA_RETRY_MAX_SECONDS = 300
CAPACITY_RETRY_DELAYS_SECONDS = (60, 180, 300)
"""Waits before creating a scanner group again after ACI failed its provisioning for lack of capacity in the region
("ServiceUnavailable: The requested resource is not available in the location"); after the last, its images fail.
The waits come out of the scan's SCAN_TIMEOUT (the deadline stays where it was, and the leases with it)."""


class GroupPlan(BaseModel):
    """One scanner group: its deterministic name, the RESULTS_PREFIX of its uploads and its images in scan order."""

    model_config = ConfigDict(frozen=True)

    name: str
    prefix: str
    images: tuple[ImageToCheck, ...]


def group_prefix(instance_id: str, index: int) -> str:
    """The uploads prefix of group `index`: the instance id for the first group (the documented layout)."""
    return instance_id if index == 0 else f"{instance_id}-g{index}"


def plan_groups(
    instance_id: str, images: Sequence[ImageToCheck], *, max_per_group: int, max_groups: int
) -> list[GroupPlan]:
    """Split `images` into as few groups as `max_per_group` allows, never more than `max_groups`.

    With more images than `max_per_group * max_groups`, groups take more images each (one container scans its
    images in turn, so a group has no hard image limit) rather than exceed the concurrency limit. Sizes differ by
    at most one and the order is kept.
    """
    if not images:
        return []
    count = min(max(1, max_groups), math.ceil(len(images) / max(1, max_per_group)))
    size, extra = divmod(len(images), count)
    groups: list[GroupPlan] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        name = scanner_group_name(instance_id if index == 0 else f"{instance_id}:{index}")
        groups.append(GroupPlan(name=name, prefix=group_prefix(instance_id, index), images=tuple(images[start:end])))
        start = end
    return groups


def capacity_group_name(instance_id: str, index: int, attempt: int) -> str:
    """The name of group `index` created again (attempt 1, 2, ...) after a capacity failure: a new group, so that
    the create never meets the old one while ACI still deletes it (a long-running operation).
    """
    return scanner_group_name(f"{instance_id}:{index}:capacity-{attempt}")


def lease_ttl_seconds(scan_timeout_s: int) -> int:
    """How long an image lease lasts: the whole scan, a wait for quota and the grace for collect and cleanup."""
    return scan_timeout_s + QUOTA_WAIT_SECONDS + LEASE_GRACE_SECONDS


def lease_key(item: ImageToCheck) -> str:
    """The entity key of an image's lease: the image key (by digest when known)."""
    return image_key(item.image, item.digest)


def distinct_images(images: Iterable[ImageToCheck]) -> list[ImageToCheck]:
    """Each lease key once, first seen first (one deployment may use an image twice, by tag and by digest)."""
    seen: dict[str, ImageToCheck] = {}
    for item in images:
        seen.setdefault(lease_key(item), item)
    return list(seen.values())


def failed_result(image: str, reason: str, *, instance_id: str | None = None, digest: str | None = None) -> ImageResult:
    """A failed image: never scanned or no usable result; `reason` says why."""
    return ImageResult(image=image, digest=digest, status="failed", reason=clip_reason(reason), instance_id=instance_id)


def timed_out_result(image: str, reason: str, *, instance_id: str | None = None) -> ImageResult:
    """An image whose result did not arrive before the deadline."""
    return ImageResult(image=image, status="timed_out", reason=clip_reason(reason), instance_id=instance_id)


def shared_result(
    item: ImageToCheck, latest: ImageResult | None, holders: Iterable[str], *, instance_id: str
) -> ImageResult:
    """The result of an image another orchestration scanned while this one waited for its lease.

    Only a result written by one of the holders seen counts; anything else means the holder left no result.
    """
    seen = sorted(set(holders))
    if latest is not None and latest.instance_id in seen:
        shared_by = f"shared scan by {latest.instance_id}"
        if latest.reason and latest.reason.startswith(shared_by):
            reason = latest.reason  # stored by another waiter of the same scan: already says whose scan it was
        else:
            reason = shared_by + (f"; {latest.reason}" if latest.reason else "")
        return latest.model_copy(update={"image": item.image, "reason": clip_reason(reason)})
    return failed_result(
        item.image, f"shared scan by {', '.join(seen) or 'another orchestration'} left no result", digest=item.digest
    )


def overall_status(results: Sequence[ImageResult]) -> OverallStatus:
    """`completed` when every image has a result, `failed` when none has, `partial` in between."""
    bad = sum(1 for r in results if r.status in ALERT_STATUSES)
    if bad == 0:
        return "completed"
    return "failed" if bad == len(results) else "partial"


class Progress:
    """The custom status of one orchestration: phase, per-image progress, scanner groups and polls so far."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.phase: Phase = "resolving"
        self.images: dict[str, str] = {}
        self.groups: dict[str, str] = {}
        self.polls = 0
        self.note: str | None = None

    def add_images(self, images: Iterable[str], status: str = PENDING) -> None:
        """Track images (first seen first) with a starting status."""
        for image in images:
            self.images.setdefault(image, status)

    def mark(self, images: Iterable[str], status: str) -> None:
        """Set the progress of some images."""
        for image in images:
            self.images[image] = status

    def record(self, results: Iterable[ImageResult]) -> None:
        """Set images to their final status."""
        for result in results:
            self.images[result.image] = result.status

    def as_status(self) -> dict[str, Any]:
        """The JSON custom status (no secret: image references, group names and counts only).

        Bounded for Azure's 16 KB whatever the number of images: counts of every image and group, the first ones
        listed (see core.custom_status).
        """
        return progress_status(
            phase=self.phase,
            target=self.target,
            images=self.images,
            groups=self.groups,
            polls=self.polls,
            note=self.note,
        )


def scan_output(
    target: Mapping[str, Any], results: Sequence[ImageResult], *, note: str | None = None, error: str | None = None
) -> dict[str, Any]:
    """The orchestration output: target, overall status and every image's result (small, no report bodies)."""
    status: OverallStatus = overall_status(results) if results or not error else "failed"
    output: dict[str, Any] = {
        "target": dict(target),
        "status": status,
        "images": [r.model_dump(mode="json", exclude_none=True) for r in results],
    }
    if note:
        output["note"] = note
    if error:
        output["error"] = clip_reason(error)
    return output
