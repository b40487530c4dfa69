"""Orchestration `inventory_events`: apply one Event Hub batch's writes and deletes to the inventory (one activity
with the app's retry policy; started by the Event Hub starter with a deterministic `inv-<32 hex>` id).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from activities import names
from orchestrators.calls import call
from orchestrators.names import ORCHESTRATOR_INVENTORY_EVENTS

bp = df.Blueprint()


@bp.function_name(ORCHESTRATOR_INVENTORY_EVENTS)  # type: ignore[untyped-decorator]
@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR_INVENTORY_EVENTS)  # type: ignore[untyped-decorator]
def inventory_events(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Input: `activities.inventory_events.InventoryUpdate` JSON. Output: the activity's counts."""
    result: dict[str, Any] = yield call(context, names.APPLY_INVENTORY_EVENTS, context.get_input())
    return result
