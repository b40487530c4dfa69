"""ScanRun paths on the fake backend (tests/orchestration/fake_context.py): the real orchestrator through the SDK
over synthetic histories, in milliseconds. The same paths run end to end on devhost in test_scan_pipeline.py.
"""

from __future__ import annotations

from datetime import timedelta

from activities.names import ACI_QUOTA_ERROR_MARKER
from core.scan_plan import QUOTA_WAIT_SECONDS
from orchestrators.calls import ACTIVITY_MAX_ATTEMPTS, QUOTA_ENTITY_KEY
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT
from tests.orchestration.fake_context import START, Fail, ScriptedRun
from tests.orchestration.scan_answers import NGINX, REDIS, RUNNING, scan_run, states

QUOTA = "aci_quota"


def test_happy_path_scans_cleans_up_and_releases() -> None:
    result = scan_run(NGINX, REDIS).run()
    assert result.status == "Completed"
    assert result.output["status"] == "completed"
    assert [r["status"] for r in result.output["images"]] == ["completed", "completed"]
    assert result.custom_status["phase"] == "done" and result.custom_status["polls"] == 2
    assert [g["state"] for g in result.custom_status["groups"]] == ["Deleted"]
    assert result.sequence()[:2] == ["activity:resolve_images", "activity:lookup_cache"]
    assert result.sequence()[-3:] == [f"signal:@image_lease@{key}:release" for key in _lease_keys(result)] + [
        f"signal:@{QUOTA}@{QUOTA_ENTITY_KEY}:release"
    ]


def _lease_keys(result) -> list[str]:
    return [c.target.split("@")[2] for c in result.log if c.kind == "entity" and "image_lease" in (c.target or "")]


def test_a_group_that_never_ends_times_out_is_logged_and_deleted() -> None:
    run = scan_run(NGINX, scan_timeout_seconds=600)
    run.on_activity("get_scanner_state", RUNNING)
    result = run.run()
    assert result.output["status"] == "failed"  # every image ended badly
    assert result.output["images"][0]["status"] == "timed_out"
    assert result.calls("collect_results")[0]["missing_status"] == "timed_out"
    assert len(result.calls("get_scanner_logs")) == 1
    assert len(result.calls("delete_scanner_group")) == 1
    assert max(result.timers) <= START + timedelta(seconds=600)
    assert result.custom_status["polls"] == len(result.calls("get_scanner_state"))


def test_a_full_quota_gate_waits_then_scans_when_a_slot_is_granted() -> None:
    run = scan_run(NGINX)
    answers = iter([False, False, True])
    run.on_entity(QUOTA, "acquire", lambda _: {"granted": next(answers), "in_use": 1, "reason": None})
    result = run.run()
    assert result.output["status"] == "completed"
    assert len(result.calls("acquire", kind="entity")) == 1 + 3  # one lease, then the gate three times
    waits = [t for t in result.timers if t < START + timedelta(seconds=QUOTA_WAIT_SECONDS)]
    assert len(waits) >= 2
    assert len(result.calls("create_scanner_group")) == 1


def test_a_quota_gate_that_stays_full_fails_the_images_without_a_group() -> None:
    run = scan_run(NGINX, max_concurrent_scanner_groups=1)
    # the app's real gate (no scripted answer), already full with another orchestration's group
    gate = {"instance_id": "someone-else", "groups": 1, "now": START.isoformat(), "ttl_s": 7200, "max_concurrent": 1}
    assert run.entity_operation(QUOTA, QUOTA_ENTITY_KEY, "acquire", gate)["granted"]
    result = run.run()
    image = result.output["images"][0]
    assert image["status"] == "failed" and f"no scanner group slot within {QUOTA_WAIT_SECONDS} s" in image["reason"]
    assert result.calls("create_scanner_group") == [] and result.calls("delete_scanner_group") == []
    assert max(result.timers) <= START + timedelta(seconds=QUOTA_WAIT_SECONDS + 1)
    assert run.entity_state(QUOTA, QUOTA_ENTITY_KEY) is not None


def test_an_aci_quota_refusal_outlasting_the_retries_waits_durably_and_creates_again() -> None:
    run = scan_run(NGINX)
    refusals = ACTIVITY_MAX_ATTEMPTS + 2
    attempts: list[int] = []

    def create(payload):
        attempts.append(1)
        if len(attempts) <= refusals:
            return Fail(f"ArmQuotaError: {ACI_QUOTA_ERROR_MARKER} status=409 code=ContainerGroupQuotaReached")
        return {"group_name": payload["group_name"], "exists": True, "state": "Pending"}

    run.on_activity("create_scanner_group", create)
    result = run.run()
    assert result.output["status"] == "completed"
    assert len(result.calls("create_scanner_group")) == refusals + 1
    assert result.sequence().count("activity:delete_scanner_group") == 1


def test_a_create_failure_that_is_not_quota_fails_at_once_and_still_cleans_up() -> None:
    run = scan_run(NGINX)
    run.on_activity("create_scanner_group", Fail("ArmFatalError: arm-error status=400 code=InvalidImage"))
    result = run.run()
    assert result.output["status"] == "failed"
    assert "create_scanner_group" in result.output["error"]
    assert len(result.calls("create_scanner_group")) == ACTIVITY_MAX_ATTEMPTS
    assert len(result.calls("store_results")) == 1 and len(result.calls("delete_scanner_group")) == 1


def test_a_delete_failure_is_recorded_and_the_leases_are_still_released() -> None:
    run = scan_run(NGINX)
    run.on_activity("delete_scanner_group", Fail("ArmRetryableError: arm-retryable status=500"))
    result = run.run()
    assert result.output["status"] == "completed"  # the scan itself worked
    assert result.output["error"] == (
        f"delete {result.calls('delete_scanner_group')[0]['group_name']}: Exception: Activity function "
        "'delete_scanner_group' failed: ArmRetryableError: arm-retryable status=500"
    )
    assert len(result.calls("delete_scanner_group")) == ACTIVITY_MAX_ATTEMPTS
    assert [g["state"] for g in result.custom_status["groups"]] != ["Deleted"]
    assert result.custom_status["phase"] == "failed"
    assert result.sequence()[-1] == f"signal:@{QUOTA}@{QUOTA_ENTITY_KEY}:release"


def test_a_waited_image_reuses_the_holders_result() -> None:
    run = scan_run(NGINX)
    run.on_entity("image_lease", "acquire", {"granted": False, "holder": "scan-holder"})
    run.on_entity("image_lease", "get", states({"holder": "scan-holder"}, {"holder": None}))
    holder_result = {"image": NGINX, "status": "completed", "instance_id": "scan-holder"}
    run.on_activity("read_latest_results", {"results": [holder_result]})
    result = run.run()
    image = result.output["images"][0]
    assert image["status"] == "completed" and image["instance_id"] == "scan-holder"
    assert result.calls("create_scanner_group") == []
    assert len(result.calls("get", kind="entity")) == 2


def test_invalid_input_completes_at_once_with_the_reason() -> None:
    result = ScriptedRun(ORCHESTRATOR_SCAN_DEPLOYMENT, {"target": {"kind": "nope"}}).run()
    assert result.status == "Completed" and result.output["status"] == "failed"
    assert result.output["error"].startswith("invalid input:")
    assert result.log == []


def test_a_cut_history_steps_one_episode_at_a_time() -> None:
    run = scan_run(NGINX)
    first = run.step()
    assert [d.name for d in first] == ["resolve_images"]
    while not any(c.kind == "timer" for c in run.log):
        run.step()
    assert run.log[-1].kind == "timer" and run.log[-2].name == "create_scanner_group"
