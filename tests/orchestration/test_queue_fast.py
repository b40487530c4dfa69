"""scan_deployment_v2 and scan_batch on the fake backend (tests/orchestration/fake_context.py): the real orchestrators
through the SDK over synthetic histories, with the app's real scan_queue entity; external events on a virtual clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from core.naming import batch_instance_id
from core.options import ScanOptions
from core.queue_payloads import SCAN_BATCH_ORCHESTRATOR, WAITER_GRACE_S, image_done_event, queued_image
from core.results import ImageToCheck
from core.scan_input import scan_input_for_image
from orchestrators.calls import QUEUE_ENTITY_KEY
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT_V2
from tests.orchestration.fake_context import START, ScriptedRun
from tests.orchestration.scan_answers import NGINX, REDIS, SUCCEEDED, cache_misses, deployment_input, resolved

QUEUE = "scan_queue"
OPTIONS = ScanOptions(resolve_digests=False, scan_timeout_seconds=1200)


def key(image: str) -> str:
    return queued_image(ImageToCheck(image=image)).key


RUNNER = batch_instance_id(1, key(NGINX), "scan-a")  # the queue's name for the batch `batch()` sets up


def result(image: str, runner: str, status: str = "completed") -> dict[str, Any]:
    return {"image": image, "status": status, "instance_id": runner, "reason": None,
            "vulnerabilities": {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 0, "LOW": 0}}  # fmt: skip


def deployment(*images: str) -> ScriptedRun:
    run = ScriptedRun(ORCHESTRATOR_SCAN_DEPLOYMENT_V2, deployment_input(scan_timeout_seconds=1200), "scan-v2-1")
    run.on_activity("resolve_images", resolved(*images))
    run.on_activity("lookup_cache", cache_misses)
    run.on_activity("store_results", {"containers_deleted": 0})
    run.on_activity("send_notifications", {"email": False, "webhook": False})
    run.on_activity("wake_orchestrations", lambda p: {"started": len(p["starts"]), "raised": len(p["events"])})
    return run


def rescan(image: str) -> ScriptedRun:
    """A scheduled rescan of one image (ScanInput.rescan), as task A's scheduler starts it."""
    run = ScriptedRun(ORCHESTRATOR_SCAN_DEPLOYMENT_V2, scan_input_for_image(image, OPTIONS, rescan=True), "rescan-1")
    run.on_activity("store_results", {"containers_deleted": 0})
    run.on_activity("send_notifications", {"email": False, "webhook": False})
    run.on_activity("wake_orchestrations", lambda p: {"started": len(p["starts"]), "raised": len(p["events"])})
    return run


def other_holds(run: ScriptedRun, image: str) -> dict[str, Any]:
    """Another deployment asked first: its batch is in flight; the queue's answer (holder, deadline)."""
    budget = {"max_groups": 20, "max_images_per_group": 2, "scan_timeout_s": 1200}
    reply = run.entity_operation(QUEUE, QUEUE_ENTITY_KEY, "enqueue", {
        "instance_id": "scan-other", "now": START.isoformat(), "images": [queued_image(ImageToCheck(image=image))
                                                                          .model_dump(mode="json")],
        "budget": budget})  # fmt: skip
    return dict(reply["grants"][0])


def test_a_deployment_queues_starts_its_batch_and_ends_on_the_image_events() -> None:
    run = deployment(NGINX, REDIS)
    for image, at in ((REDIS, 200), (NGINX, 300)):
        done = {"key": key(image), "runner": RUNNER, "result": result(image, RUNNER)}
        run.raise_event(START + timedelta(seconds=at), image_done_event(key(image)), done)
    outcome = run.run()
    assert outcome.status == "Completed" and outcome.output["status"] == "completed"
    assert [i["image"] for i in outcome.output["images"]] == [NGINX, REDIS]
    wake = outcome.calls("wake_orchestrations")[0]
    assert [s["name"] for s in wake["starts"]] == [SCAN_BATCH_ORCHESTRATOR] * 2  # a short queue: one image each
    assert [s["input"]["grant"]["requesters"] for s in wake["starts"]] == [{key(NGINX): ["scan-v2-1"]},
                                                                           {key(REDIS): ["scan-v2-1"]}]  # fmt: skip
    enqueue = f"entity:@scan_queue@{QUEUE_ENTITY_KEY}:enqueue"
    expected = ["activity:resolve_images", "activity:lookup_cache", enqueue, "activity:wake_orchestrations"]
    assert outcome.sequence()[:4] == expected
    stored_at = datetime.fromisoformat(outcome.calls("store_results")[0]["finished_at"].replace("Z", "+00:00"))
    assert stored_at == START + timedelta(seconds=300)
    assert len(outcome.history) <= 40


def test_a_waiter_whose_holder_finishes_just_before_its_deadline_gets_the_result() -> None:
    run = deployment(NGINX)
    grant = other_holds(run, NGINX)
    deadline = datetime.fromisoformat(grant["deadline"]) + timedelta(seconds=WAITER_GRACE_S)
    run.raise_event(
        deadline - timedelta(seconds=1),
        image_done_event(key(NGINX)),
        {"key": key(NGINX), "runner": grant["runner"], "result": result(NGINX, grant["runner"])},
    )
    outcome = run.run()
    assert outcome.output["images"][0]["status"] == "completed"
    assert outcome.calls("wake_orchestrations") == []  # nothing granted to this one: the image was in flight
    assert max(outcome.timers) == deadline  # its deadline is the holder's, plus the grace


