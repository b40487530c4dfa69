"""The rescan orchestration's activities (orchestrators/inventory_rescan.py): one page of due images from the
inventory and the latest results, and the rescans started once each with the durable client.

`start_rescans` starts a rescan unless an instance with its id exists: the id names the (image, latest result)
pair, so an instance that is running or has completed is that very rescan (a timer run, retry or redelivery that
found the image still due before the rescan stored its result). Only one that failed, was terminated or canceled is
started again (the Durable client's start_new replaces an instance that is not running: Microsoft Learn, "Instance
management", start instances: an existing non-running instance with the same id is replaced).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import azure.durable_functions as df
from pydantic import BaseModel, ConfigDict, Field

from activities import names
from activities.activity_registry import ACTIVITY_INPUT_NAME, activity_registrar, validated
from activities.inventory_store import entries, table
from activities.orchestration_client import runtime_of
from activities.results_store import get_latest_result
from activities.storage_clients import clients_for
from core.exclusions import ExclusionRules, parse_exclusions
from core.options import ScanOptions
from core.rescan import RESCAN_PAGE_SIZE, DueRescan, LatestSeen, deployed_images, due_rescans, page_after
from core.scan_input import scan_input_for_image
from core.scope import monitored_subscriptions
from core.settings import Settings, get_settings
from core.workloads import Workload
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT_V2

logger = logging.getLogger(__name__)
RESTARTABLE = frozenset({"Failed", "Terminated", "Canceled"})
MAX_STARTS = RESCAN_PAGE_SIZE


class RescanSelectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str | None = None
    now: datetime


class StartRescansRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rescans: list[DueRescan] = Field(default_factory=list, max_length=MAX_STARTS)
    limit: int = Field(default=MAX_STARTS, ge=0)
    """New instances to start at most; the other due images are deferred to the next run."""


def _rules(settings: Settings) -> ExclusionRules:
    return parse_exclusions(settings.scan_exclude)


def rescan_select(settings: Settings, request: RescanSelectRequest) -> dict[str, Any]:
    """The page of deployed images after `request.after`, the due ones among them, and the next cursor."""
    rules = _rules(settings)
    workloads = (state for _, state in entries(table(settings)) if isinstance(state, Workload))
    images = deployed_images(
        workloads,
        subscriptions=monitored_subscriptions(settings),
        resource_excluded=lambda resource_id: rules.for_resource(resource_id) is not None,
        image_excluded=lambda image: rules.for_image(image) is not None,
    )
    page, after = page_after(images, request.after)
    clients = clients_for(settings)
    latest: dict[str, LatestSeen | None] = {}
    for image in page:
        result = get_latest_result(clients, settings, image)
        latest[image] = (
            None if result is None else LatestSeen(scanned_at=result.scanned_at, instance_id=result.instance_id)
        )
    due = due_rescans(latest, request.now, settings.rescan_interval_hours)
    return {"checked": len(page), "due": [d.model_dump(mode="json") for d in due], "after": after}


def rescan_options(settings: Settings) -> ScanOptions:
    """The scan options of a rescan. A rescan skips the cache (orchestrators/queue_run.py); the cap on
    `scan_cache_hours` only matters to code that would look it up (a cached result fresher than the interval).
    """
    options = settings.scan_options()
    hours = min(options.scan_cache_hours, settings.rescan_interval_hours)
    return options.model_copy(update={"scan_cache_hours": hours})


async def start_rescans(
    client: df.DurableOrchestrationClient, settings: Settings, request: StartRescansRequest
) -> dict[str, int]:
    """Start each rescan whose instance does not exist yet (or failed), at most `limit`; counts of started, already
    there, and deferred (over the limit).
    """
    options = rescan_options(settings)
    started = already = deferred = 0
    for rescan in request.rescans:
        runtime = runtime_of(await client.get_status(rescan.instance_id))
        if runtime is not None and runtime not in RESTARTABLE:
            already += 1
            continue
        if started >= request.limit:
            deferred += 1
            continue
        data = scan_input_for_image(rescan.image, options, rescan=True)
        await client.start_new(ORCHESTRATOR_SCAN_DEPLOYMENT_V2, rescan.instance_id, data)
        started += 1
    if started or deferred:
        logger.info("rescans started: %d (%d already there, %d for the next run)", started, already, deferred)
    return {"started": started, "already": already, "deferred": deferred}


rescan_blueprint = df.Blueprint()
activity = activity_registrar(rescan_blueprint)


@activity(names.RESCAN_SELECT)
def rescan_select_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: `RescanSelectRequest` -> {"checked": n, "due": [DueRescan], "after": cursor or null}."""
    return rescan_select(get_settings(), validated(RescanSelectRequest, payload))


@rescan_blueprint.function_name(names.START_RESCANS)  # type: ignore[untyped-decorator]
@rescan_blueprint.activity_trigger(input_name=ACTIVITY_INPUT_NAME, activity=names.START_RESCANS)  # type: ignore[untyped-decorator]
@rescan_blueprint.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def start_rescans_activity(payload: Any, client: df.DurableOrchestrationClient) -> dict[str, int]:
    """Activity: `StartRescansRequest` -> {"started": n, "already": m, "deferred": k} (see `start_rescans`)."""
    return await start_rescans(client, get_settings(), validated(StartRescansRequest, payload))
