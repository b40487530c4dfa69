"""A rescan (ScanInput.rescan) through scan_deployment_v2 on the fake backend: it scans (no cache, no queue memory)
and tells the notify activity it is a rescan; a deployment scan's actions are unchanged (tests/golden)."""

from __future__ import annotations

from datetime import timedelta

from core.queue_payloads import image_done_event
from orchestrators.calls import QUEUE_ENTITY_KEY
from tests.orchestration.fake_context import START
from tests.orchestration.scan_answers import NGINX
from tests.orchestration.test_queue_fast import QUEUE, deployment, key, other_holds, rescan, result


def _done(runner: str) -> dict[str, object]:
    return {"key": key(NGINX), "runner": runner, "result": result(NGINX, runner)}


def test_a_rescan_skips_the_cache_queues_with_force_and_marks_its_alert() -> None:
    run = rescan(NGINX)
    runner = other_holds(run, NGINX)["runner"]  # finished within the queue's memory: a deployment would read it
    run.entity_operation(QUEUE, QUEUE_ENTITY_KEY, "finish_image",
                         {"runner": runner, "key": key(NGINX), "now": START.isoformat()})  # fmt: skip
    run.raise_event(START + timedelta(seconds=300), image_done_event(key(NGINX)), _done("rescan-runner"))
    outcome = run.run()
    assert outcome.status == "Completed"
    assert outcome.calls("lookup_cache") == []
    assert outcome.calls("read_latest_results") == []  # not answered from the queue's memory of the other scan
    assert [s["name"] for s in outcome.calls("wake_orchestrations")[0]["starts"]]  # a batch of its own
    [notify] = outcome.calls("send_notifications")
    assert notify["rescan"] is True and notify["event"] == {"kind": "image", "image": NGINX}


def test_a_deployment_scan_sends_no_rescan_flag() -> None:
    run = deployment(NGINX)
    run.raise_event(START + timedelta(seconds=300), image_done_event(key(NGINX)), _done("r"))
    [notify] = run.run().calls("send_notifications")
    assert "rescan" not in notify
