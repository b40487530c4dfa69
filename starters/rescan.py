"""Starting the rescan of deployed images (orchestrators/inventory_rescan.py, singleton instance `rescan-inventory`).

Timer `rescan_timer` on RESCAN_SCHEDULE (NCRONTAB, default hourly; read at indexing like SWEEP_SCHEDULE): each run
starts one `inventory_rescan` unless one is running, so an image is rescanned within one period of becoming due
(its latest result older than RESCAN_INTERVAL_HOURS) and a run that finds nothing due costs one short orchestration
(one `rescan_select` per RESCAN_PAGE_SIZE deployed images, no scan).
"""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from activities.orchestration_client import ACTIVE_RUNTIMES, runtime_of
from core.rescan import RESCAN_INSTANCE_ID
from core.trigger_bindings import load_sweep_binding
from orchestrators.names import ORCHESTRATOR_INVENTORY_RESCAN

logger = logging.getLogger(__name__)

RESCAN_TIMER_FUNCTION = "rescan_timer"

bp = df.Blueprint()


async def start_rescan(client: df.DurableOrchestrationClient, trigger: str) -> str | None:
    """Start the rescan orchestration unless one runs; the reason when not started."""
    if runtime_of(await client.get_status(RESCAN_INSTANCE_ID)) in ACTIVE_RUNTIMES:
        return "a rescan run is already looking for due images"
    await client.start_new(ORCHESTRATOR_INVENTORY_RESCAN, RESCAN_INSTANCE_ID, {"trigger": trigger})
    return None


@bp.function_name(RESCAN_TIMER_FUNCTION)  # type: ignore[untyped-decorator]
@bp.timer_trigger(arg_name="timer", schedule=load_sweep_binding().rescan_schedule, run_on_startup=False)  # type: ignore[untyped-decorator]
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def rescan_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Look for images due for a rescan."""
    reason = await start_rescan(client, "schedule")
    if reason:
        logger.info("rescan not started: %s", reason)
