"""Payloads between the scan queue's orchestrations (`scan_deployment_v2`, `scan_batch`) and the queue (pure).

Also the few timing rules of the queue's orchestrations: where a waiter's deadline lies, the batch's sparse
backstops, how long a deleted group may take to go.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.options import ScanOptions
from core.report import ImageResult
from core.results import ImageToCheck
from core.scan_plan import lease_key
from core.scan_queue import BATCH_GRACE_S, Budget, Grant, QueuedImage

SCAN_BATCH_ORCHESTRATOR = "scan_batch"
IMAGE_DONE_EVENT = "image_done"
"""Prefix of the event a batch runner raises on every instance that asked for an image once its result is stored:
`image_done_{image key}` (one name per image: the SDK keeps only one early event per name)."""
WAITER_BACKSTOP_S = 4 * 3600
"""A waiter whose images are all queued looks them up after this long if no event came (a lost event); one with a
holder looks at the holder's deadline plus WAITER_GRACE_S."""
WAITER_POLL_S = 900
"""After its backstop a waiter looks its images up this often (rare: lost events, a queue longer than the backstop)."""
SCANNER_UPLOAD_EVENT = "scanner_upload"
"""Raised by starters/upload_events.py when the scanner uploads `{prefix}/{index}/status.json` (Event Grid)."""
WAITER_GRACE_S = BATCH_GRACE_S
"""A waiter gives up on an image this long after its holder's scan deadline (collect, store and wake take seconds)."""
BACKSTOP_FRACTIONS = (0.5, 1.0)
"""A batch looks at its group itself (one GET) at half its SCAN_TIMEOUT and at the timeout: scanner_upload events
end images sooner; a lost event costs at most half the timeout, never a result."""
DELETE_CONFIRM_DELAYS_S = (15, 60, 300)
"""After its DELETE a batch reads the group again after these waits until it is gone (ACI deletes asynchronously
and counts a deleting group against the quota); after the last it releases anyway (the janitor finishes)."""
QUOTA_RETRY_DELAYS_S = (60, 120, 300, 600)
"""A create that ACI refused for quota (ContainerGroupQuotaReached) is tried again after these waits."""


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def budget_of(options: ScanOptions) -> Budget:
    """The queue's capacity budget from the scan options (settings)."""
    return Budget(
        max_groups=options.max_scanner_groups(),
        max_cores=options.aci_max_cores,
        scanner_cpu=options.scanner_cpu,
        max_creates_per_5_minutes=options.aci_max_creates_per_5_minutes,
        max_creates_per_hour=options.aci_max_creates_per_hour,
        max_images_per_group=options.max_images_per_scanner_group,
        scan_timeout_s=options.scan_timeout_seconds,
    )


def queued_image(item: ImageToCheck) -> QueuedImage:
    return QueuedImage(key=lease_key(item), image=item.image, digest=item.digest)


def enqueue_input(
    instance_id: str, items: list[ImageToCheck], now: datetime, options: ScanOptions, *, force: bool, low: bool = False
) -> dict[str, Any]:
    """Input of `enqueue`; `low` (a scheduled rescan) only when set, so other scans ask exactly as before."""
    return {
        "instance_id": instance_id,
        "now": now.isoformat(),
        "images": [queued_image(item).model_dump(mode="json") for item in items],
        "budget": budget_of(options).model_dump(mode="json"),
        "force": force,
        **({"low": True} if low else {}),
    }


def queue_input(now: datetime, options: ScanOptions, **fields: Any) -> dict[str, Any]:
    """Input of `release` (with runner=...) or `tick`: the time and the budget in force."""
    return {**fields, "now": now.isoformat(), "budget": budget_of(options).model_dump(mode="json")}


class BatchInput(_Payload):
    """Input of `scan_batch`: the grant and the scan options of the orchestration that started it."""

    grant: Grant
    options: ScanOptions = Field(default_factory=ScanOptions)


def wake_input(grants: list[dict[str, Any]], options: ScanOptions) -> dict[str, Any]:
    """Input of `wake_orchestrations` that starts one `scan_batch` per grant (its instance id is the runner's)."""
    starts = [
        {
            "name": SCAN_BATCH_ORCHESTRATOR,
            "instance_id": Grant.model_validate(grant).runner,
            "input": {"grant": grant, "options": options.model_dump(mode="json")},
        }
        for grant in grants
    ]
    return {"starts": starts, "events": []}


def image_done_event(key: str) -> str:
    """The name of the event that says the image with this key is stored."""
    return f"{IMAGE_DONE_EVENT}_{key}"


def image_done_input(requesters: list[str], key: str, runner: str, result: ImageResult) -> dict[str, Any]:
    """Input of `wake_orchestrations` that tells each requester an image's result is stored."""
    data = {"key": key, "runner": runner, "result": result.model_dump(mode="json", exclude_none=True)}
    name = image_done_event(key)
    return {"starts": [], "events": [{"instance_id": r, "name": name, "data": data} for r in requesters]}


def waiter_deadline(holder_deadline: datetime) -> datetime:
    """When a waiter stops waiting for its holder: the holder's scan deadline plus WAITER_GRACE_S."""
    return holder_deadline + timedelta(seconds=WAITER_GRACE_S)


def backstops(started: datetime, timeout_s: int) -> list[datetime]:
    """The batch's own looks at its group (BACKSTOP_FRACTIONS of the timeout after the group started)."""
    return [started + timedelta(seconds=max(1, round(timeout_s * f))) for f in BACKSTOP_FRACTIONS]
