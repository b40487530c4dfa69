"""Starting the inventory sweep (orchestrators/inventory_sweep.py, singleton instance `sweep-inventory`).

- timer `sweep_timer` on SWEEP_SCHEDULE (NCRONTAB, read at indexing like JANITOR_SCHEDULE);
- timer `sweep_backfill` every 5 minutes: starts the first sweep once, when none ever ran (the backfill of what
  existed before the app was installed), and costs one status read otherwise;
- `POST /api/sweep` (admin key, like the host's own mutating APIs): 202 with the check-status payload, 409 while a
  sweep runs.
At most one sweep runs at a time: a trigger that finds it running does nothing.
"""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from activities.orchestration_client import ACTIVE_RUNTIMES, runtime_of
from core.sweep import SWEEP_INSTANCE_ID
from core.trigger_bindings import load_sweep_binding
from orchestrators.names import ORCHESTRATOR_INVENTORY_SWEEP
from starters.http_api import error_response

logger = logging.getLogger(__name__)

SWEEP_TIMER_FUNCTION = "sweep_timer"
SWEEP_BACKFILL_FUNCTION = "sweep_backfill"
SWEEP_HTTP_FUNCTION = "http_start_sweep"
SWEEP_ROUTE = "sweep"
BACKFILL_SCHEDULE = "0 */5 * * * *"

bp = df.Blueprint()


async def start_sweep(client: df.DurableOrchestrationClient, trigger: str, *, only_first: bool = False) -> str | None:
    """Start the sweep unless one runs (or, with `only_first`, unless one ever ran); the reason when not started."""
    runtime = runtime_of(await client.get_status(SWEEP_INSTANCE_ID))
    if runtime in ACTIVE_RUNTIMES:
        return "a sweep is already running"
    if only_first and runtime is not None:
        return "a sweep ran before"
    await client.start_new(ORCHESTRATOR_INVENTORY_SWEEP, SWEEP_INSTANCE_ID, {"trigger": trigger})
    logger.info("sweep started (%s)", trigger)
    return None


@bp.function_name(SWEEP_TIMER_FUNCTION)  # type: ignore[untyped-decorator]
@bp.timer_trigger(arg_name="timer", schedule=load_sweep_binding().sweep_schedule, run_on_startup=False)  # type: ignore[untyped-decorator]
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def sweep_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Start the scheduled sweep."""
    reason = await start_sweep(client, "schedule")
    if reason:
        logger.info("scheduled sweep not started: %s", reason)


@bp.function_name(SWEEP_BACKFILL_FUNCTION)  # type: ignore[untyped-decorator]
@bp.timer_trigger(arg_name="timer", schedule=BACKFILL_SCHEDULE, run_on_startup=False)  # type: ignore[untyped-decorator]
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def sweep_backfill(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Start the first sweep (backfill) if none ever ran."""
    await start_sweep(client, "backfill", only_first=True)


@bp.function_name(SWEEP_HTTP_FUNCTION)  # type: ignore[untyped-decorator]
@bp.route(route=SWEEP_ROUTE, methods=["POST"], auth_level=func.AuthLevel.ADMIN)  # type: ignore[untyped-decorator]
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def http_start_sweep(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST /api/sweep: start a sweep now; 202 with the check-status payload, 409 when one is running."""
    if req.get_body():
        return error_response(400, "POST /api/sweep takes no body")
    reason = await start_sweep(client, "api")
    if reason:
        return error_response(409, reason)
    response: func.HttpResponse = client.create_check_status_response(req, SWEEP_INSTANCE_ID)
    return response
