"""Stub of the `scan_deployment` orchestration: records its input until the scan pipeline replaces it."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR_SCAN_DEPLOYMENT)  # type: ignore[untyped-decorator]
def scan_deployment(context: df.DurableOrchestrationContext) -> Any:
    """Set a custom status and return the event of the input (no I/O, deterministic)."""
    payload = context.get_input() or {}
    event = payload.get("event") if isinstance(payload, dict) else None
    context.set_custom_status({"phase": "received"})
    return event
