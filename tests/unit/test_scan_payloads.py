"""Activity inputs built by scan_deployment, failure descriptions and the final per-image results."""

from datetime import UTC, datetime

from core.report import ImageResult
from core.results import CollectRequest, ImageToCheck
from core.scan_payloads import collect_input, describe_failure, final_results, store_input
from core.scan_plan import plan_groups
from core.scan_views import group_verdict

NOW = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
DIGEST = "sha256:" + "b" * 64


def test_describe_failure_drops_the_traceback_and_newlines() -> None:
    error = Exception("Activity function 'x' failed: Boom \n Traceback (most recent call last):\n  File ...")
    assert describe_failure(error) == "Exception: Activity function 'x' failed: Boom"


def test_collect_input_for_a_timed_out_group() -> None:
    (group,) = plan_groups("scan-1", [ImageToCheck(image="docker.io/library/a:1")], max_per_group=5, max_groups=1)
    payload = collect_input(
        "scan-1", group, group_verdict({"state": "Running"}), None, timed_out=True, timeout_s=600, now=NOW
    )
    assert payload["missing_status"] == "timed_out"
    assert payload["exit_code"] is None
    assert payload["reason"] == "no result within SCAN_TIMEOUT (600 s)"
    assert payload["prefix"] == "scan-1"


def test_collect_input_for_a_failed_group_carries_the_exit_code() -> None:
    (group,) = plan_groups("scan-1", [ImageToCheck(image="docker.io/library/a:1")], max_per_group=5, max_groups=1)
    verdict = group_verdict({"state": "Failed", "container": {"state": "Terminated", "exit_code": 3}})
    payload = collect_input("scan-1", group, verdict, "oops", timed_out=False, timeout_s=600, now=NOW)
    assert payload["missing_status"] == "failed" and payload["exit_code"] == 3
    assert payload["reason"].endswith("log tail: oops")
    assert payload["mode"] == "get-report"  # the default, as for inputs written before the mode was passed


def test_collect_input_carries_the_scans_own_mode() -> None:
    (group,) = plan_groups("scan-1", [ImageToCheck(image="docker.io/library/a:1")], max_per_group=5, max_groups=1)
    payload = collect_input("scan-1", group, None, None, timed_out=False, timeout_s=600, now=NOW, mode="scan-only")
    assert CollectRequest.model_validate(payload).mode == "scan-only"


def test_final_results_keep_order_share_twins_and_fail_the_rest() -> None:
    by_tag = ImageToCheck(image="docker.io/library/a:1", digest=DIGEST)
    by_digest = ImageToCheck(image="docker.io/library/a@" + DIGEST, digest=DIGEST)
    other = ImageToCheck(image="docker.io/library/b:1")
    scanned = ImageResult(image=by_tag.image, status="completed", instance_id="scan-1")
    results = final_results(
        [other.image, by_tag.image, by_digest.image],
        [by_tag, by_digest, other],
        {by_tag.image: scanned},
        instance_id="scan-1",
        error="Exception: boom",
    )
    assert [(r.image, r.status) for r in results] == [
        (other.image, "failed"),
        (by_tag.image, "completed"),
        (by_digest.image, "completed"),
    ]
    assert results[0].reason == "scan did not finish: Exception: boom"


def test_store_input_is_a_valid_store_request() -> None:
    result = ImageResult(image="docker.io/library/a:1", status="cached")
    payload = store_input(
        "scan-1",
        {"kind": "image", "image": result.image},
        [result],
        status="completed",
        started_at=NOW,
        finished_at=NOW,
    )
    assert payload["event"] == {"kind": "image", "image": result.image}
    assert payload["results"][0]["status"] == "cached"
