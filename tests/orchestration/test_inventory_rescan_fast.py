"""The rescan orchestrator and a rescan's scan over scripted answers (tests/orchestration/fake_context.py)."""

from __future__ import annotations

from typing import Any

from activities import names
from core.options import ScanOptions
from core.rescan import PAGES_PER_EXECUTION, RESCAN_INSTANCE_ID, scheduled_rescan_instance_id
from core.scan_input import scan_input_for_image
from orchestrators.calls import QUEUE_ENTITY_KEY
from orchestrators.names import ORCHESTRATOR_INVENTORY_RESCAN, ORCHESTRATOR_SCAN_DEPLOYMENT_V2
from tests.orchestration.fake_context import START, ScriptedRun
from tests.orchestration.scan_answers import NGINX, REDIS, cache_misses
from tests.orchestration.test_queue_fast import QUEUE, key


def due(image: str) -> dict[str, str]:
    return {"image": image, "instance_id": scheduled_rescan_instance_id(image, "scan-old")}


def rescan_run(pages: list[dict[str, Any]], state: dict[str, Any] | None = None) -> tuple[ScriptedRun, list[Any]]:
    answers = iter(pages)
    cursors: list[Any] = []

    def select(payload: dict[str, Any]) -> dict[str, Any]:
        cursors.append(payload["after"])
        assert payload["now"] == START.isoformat()
        return next(answers)

    run = ScriptedRun(ORCHESTRATOR_INVENTORY_RESCAN, state or {"trigger": "schedule"}, instance_id=RESCAN_INSTANCE_ID)
    run.on_activity(names.RESCAN_SELECT, select)
    run.on_activity(names.START_RESCANS, lambda p: {"started": len(p["rescans"]) - 1, "already": 1, "deferred": 0})
    return run, cursors


def test_nothing_due_is_one_short_execution_without_starts() -> None:
    run, cursors = rescan_run([{"checked": 3, "due": [], "after": None}])
    result = run.run()
    assert result.status == "Completed" and cursors == [None]
    assert result.sequence() == [f"activity:{names.RESCAN_SELECT}"]
    assert (result.output["checked"], result.output["due"], result.output["started"]) == (3, 0, 0)


def test_due_images_are_started_page_by_page_and_the_run_continues_as_new() -> None:
    pages = [{"checked": 250, "due": [due(NGINX), due(REDIS)], "after": f"img-{n}"} for n in range(PAGES_PER_EXECUTION)]
    run, cursors = rescan_run(pages)
    result = run.run()
    assert result.status == "ContinuedAsNew"
    assert cursors == [None] + [f"img-{n}" for n in range(PAGES_PER_EXECUTION - 1)]
    starts = result.calls(names.START_RESCANS)
    assert len(starts) == PAGES_PER_EXECUTION and starts[0]["rescans"] == [due(NGINX), due(REDIS)]
    state = result.output
    assert (state["after"], state["pages"], state["due"], state["executions"]) == (
        f"img-{PAGES_PER_EXECUTION - 1}", PAGES_PER_EXECUTION, 2 * PAGES_PER_EXECUTION, 2)  # fmt: skip
    assert len(result.history) <= 12 * PAGES_PER_EXECUTION  # bounded per execution
    last, cursors = rescan_run([{"checked": 10, "due": [], "after": None}], state)
    final = last.run()
    assert cursors == [state["after"]] and final.status == "Completed"
    assert (final.output["pages"], final.output["started"], final.output["already"]) == (
        PAGES_PER_EXECUTION + 1, PAGES_PER_EXECUTION, PAGES_PER_EXECUTION)  # fmt: skip


ONE_GROUP = {"max_groups": 1, "max_images_per_group": 1, "scan_timeout_s": 1200}
BUSYBOX = "docker.io/library/busybox:1.36"


def rescan_scan(image: str) -> ScriptedRun:
    options = ScanOptions(resolve_digests=False, scan_timeout_seconds=1200, max_concurrent_scanner_groups=1)
    data = scan_input_for_image(image, options, rescan=True)
    run = ScriptedRun(ORCHESTRATOR_SCAN_DEPLOYMENT_V2, data, scheduled_rescan_instance_id(image, "scan-old"))
    run.on_activity("lookup_cache", cache_misses)
    run.on_activity("store_results", {"containers_deleted": 0})
    run.on_activity("send_notifications", {"email": False, "webhook": False})
    run.on_activity("wake_orchestrations", lambda p: {"started": len(p["starts"]), "raised": len(p["events"])})
    return run


def ask(run: ScriptedRun, who: str, image: str) -> dict[str, Any]:
    images = [{"key": key(image), "image": image}]
    request = {"instance_id": who, "now": START.isoformat(), "budget": ONE_GROUP, "images": images}
    return dict(run.entity_operation(QUEUE, QUEUE_ENTITY_KEY, "enqueue", request))


def test_a_rescan_enqueues_low_and_waits_while_a_deployment_scan_is_pending() -> None:
    run = rescan_scan(REDIS)
    assert ask(run, "scan-deploy-a", NGINX)["grants"]  # the one group is busy
    assert not ask(run, "scan-deploy-b", BUSYBOX).get("grants")  # a deployment scan waits
    for _ in range(10):
        if any(c.kind == "entity" and c.name == "enqueue" for c in run.log):
            break
        run.step()
    enqueue = next(c.input for c in run.log if c.kind == "entity" and c.name == "enqueue")
    assert enqueue["low"] is True and enqueue["force"] is True  # a rescan scans: not the queue's memory
    assert not any(c.name == "lookup_cache" for c in run.log)  # nor the cache
    state = run.entity_state(QUEUE, QUEUE_ENTITY_KEY)
    pending = [(p["item"]["key"], p.get("low", False)) for p in state["pending"]]
    assert pending == [(key(BUSYBOX), False), (key(REDIS), True)]  # behind the deployment scan
    assert not any(c.kind == "activity" and c.name == "wake_orchestrations" for c in run.log)  # nothing granted


def test_a_deployment_scan_enqueues_exactly_as_before() -> None:
    run = ScriptedRun(
        ORCHESTRATOR_SCAN_DEPLOYMENT_V2,
        scan_input_for_image(NGINX, ScanOptions(resolve_digests=False)),
        "rescan-manual",
    )
    run.on_activity("lookup_cache", cache_misses)
    for _ in range(10):
        if any(c.kind == "entity" for c in run.log):
            break
        run.step()
    enqueue = next(c.input for c in run.log if c.kind == "entity" and c.name == "enqueue")
    assert "low" not in enqueue
