"""Orchestration `inventory_rescan` (singleton `rescan-inventory`): start the rescans of deployed images that are due.

Started by the `rescan_timer` (RESCAN_SCHEDULE, hourly; starters/rescan.py). Page by page (core/rescan.py's
constants, continue_as_new every PAGES_PER_EXECUTION pages so 10,000 images stay within a bounded history):
1. `rescan_select`: the next RESCAN_PAGE_SIZE deployed images (sorted; the cursor is the last one) and the due ones
   among them, each with its rescan's deterministic instance id;
2. `start_rescans`: starts each due rescan (`scan_deployment_v2`, image target, `rescan: true`) unless it exists.
The rescans are not awaited: they queue behind every deployment scan in the scan queue's low class and may wait
hours; this orchestration ends once every page is looked at. No I/O, clock or environment here: the time is the
context's, the settings are the activities'.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
from pydantic import ValidationError

from activities import names
from core.rescan import MAX_RESCANS_PER_RUN, PAGES_PER_EXECUTION, RescanState
from orchestrators.calls import call, checked
from orchestrators.names import ORCHESTRATOR_INVENTORY_RESCAN

bp = df.Blueprint()


@bp.function_name(ORCHESTRATOR_INVENTORY_RESCAN)  # type: ignore[untyped-decorator]
@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR_INVENTORY_RESCAN)  # type: ignore[untyped-decorator]
def inventory_rescan(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Input: `core.rescan.RescanState` JSON (`{"trigger": ...}` to start). Output: the run's counts."""
    try:
        state = RescanState.model_validate(context.get_input() or {})
    except ValidationError as error:
        return {"status": "failed", "error": f"invalid input: {error.error_count()} problem(s)"}
    if state.started_at is None:
        state.started_at = context.current_utc_datetime
    for _ in range(PAGES_PER_EXECUTION):
        context.set_custom_status({"phase": "pages", "pages": state.pages, "due": state.due})
        request = {"after": state.after, "now": state.started_at.isoformat()}
        page = checked(names.RESCAN_SELECT, (yield call(context, names.RESCAN_SELECT, request)))
        state.pages += 1
        state.checked += int(page["checked"])
        due = list(page["due"])
        state.due += len(due)
        if due:
            request = {"rescans": due, "limit": MAX_RESCANS_PER_RUN - state.started}
            started = checked(names.START_RESCANS, (yield call(context, names.START_RESCANS, request)))
            state.started += int(started["started"])
            state.already += int(started["already"])
            state.deferred += int(started.get("deferred", 0))
        state.after = page.get("after")
        if not state.after or state.started >= MAX_RESCANS_PER_RUN:
            state.after = None  # the images after it are looked at by the next run
            break
    if state.after:
        state.executions += 1
        context.continue_as_new(state.model_dump(mode="json"))
        return {"status": "continued", "pages": state.pages}
    context.set_custom_status({"phase": "done"})
    summary = state.model_dump(mode="json", exclude={"after"})
    return {"status": "completed", **summary}
