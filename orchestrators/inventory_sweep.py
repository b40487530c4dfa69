"""Orchestration `inventory_sweep` (singleton `sweep-inventory`): reconcile the inventory with Azure Resource Graph.

Phases, carried through `continue_as_new` so the history stays bounded (core/sweep.py's constants):
1. `pages`: read the sweep query page by page (1,000 rows, `$skipToken`), applying each page to the inventory
   (`sweep_page` adds what is missing, refreshes what is there). Throttling is Resource Graph's: a 429 answer waits
   on a durable timer until the user's window resets, and a page that leaves no quota waits likewise before the next
   query. Every PAGES_PER_EXECUTION pages the orchestration continues as new.
2. `finish`: `sweep_finish` removes what the sweep did not see (vanished) and lists the images with no fresh result.
3. `scans`: scans those images (`scan_deployment`, one image each, deterministic instance ids), SCANS_PER_EXECUTION
   per execution; `start_scans` is the one place that starts them (to be pointed at the scan queue).
4. `sweep_record` stores the run's counts; the output is the same summary.

No I/O, clock or environment here: settings come from `sweep_begin`, time from the context.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from pydantic import ValidationError

from activities import names
from core.naming import rescan_instance_id
from core.sweep import MAX_WAIT_S, PAGES_PER_EXECUTION, SCANS_PER_EXECUTION, SweepState
from orchestrators.calls import call, checked
from orchestrators.names import ORCHESTRATOR_INVENTORY_SWEEP, ORCHESTRATOR_SCAN_DEPLOYMENT_V2

bp = df.Blueprint()


def sweep_scan_instance_id(image: str, sequence: int) -> str:
    """The scan of `image` queued by the sweep numbered `sequence`: the same instance on every replay or retry, and
    no clock in it (the same scenario names the same scans, and so the same scan queue runners).
    """
    return rescan_instance_id(image, f"sweep:{sequence}")


def start_scans(
    context: df.DurableOrchestrationContext, state: SweepState, images: list[str]
) -> Generator[Any, Any, int]:
    """Scan `images` as manual image scans are (scan_deployment_v2, image target: through the app's one scan queue,
    so they share its capacity and any scan of the same image in flight); returns how many failed.
    """
    tasks = [
        context.call_sub_orchestrator(
            ORCHESTRATOR_SCAN_DEPLOYMENT_V2,
            {"target": {"kind": "image", "image": image}, "options": state.options, "force": False},
            sweep_scan_instance_id(image, state.sequence),
        )
        for image in images
    ]
    if not tasks:
        return 0
    try:
        yield context.task_all(tasks)
    except Exception:  # a failed scan is recorded by the scan itself; the sweep goes on
        return sum(1 for task in tasks if getattr(task, "is_faulted", False)) or 1
    return 0


def _wait(context: df.DurableOrchestrationContext, seconds: int | None) -> Any:
    wait = min(max(int(seconds or 1), 1), MAX_WAIT_S)
    return context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))


@bp.function_name(ORCHESTRATOR_INVENTORY_SWEEP)  # type: ignore[untyped-decorator]
@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR_INVENTORY_SWEEP)  # type: ignore[untyped-decorator]
def inventory_sweep(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Input: `core.sweep.SweepState` JSON (`{"trigger": ...}` to start). Output: the sweep's counts."""
    try:
        state = SweepState.model_validate(context.get_input() or {})
    except ValidationError as error:
        return {"status": "failed", "error": f"invalid input: {error.error_count()} problem(s)"}
    if not state.sweep_id:
        begin = checked(names.SWEEP_BEGIN, (yield call(context, names.SWEEP_BEGIN, {})))
        started = context.current_utc_datetime
        state.sweep_id = started.strftime("%Y%m%dT%H%M%S")
        state.started_at = started
        state.sequence = int(begin.get("sequence", 0))
        state.subscriptions = list(begin["subscriptions"])
        state.options = dict(begin["options"])
    base = state.model_dump(mode="json", include={"sweep_id", "started_at", "subscriptions"})
    if state.phase == "pages":
        for _ in range(PAGES_PER_EXECUTION):
            context.set_custom_status({"phase": "pages", "pages": state.pages, "seen": state.seen})
            page = checked(
                names.SWEEP_PAGE,
                (
                    yield call(
                        context,
                        names.SWEEP_PAGE,
                        {**base, "skip_token": state.skip_token, "now": context.current_utc_datetime.isoformat()},
                    )
                ),
            )
            state.queries += 1
            if page["throttled"]:
                state.throttled += 1
                yield _wait(context, page.get("resets_after_s"))
                continue
            state.pages += 1
            state.seen += int(page["rows"])
            state.added += int(page["added"])
            state.skipped_rows += int(page["skipped"])
            state.skip_token = page.get("skip_token")
            if not state.skip_token:
                state.phase = "finish"
                break
            if page.get("quota_remaining") == 0:
                yield _wait(context, page.get("resets_after_s"))
        if state.phase == "pages":
            state.executions += 1
            context.continue_as_new(state.model_dump(mode="json"))
            return {"status": "continued", "sweep_id": state.sweep_id}
    if state.phase == "finish":
        finish = checked(
            names.SWEEP_FINISH,
            (yield call(context, names.SWEEP_FINISH, {**base, "now": context.current_utc_datetime.isoformat()})),
        )
        state.removed = int(finish["removed"])
        state.to_scan = list(finish["to_scan"])
        state.phase = "scans"
    if state.phase == "scans" and state.to_scan:
        batch, rest = state.to_scan[:SCANS_PER_EXECUTION], state.to_scan[SCANS_PER_EXECUTION:]
        context.set_custom_status({"phase": "scans", "queued": len(state.to_scan)})
        yield from start_scans(context, state, batch)
        state.scans_started += len(batch)
        state.to_scan = rest
        if rest:
            state.executions += 1
            context.continue_as_new(state.model_dump(mode="json"))
            return {"status": "continued", "sweep_id": state.sweep_id}
    summary = {
        "sweep_id": state.sweep_id,
        "trigger": state.trigger,
        "started_at": state.started_at.isoformat() if state.started_at else None,
        "finished_at": context.current_utc_datetime.isoformat(),
        "subscriptions": len(state.subscriptions),
        "pages": state.pages,
        "queries": state.queries,
        "throttled": state.throttled,
        "seen": state.seen,
        "added": state.added,
        "removed": state.removed,
        "skipped_rows": state.skipped_rows,
        "scans_started": state.scans_started,
        "executions": state.executions,
    }
    checked(names.SWEEP_RECORD, (yield call(context, names.SWEEP_RECORD, summary)))
    context.set_custom_status({"phase": "done"})
    return {"status": "completed", **summary}
