"""Orchestration `scan_deployment_v2`: scan every image of a deployment (or one image) through the app's scan queue.

Replaces `scan_deployment` for new scans (a new name because the sequence of durable actions changed; the old one
stays registered until its instances have drained: docs/operations.md "Changing an orchestrator").
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
from pydantic import ValidationError

from core.custom_status import note_status
from core.report import clip_reason
from core.scan_input import parse_scan_input
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT_V2
from orchestrators.queue_run import QueueRun

INVALID_INPUT_PHASE = "failed"

bp = df.Blueprint()


@bp.function_name(ORCHESTRATOR_SCAN_DEPLOYMENT_V2)  # type: ignore[untyped-decorator]
@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR_SCAN_DEPLOYMENT_V2)  # type: ignore[untyped-decorator]
def scan_deployment_v2(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Input: `core.scan_input.ScanInput` JSON. Output: target, status, per-image results (as `scan_deployment`).

    Steps (orchestrators/queue_run.py): resolve images, digests, cache, queue (the batches run in `scan_batch`:
    create, wait with durable timers up to SCAN_TIMEOUT, collect), wait for each image's result, store, notify.
    """
    try:
        request = parse_scan_input(context.get_input())
    except ValidationError as error:
        reason = clip_reason(f"invalid input: {error.error_count()} problem(s): {error.errors()[0]['msg']}")
        context.set_custom_status(note_status(INVALID_INPUT_PHASE, reason))
        return {"target": None, "status": "failed", "images": [], "error": reason}
    return (yield from QueueRun(context, request).run())
