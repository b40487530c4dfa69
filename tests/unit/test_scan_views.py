"""Reading activity outputs: a scanner group's state becomes a verdict; failure reasons carry the log tail."""

import pytest

from core.scan_views import DigestsView, ResolvedView, failure_reason, group_verdict


def test_running_group_is_not_terminal() -> None:
    verdict = group_verdict({"state": "Running", "container": {"state": "Running"}})
    assert not verdict.terminal and verdict.state == "Running"


def test_pending_without_state_is_not_terminal() -> None:
    assert not group_verdict({"provisioning_state": "Creating"}).terminal


@pytest.mark.parametrize(
    ("raw", "clean", "exit_code"),
    [
        ({"state": "Succeeded", "container": {"state": "Terminated", "exit_code": 0}}, True, 0),
        ({"state": "Succeeded"}, True, None),
        ({"state": "Failed", "containers": [{"state": "Terminated", "exit_code": 3}]}, False, 3),
        ({"state": "Running", "container": {"state": "Terminated", "exit_code": 42}}, False, 42),
    ],
)
def test_terminal_groups(raw: dict[str, object], clean: bool, exit_code: int | None) -> None:
    verdict = group_verdict(raw)
    assert verdict.terminal and verdict.clean is clean and verdict.exit_code == exit_code
    assert (verdict.reason is None) is clean


def test_missing_group_and_failed_provisioning_are_terminal_failures() -> None:
    assert group_verdict({"exists": False}).reason == "the scanner group no longer exists"
    assert group_verdict(None).terminal
    failed = group_verdict({"provisioning_state": "Failed", "container": {"detail_status": "ImagePullBackOff"}})
    assert failed.terminal and not failed.clean
    assert failed.reason == "scanner group provisioning failed: ImagePullBackOff"


def test_failure_reason_prefers_the_deadline_and_appends_the_log_tail() -> None:
    verdict = group_verdict({"state": "Failed", "container": {"state": "Terminated", "exit_code": 3}})
    assert failure_reason(verdict, None, timed_out=True, timeout_s=600) == "no result within SCAN_TIMEOUT (600 s)"
    reason = failure_reason(verdict, "line1\nqscanner: download failed\n", timed_out=False, timeout_s=600)
    assert reason.startswith("scanner group Failed, scanner exit code 3; log tail: ")
    assert "download failed" in reason and "\n" not in reason
    assert failure_reason(None, None, timed_out=False, timeout_s=1) == (
        "the scanner finished without a result for this image"
    )


def test_resolved_and_digest_views_ignore_extra_keys() -> None:
    resolved = ResolvedView.model_validate(
        {
            "resource_id": "x",
            "found": True,
            "images": [{"image": "a", "container": "c"}, {"image": "a", "container": "d"}, {"image": "b"}],
            "rejected": [{"image": "\x00", "container": "e", "init": True, "reason": "bad"}],
        }
    )
    assert resolved.distinct_images() == ["a", "b"]
    assert resolved.rejected[0].shown_image() == "<empty>"
    assert DigestsView.model_validate({"images": [{"image": "a", "digest": None, "reason": "off"}]}).by_image() == {
        "a": None
    }