def test_a_lost_event_costs_latency_only() -> None:
    run = deployment(NGINX)
    grant = other_holds(run, NGINX)
    run.entity_operation(QUEUE, QUEUE_ENTITY_KEY, "finish_image",
                         {"runner": grant["runner"], "key": key(NGINX), "now": START.isoformat()})  # fmt: skip
    run.on_activity("read_latest_results", {"results": [result(NGINX, grant["runner"])]})
    outcome = run.run()  # no event: the backstop at the holder's deadline finds the stored result
    assert outcome.output["images"][0]["status"] == "completed"
    assert len(outcome.calls("read_latest_results")) == 1


def test_a_waiter_gives_up_only_after_its_holders_deadline() -> None:
    run = deployment(NGINX)
    grant = other_holds(run, NGINX)
    run.on_activity("read_latest_results", {"results": [None]})
    outcome = run.run()
    image = outcome.output["images"][0]
    assert image["status"] == "timed_out" and grant["runner"] in image["reason"]
    assert outcome.calls("read_latest_results")  # looked in storage before giving up


def batch(*images: str, requesters: dict[str, list[str]] | None = None) -> ScriptedRun:
    grant = {
        "runner": RUNNER,
        "images": [queued_image(ImageToCheck(image=i)).model_dump(mode="json") for i in images],
        "requesters": requesters or {key(i): ["scan-a"] for i in images},
        "deadline": (START + timedelta(seconds=1500)).isoformat(),
    }
    run = ScriptedRun(SCAN_BATCH_ORCHESTRATOR, {"grant": grant, "options": OPTIONS.model_dump(mode="json")},
                      RUNNER)  # fmt: skip
    run.entity_operation(QUEUE, QUEUE_ENTITY_KEY, "enqueue", {
        "instance_id": "scan-a", "now": START.isoformat(), "images": grant["images"],
        "budget": {"max_groups": 1, "max_images_per_group": 2, "scan_timeout_s": 1200}})  # fmt: skip
    run.on_activity("create_scanner_group", {"group_name": "g", "exists": True, "created": True})
    run.on_activity("store_results", {"containers_deleted": 0})
    run.on_activity("delete_scanner_group", {"deleted": True})
    run.on_activity("get_scanner_state", {"exists": False})
    run.on_activity("wake_orchestrations", lambda p: {"started": len(p["starts"]), "raised": len(p["events"])})
    return run


def collect_what_uploaded(uploaded: set[int], images: tuple[str, ...]) -> Any:
    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        wanted = [n for n in payload["only"] if n in uploaded or not payload["skip_missing"]]
        return {"results": [result(images[n], payload["instance_id"]) for n in wanted]}

    return answer


def test_a_batch_collects_each_image_on_its_event_wakes_its_requesters_and_releases() -> None:
    images = (NGINX, REDIS)
    run = batch(*images)
    uploaded: set[int] = set()
    run.on_activity("collect_results", collect_what_uploaded(uploaded, images))
    for n, at in ((0, 100), (1, 250)):
        run.raise_event(START + timedelta(seconds=at), "scanner_upload",
                        {"container": "u", "prefix": RUNNER, "index": n})  # fmt: skip
    original = run.step

    def step() -> Any:  # the scanner uploads status.json when its event is raised
        uploaded.update(n for n, at in ((0, 100), (1, 250)) if run.now >= START + timedelta(seconds=at))
        return original()

    run.step = step  # type: ignore[method-assign]
    outcome = run.run()
    assert outcome.status == "Completed"
    assert list(outcome.output["recorded"]) == [NGINX, REDIS]
    wakes = [c for c in outcome.calls("wake_orchestrations") if c["events"]]
    assert [[e["name"] for e in w["events"]] for w in wakes] == [[image_done_event(key(NGINX))],
                                                                 [image_done_event(key(REDIS))]]  # fmt: skip
    stores = outcome.calls("store_results")
    assert [len(s["results"]) for s in stores] == [1, 2] and stores[-1]["scanner_groups"]  # uploads go with the last
    assert outcome.calls("get_scanner_state") == [{"group_name": outcome.output["group"]}]  # only: is it gone?
    arm = sum(len(outcome.calls(n)) for n in ("create_scanner_group", "get_scanner_state", "delete_scanner_group"))
    assert arm == 3  # create (GET + PUT), DELETE, GET: 4 ARM requests
    assert run.entity_state(QUEUE, QUEUE_ENTITY_KEY).get("batches", {}) == {}  # capacity given back


def test_a_batch_without_events_looks_at_its_group_at_the_backstop() -> None:
    images = (NGINX,)
    run = batch(*images)
    run.on_activity("collect_results", collect_what_uploaded({0}, images))
    answers = iter([SUCCEEDED, {"exists": False}])
    run.on_activity("get_scanner_state", lambda _: next(answers))
    outcome = run.run()
    assert outcome.output["images"][0]["status"] == "completed"
    assert outcome.timers[0] == START + timedelta(seconds=600)  # half the SCAN_TIMEOUT
