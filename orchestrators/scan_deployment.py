"""Orchestration `scan_deployment`: scan every image of a deployment (or one image) and always clean up."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
from pydantic import ValidationError

from core.custom_status import note_status
from core.report import clip_reason
from core.scan_input import parse_scan_input
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT
from orchestrators.scan_run import ScanRun

INVALID_INPUT_PHASE = "failed"

bp = df.Blueprint()


@bp.function_name(ORCHESTRATOR_SCAN_DEPLOYMENT)  # type: ignore[untyped-decorator]
@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR_SCAN_DEPLOYMENT)  # type: ignore[untyped-decorator]
def scan_deployment(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Input: `core.scan_input.ScanInput` JSON (older shapes accepted). Output: target, status, per-image results.

    Steps (see orchestrators/scan_run.py): resolve images, digests, cache, single-flight leases and quota, scanner
    groups, polls on durable timers, collect; then store, notify, delete groups and release, on every path.
    """
    try:
        request = parse_scan_input(context.get_input())
    except ValidationError as error:
        reason = clip_reason(f"invalid input: {error.error_count()} problem(s): {error.errors()[0]['msg']}")
        context.set_custom_status(note_status(INVALID_INPUT_PHASE, reason))
        return {"target": None, "status": "failed", "images": [], "error": reason}
    return (yield from ScanRun(context, request).run())
