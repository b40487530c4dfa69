"""The JSON inputs `scan_deployment` sends to its activities and entities, and the final per-image results (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from core.options import QScannerMode, ScanOptions
from core.report import ImageResult, clip_reason
from core.results import CollectRequest, ImageToCheck, StoreRequest
from core.scan_plan import GroupPlan, failed_result, lease_key
from core.scan_views import GroupVerdict, failure_reason

TRACEBACK_MARKER = "Traceback (most recent call last)"


def describe_failure(error: BaseException) -> str:
    """A one-line reason for a failed task: the host's message without the activity's traceback."""
    text = str(error).split(TRACEBACK_MARKER, 1)[0]
    return clip_reason(f"{type(error).__name__}: {' '.join(text.split())}")


def lease_acquire_input(instance_id: str, now: datetime, ttl_s: int) -> dict[str, Any]:
    """Input of an image lease's `acquire`."""
    return {"instance_id": instance_id, "now": now.isoformat(), "ttl_s": ttl_s}


def quota_acquire_input(
    instance_id: str, groups: int, now: datetime, *, ttl_s: int, options: ScanOptions
) -> dict[str, Any]:
    """Input of the quota gate's `acquire` for `groups` scanner groups: their cores and the budgets in force."""
    return {
        "instance_id": instance_id,
        "groups": groups,
        "now": now.isoformat(),
        "ttl_s": ttl_s,
        "max_concurrent": options.max_concurrent_scanner_groups,
        "cores_per_group": options.scanner_cpu,
        "max_cores": options.aci_max_cores,
        "max_creates_per_5_minutes": options.aci_max_creates_per_5_minutes,
        "max_creates_per_hour": options.aci_max_creates_per_hour,
    }


def create_group_input(instance_id: str, group: GroupPlan, now: datetime) -> dict[str, Any]:
    """Input of `create_scanner_group`; the activity adds the secrets and the upload SAS in-process."""
    return {
        "instance_id": instance_id,
        "group_name": group.name,
        "images": [item.image for item in group.images],
        "results_prefix": group.prefix,
        "created_at": now.isoformat(),
    }


def collect_input(
    instance_id: str,
    group: GroupPlan,
    verdict: GroupVerdict | None,
    log_text: str | None,
    *,
    timed_out: bool,
    timeout_s: int,
    now: datetime,
    mode: QScannerMode = "get-report",
) -> dict[str, Any]:
    """Input of `collect_results` for one group; images without a status get the group's reason; `mode` is the
    scan's QSCANNER_MODE (ScanOptions), which decides whether a vulnerability report is required.
    """
    request = CollectRequest(
        instance_id=instance_id,
        images=list(group.images),
        scanner_group=group.name,
        prefix=group.prefix,
        missing_status="timed_out" if timed_out else "failed",
        exit_code=None if timed_out or verdict is None else verdict.exit_code,
        reason=failure_reason(verdict, log_text, timed_out=timed_out, timeout_s=timeout_s),
        now=now,
        mode=mode,
    )
    return request.model_dump(mode="json", exclude={"only", "skip_missing"})  # the scan queue's batches set them


def store_input(
    instance_id: str,
    target: Mapping[str, Any],
    results: list[ImageResult],
    *,
    status: str,
    started_at: datetime,
    finished_at: datetime,
    scanner_groups: Iterable[str] = (),
    rescan: bool = False,
) -> dict[str, Any]:
    """Input of `store_results`: the scan record, its per-image results and the groups whose uploads go.

    `rescan` is in the input only when true, so the inputs of every other scan stay as they were (golden histories).
    """
    request = StoreRequest(
        instance_id=instance_id,
        event=dict(target),
        status=status,
        started_at=started_at,
        finished_at=finished_at,
        results=results,
        scanner_groups=list(scanner_groups),
        rescan=rescan,
    )
    return request.model_dump(mode="json", exclude=None if rescan else {"rescan"})


def notify_input(
    instance_id: str, target: Mapping[str, Any], results: list[ImageResult], threshold: str
) -> dict[str, Any]:
    """Input of `send_notifications`."""
    return {
        "instance_id": instance_id,
        "event": dict(target),
        "results": [result.model_dump(mode="json") for result in results],
        "threshold": threshold,
    }


def final_results(
    images: Iterable[str],
    checks: Iterable[ImageToCheck],
    results: Mapping[str, ImageResult],
    *,
    instance_id: str,
    error: str | None,
) -> list[ImageResult]:
    """A result per image in `images` order; an image left without one failed (with the error, if any).

    An image that shares its lease key with another (same digest, other tag) takes that image's result.
    """
    key_of = {item.image: lease_key(item) for item in checks}
    by_key = {key_of[image]: result for image, result in results.items() if image in key_of}
    reason = f"scan did not finish: {error}" if error else "no result was produced"
    ordered: list[ImageResult] = []
    for image in images:
        result = results.get(image) or by_key.get(key_of.get(image, ""))
        if result is None:
            result = failed_result(image, reason, instance_id=instance_id)
        ordered.append(result if result.image == image else result.model_copy(update={"image": image}))
    return ordered
