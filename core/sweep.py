"""The Resource Graph sweep's pure parts: the query, rows as observed workloads, throttling headers, sweep state.

Resource Graph facts (Microsoft Learn):
- "Working with large Azure resource data sets": a page holds at most 1,000 rows (`$top`); the next page is asked
  with the `$skipToken` of the previous answer.
- "Guidance for throttled requests in Azure Resource Graph": every answer carries `x-ms-user-quota-remaining` (queries
  left in the window) and `x-ms-user-quota-resets-after` (`hh:mm:ss` until the window resets); the default quota is
  15 queries per 5-second window per user; beyond it, 429.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.images import InvalidImageRef, parse_image_ref
from core.resource_ids import InvalidResourceId, clip, parse_resource_id
from core.workloads import MAX_IMAGES_PER_WORKLOAD, Observed, WorkloadImage

PAGE_SIZE = 1000
"""Resource Graph's largest page (`$top`)."""
PAGES_PER_EXECUTION = 5
"""Pages read before the orchestration continues as new (bounded history: ~7 events per page)."""
SCANS_PER_EXECUTION = 50
"""Scans started (and awaited) per execution of the sweep, before it continues as new."""
MAX_SCANS_PER_SWEEP = 1000
"""Images queued by one sweep at most; the rest wait for the next sweep (a backfill of a large estate is spread)."""
DEFAULT_RESETS_AFTER_S = 5
"""When a 429 carries no usable reset header: Resource Graph's window is 5 seconds."""
MAX_WAIT_S = 300
QUOTA_REMAINING_HEADER = "x-ms-user-quota-remaining"
QUOTA_RESETS_AFTER_HEADER = "x-ms-user-quota-resets-after"
SWEEP_INSTANCE_ID = "sweep-inventory"
"""The singleton instance id of the sweep orchestration: at most one sweep runs at a time."""

SWEPT_TYPES = ("microsoft.containerinstance/containergroups", "microsoft.app/containerapps", "microsoft.app/jobs")
SWEEP_QUERY = (
    "resources"
    f" | where type in~ ({', '.join(repr(t) for t in SWEPT_TYPES)})"
    " | project id, type, location, subscriptionId, resourceGroup, properties"
    " | order by id asc"
)
"""Every container group, container app and job of the subscriptions asked, in a stable order for paging."""

_HMS = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})")


def resets_after_seconds(value: str | None) -> int | None:
    """`00:00:03` -> 3; None when absent or not `hh:mm:ss`."""
    match = _HMS.fullmatch((value or "").strip())
    if match is None:
        return None
    hours, minutes, seconds = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def quota_remaining(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdigit() else None


def _containers(items: object, aci: bool, init: bool) -> list[WorkloadImage]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError("containers is not a list")
    images: list[WorkloadImage] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError("a container is not an object")
        holder = item.get("properties") if aci else item
        raw = holder.get("image") if isinstance(holder, Mapping) else None
        try:
            canonical = parse_image_ref(raw if isinstance(raw, str) else "").canonical
        except InvalidImageRef:
            continue  # an unparseable image is skipped here as resolve_images rejects it
        images.append(WorkloadImage(image=canonical, container=str(item.get("name") or ""), init=init))
    return images


def observed_from_row(row: Mapping[str, Any]) -> Observed:
    """One Resource Graph row as an observed workload; ValueError for a row that is not one."""
    resource_id = row.get("id")
    try:
        parts = parse_resource_id(resource_id if isinstance(resource_id, str) else "")
    except InvalidResourceId as error:
        raise ValueError(str(error)) from None
    properties = row.get("properties")
    if not isinstance(properties, Mapping):
        raise ValueError(f"row {clip(resource_id)} has no properties object")
    if parts.kind == "aci":
        images = _containers(properties.get("containers"), True, False)
        images += _containers(properties.get("initContainers"), True, True)
    else:
        template = properties.get("template")
        template = template if isinstance(template, Mapping) else {}
        images = _containers(template.get("containers"), False, False)
        images += _containers(template.get("initContainers"), False, True)
    location = row.get("location")
    return Observed(
        resource_id=parts.resource_id,
        location=location.replace(" ", "").lower() if isinstance(location, str) and location else None,
        images=tuple(images[:MAX_IMAGES_PER_WORKLOAD]),
    )


class SweepState(BaseModel):
    """The sweep orchestration's input, carried through continue_as_new."""

    model_config = ConfigDict(extra="forbid")

    sweep_id: str = ""
    sequence: int = 0
    """1 + the sweeps recorded before this one: names its image scans (no clock in them, so runs repeat)."""
    started_at: datetime | None = None
    trigger: str = "schedule"
    subscriptions: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
    phase: str = "pages"
    skip_token: str | None = None
    pages: int = 0
    queries: int = 0
    throttled: int = 0
    seen: int = 0
    added: int = 0
    removed: int = 0
    skipped_rows: int = 0
    to_scan: list[str] = Field(default_factory=list)
    scans_started: int = 0
    executions: int = 1
