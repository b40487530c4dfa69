"""The inventory sweep's activities: settings for a sweep, one Resource Graph page applied, vanished entries
removed with the images to scan, and the run's record (orchestrators/inventory_sweep.py calls them).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import azure.durable_functions as df
from pydantic import BaseModel, ConfigDict

from activities import names, telemetry
from activities.activity_registry import activity_registrar, validated
from activities.clients import failing_fast
from activities.inventory_store import (
    images_of,
    record_sweep_rows,
    record_sweep_run,
    remove_vanished,
    sweep_runs,
    table,
)
from activities.resource_graph import query_page
from activities.results_store import LATEST_RESULT_ROW, _get_entity, _result_of
from activities.storage_clients import clients_for
from core.naming import image_key
from core.scope import exclusions_of, monitored_subscriptions
from core.settings import Settings, get_settings
from core.sweep import MAX_SCANS_PER_SWEEP

logger = logging.getLogger(__name__)


class SweepPageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sweep_id: str
    started_at: datetime
    subscriptions: list[str]
    skip_token: str | None = None
    now: datetime


class SweepFinishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sweep_id: str
    started_at: datetime
    subscriptions: list[str]
    now: datetime


def sweep_page(settings: Settings, request: SweepPageRequest) -> dict[str, Any]:
    """Query one page and apply its rows; a throttled answer changes nothing."""
    page = query_page(settings, request.subscriptions, request.skip_token)
    added = 0
    if not page.throttled:
        added = record_sweep_rows(table(settings), page.rows, request.sweep_id, request.started_at, request.now)
    if page.skipped:
        logger.warning("sweep %s: %d row(s) were not workloads and were skipped", request.sweep_id, page.skipped)
    return {
        "throttled": page.throttled,
        "rows": len(page.rows),
        "added": added,
        "skipped": page.skipped,
        "skip_token": page.skip_token,
        "quota_remaining": page.quota_remaining,
        "resets_after_s": page.resets_after_s,
    }


def needs_scan(settings: Settings, image: str, now: datetime) -> bool:
    """No stored result for the image: a sweep scans what was never scanned (a backfill, at normal priority).

    An image with a result, however old, is the rescans' (core/rescan.py): a low-priority scan once its result is
    older than RESCAN_INTERVAL_HOURS, which alerts only on change; a sweep scanning it too would queue it ahead of
    them at normal priority and alert on every repetition.
    """
    entity = _get_entity(clients_for(settings).table(settings.cache_table), image_key(image), LATEST_RESULT_ROW)
    result = _result_of(entity) if entity else None
    return result is None or result.scanned_at is None


def sweep_finish(settings: Settings, request: SweepFinishRequest) -> dict[str, Any]:
    """Remove what the sweep did not see; list (bounded) the images with no fresh result."""
    client = table(settings)
    removed = remove_vanished(client, request.subscriptions, request.sweep_id, request.started_at, request.now)
    scannable = images_of(client, request.subscriptions, exclusions_of(settings))  # SCAN_EXCLUDE: never scanned
    to_scan = [image for image in scannable if needs_scan(settings, image, request.now)]
    if len(to_scan) > MAX_SCANS_PER_SWEEP:
        logger.info(
            "sweep %s: %d images to scan, %d now, the rest next time",
            request.sweep_id,
            len(to_scan),
            MAX_SCANS_PER_SWEEP,
        )
    return {"removed": removed, "to_scan": to_scan[:MAX_SCANS_PER_SWEEP]}


sweep_blueprint = df.Blueprint()
activity = activity_registrar(sweep_blueprint)


@activity(names.SWEEP_BEGIN)
def sweep_begin_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: {} -> the monitored subscriptions, the scan options of the sweep's scans and its sequence number."""
    settings = get_settings()
    return {
        "subscriptions": list(monitored_subscriptions(settings)),
        "options": settings.scan_options().model_dump(mode="json"),
        "sequence": len(sweep_runs(table(settings))) + 1,
    }


@activity(names.SWEEP_PAGE)
@failing_fast
def sweep_page_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: `SweepPageRequest` -> the page's counts, next token and quota."""
    return sweep_page(get_settings(), validated(SweepPageRequest, payload))


@activity(names.SWEEP_FINISH)
def sweep_finish_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: `SweepFinishRequest` -> {"removed": n, "to_scan": [images]}."""
    return sweep_finish(get_settings(), validated(SweepFinishRequest, payload))


@activity(names.SWEEP_RECORD)
def sweep_record_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: the sweep's summary -> stored in the inventory table."""
    record_sweep_run(table(get_settings()), dict(payload))
    telemetry.sweep_recorded(dict(payload))
    return {"recorded": True}
