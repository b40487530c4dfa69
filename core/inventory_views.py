"""The inventory API's pure parts: query validation, continuation tokens, and the JSON view of a workload."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from core.exclusions import ExclusionRules, exclusion_reason
from core.report import ImageResult
from core.resource_ids import InvalidResourceId, ResourceParts, parse_resource_id
from core.setting_types import GUID
from core.workloads import Workload

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_ROWS_READ = 1000
"""Rows one request reads at most (a selective minSeverity filter answers a shorter page and a token)."""
MAX_TOKEN_CHARS = 512
MAX_WORKLOADS_PER_IMAGE = 50
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
KINDS = ("aci", "aca", "aca-job")
FILTERS = ("subscription", "resourceGroup", "kind", "minSeverity", "pageSize", "continuationToken")


class BadQuery(ValueError):
    """A query parameter the API refuses (400 with this reason)."""


@dataclass(frozen=True)
class InventoryQuery:
    subscription: str | None
    resource_group: str | None
    kind: str | None
    min_severity: str | None
    page_size: int
    after: tuple[str, str] | None


def encode_token(partition: str, row: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([partition, row]).encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, str]:
    if len(token) > MAX_TOKEN_CHARS:
        raise BadQuery("continuationToken is too long")
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise BadQuery("continuationToken is not one this API gave") from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v for v in value)):
        raise BadQuery("continuationToken is not one this API gave")
    return value[0], value[1]


def parse_query(params: Mapping[str, str]) -> InventoryQuery:
    """The validated filters of `GET /api/inventory`; BadQuery names the first bad one."""
    unknown = sorted(set(params) - set(FILTERS) - {"code"})  # `code`: the function key
    if unknown:
        raise BadQuery(f"unknown query parameter {unknown[0]!r} (known: {', '.join(FILTERS)})")
    empty = [name for name in FILTERS if name in params and not params[name].strip()]
    if empty:
        raise BadQuery(f"query parameter {empty[0]} is empty (leave it out instead)")
    subscription = (params.get("subscription") or "").strip().lower() or None
    if subscription is not None and not GUID.fullmatch(subscription):
        raise BadQuery("subscription must be a subscription id (GUID)")
    group = (params.get("resourceGroup") or "").strip() or None
    if group is not None and (len(group) > 90 or not all(c.isalnum() or c in "-_.()" for c in group)):
        raise BadQuery("resourceGroup is not a resource group name")
    kind = (params.get("kind") or "").strip().lower() or None
    if kind is not None and kind not in KINDS:
        raise BadQuery(f"kind must be one of {', '.join(KINDS)}")
    severity = (params.get("minSeverity") or "").strip().upper() or None
    if severity is not None and severity not in SEVERITIES:
        raise BadQuery(f"minSeverity must be one of {', '.join(SEVERITIES)}")
    raw_size = (params.get("pageSize") or str(DEFAULT_PAGE_SIZE)).strip()
    if not raw_size.isdigit() or not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
        raise BadQuery(f"pageSize must be an integer from 1 to {MAX_PAGE_SIZE}")
    token = params.get("continuationToken")
    return InventoryQuery(subscription, group, kind, severity, int(raw_size), _decode_token(token) if token else None)


def parse_resource_param(value: str) -> ResourceParts:
    """The `{resourceId}` route value: URL-encoded or not, with or without its leading slash."""
    text = unquote(value or "")
    if not text.startswith("/"):
        text = "/" + text
    try:
        return parse_resource_id(text)
    except InvalidResourceId as error:
        raise BadQuery(str(error)) from None


def _severity_rank(result: ImageResult | None) -> int | None:
    """0 for CRITICAL .. 3 for LOW: the worst severity with findings; None for none or no result."""
    if result is None:
        return None
    for rank, severity in enumerate(SEVERITIES):
        if result.vulnerabilities.of(severity) > 0:
            return rank
    return None


def _rank_of(severity: object) -> int | None:
    return SEVERITIES.index(severity) if severity in SEVERITIES else None


Suppressed = Callable[[ImageResult | None, str], dict[str, Any] | None]
"""(latest result, workload resource id) -> what exceptions suppress in it (GET /api/images' view), None if nothing."""


def matches_severity(view: dict[str, Any], min_severity: str | None) -> bool:
    """minSeverity against a workload view: its `effectiveWorstSeverity`, what is left once the active exceptions
    suppressed what they match (issue 12: a suppressed finding is excluded from thresholds).
    """
    if min_severity is None:
        return True
    worst = view.get("effectiveWorstSeverity")
    return worst in SEVERITIES and SEVERITIES.index(worst) <= SEVERITIES.index(min_severity)


def result_view(result: ImageResult | None, key: str) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "imageKey": key,
        "status": result.status,
        "scannedAt": result.scanned_at.isoformat() if result.scanned_at else None,
        "digest": result.digest,
        "vulnerabilities": {s: result.vulnerabilities.of(s) for s in SEVERITIES},
        "instanceId": result.instance_id,
        "report": result.report,
    }


def workload_view(
    workload: Workload,
    latest: Callable[[str], tuple[str, ImageResult | None]],
    exclusions: ExclusionRules | None = None,
    suppressed: Suppressed | None = None,
) -> dict[str, Any]:
    """One workload with each image's link to its latest result (`latest(image)` -> (image key, result)).

    `excluded` (on the workload and on each image) is the SCAN_EXCLUDE entry that keeps it from being scanned, null
    when none does: excluded workloads stay in the inventory, marked. `exceptions` (on each image) is what active
    exceptions suppress in its latest result as deployed in this workload (`suppressed(result, resource id)`, the
    view of GET /api/images), null when nothing is; `effectiveWorstSeverity` is the worst severity they leave.
    """
    rules = exclusions or ExclusionRules()
    images = []
    effective: list[int] = []
    for item in workload.images:
        key, result = latest(item.image)
        excepted = suppressed(result, workload.resource_id) if suppressed is not None else None
        rank = _severity_rank(result) if excepted is None else _rank_of(excepted["effective"]["worst_severity"])
        effective += [rank] if rank is not None else []
        images.append(
            {
                "image": item.image,
                "container": item.container,
                "init": item.init,
                "digest": result.digest if result is not None else None,
                "latestResult": result_view(result, key),
                "excluded": exclusion_reason(rules, image=item.image),
                "exceptions": excepted,
            }
        )
    ranks = [r for r in (_severity_rank(latest(i)[1]) for i in workload.distinct_images()) if r is not None]
    return {
        "resourceId": workload.resource_id,
        "kind": workload.kind,
        "subscriptionId": workload.subscription_id,
        "resourceGroup": workload.resource_group,
        "name": workload.name,
        "location": workload.location,
        "firstSeen": workload.first_seen.isoformat(),
        "lastSeen": workload.last_seen.isoformat(),
        "eventTime": workload.event_time.isoformat() if workload.event_time else None,
        "worstSeverity": SEVERITIES[min(ranks)] if ranks else None,
        "effectiveWorstSeverity": SEVERITIES[min(effective)] if effective else None,
        "excluded": exclusion_reason(rules, resource_id=workload.resource_id),
        "images": images,
    }
