"""Non-retryable ARM errors are answered at once by the activity and raised by the orchestrator (no I/O here)."""

from __future__ import annotations

from typing import Any

import pytest

from activities.clients import ArmError, ArmRetryableError, ScannerQuotaError, failing_fast
from activities.names import NON_RETRYABLE_ERROR_KEY
from core.options import ScanOptions
from orchestrators.calls import NonRetryableActivityError, checked


def raising(error: Exception) -> Any:
    @failing_fast
    def activity(payload: Any) -> dict[str, Any]:
        raise error

    return activity


def test_a_non_retryable_arm_error_is_an_answer() -> None:
    answer = raising(ArmError(403, "AuthorizationFailed", "no role"))({})
    assert answer == {
        NON_RETRYABLE_ERROR_KEY: {
            "status": 403,
            "code": "AuthorizationFailed",
            "message": "arm-error status=403 code=AuthorizationFailed retry_after_s=-: no role",
        }
    }
    with pytest.raises(NonRetryableActivityError, match=r"^create_scanner_group failed \(not retried\): arm-error"):
        checked("create_scanner_group", answer)


@pytest.mark.parametrize(
    "error",
    [
        ArmRetryableError(429, "TooManyRequests", "slow down", 5),
        ScannerQuotaError(400, "ContainerGroupQuotaReached", "quota"),
        ConnectionError("reset"),
        ValueError("bad input"),
    ],
)
def test_retryable_and_other_errors_still_raise(error: Exception) -> None:
    with pytest.raises(type(error)):
        raising(error)({})


def test_a_sas_signature_in_the_message_is_blanked() -> None:
    answer = raising(ArmError(400, "InvalidRequestContent", "bad url https://a/b?sv=1&sig=SECRETSIG"))({})
    assert "SECRETSIG" not in answer[NON_RETRYABLE_ERROR_KEY]["message"]


@pytest.mark.parametrize("answer", [{"group_name": "x", "exists": False}, None, [], {"results": []}])
def test_ordinary_answers_pass_unchanged(answer: Any) -> None:
    assert checked("get_scanner_state", answer) is answer


def test_scan_groups_are_planned_within_the_core_budget() -> None:
    assert ScanOptions().max_scanner_groups() == 20
    assert ScanOptions(max_concurrent_scanner_groups=100, scanner_cpu=4.0).max_scanner_groups() == 25
    assert ScanOptions(max_concurrent_scanner_groups=10, scanner_cpu=0.1, aci_max_cores=0.5).max_scanner_groups() == 5
    assert ScanOptions(scanner_cpu=0.3, aci_max_cores=0.9).max_scanner_groups() == 3
