"""Severity ordering, the strict status parser and the notification rule (report parsers: test_report_formats)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.report import (
    ImageResult,
    InvalidUpload,
    Severity,
    VulnerabilityCounts,
    at_or_above,
    clip_reason,
    needs_notification,
    parse_status,
    severity_from,
    worst_of,
)

DIGEST = "sha256:" + "ab" * 32
STATUS = {
    "image": "docker.io/library/nginx:1.27",
    "index": 0,
    "exit_code": 0,
    "result": "ok",
    "started_at": "2026-10-02T08:00:00Z",
    "finished_at": "2026-10-02T08:02:30Z",
    "digest": DIGEST,
}


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def test_severity_order_and_threshold() -> None:
    assert at_or_above(Severity.CRITICAL, "HIGH")
    assert at_or_above("HIGH", Severity.HIGH)
    assert not at_or_above("MEDIUM", "HIGH")
    assert not at_or_above(None, "LOW")
    assert at_or_above("LOW", "LOW")
    assert worst_of(["LOW", "CRITICAL", "MEDIUM"]) is Severity.CRITICAL
    assert worst_of([]) is None
    assert Severity.HIGH == "HIGH"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (5, Severity.CRITICAL),
        (4, Severity.HIGH),
        ("3", Severity.MEDIUM),
        (2, Severity.LOW),
        (1, Severity.LOW),
        (0, None),
        (6, None),
        ("critical", Severity.CRITICAL),
        (" High ", Severity.HIGH),
        ("urgent", None),
        (True, None),
        (None, None),
        (4.0, Severity.HIGH),
        ([5], None),
    ],
)
def test_severity_from_names_and_qualys_scale(raw: object, expected: Severity | None) -> None:
    assert severity_from(raw) is expected


def test_parse_status_valid() -> None:
    status = parse_status(_json(STATUS))
    assert status.result == "ok"
    assert status.digest == DIGEST
    assert status.finished_at == datetime(2026, 10, 2, 8, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "change",
    [
        {"result": "great"},
        {"index": -1},
        {"index": "0"},
        {"exit_code": "0"},
        {"exit_code": 1.5},
        {"digest": "md5:abc"},
        {"image": ""},
        {"image": "a\nb"},
        {"started_at": "yesterday"},
        {"started_at": "2026-10-02T08:00:00"},
    ],
)
def test_parse_status_is_strict(change: dict[str, object]) -> None:
    with pytest.raises(InvalidUpload):
        parse_status(_json({**STATUS, **change}))


def test_parse_status_reads_the_contracts_new_fields() -> None:
    status = parse_status(_json({**STATUS, "digest": "", "mode": "scan-only", "files": ["scan.log", "sbom.spdx.json"]}))
    assert (status.digest, status.mode, status.files) == (None, "scan-only", ("scan.log", "sbom.spdx.json"))
    assert parse_status(_json({**STATUS, "error": "QScanner could not be downloaded"})).error is not None
    assert len(parse_status(_json({**STATUS, "detail": "x" * 5000})).detail or "") == 2000  # clipped, not refused
    for bad in ({"mode": "turbo"}, {"files": ["../x"]}, {"files": "scan.log"}, {"files": ["a"] * 17}):
        with pytest.raises(InvalidUpload):
            parse_status(_json({**STATUS, **bad}))


def test_parse_status_ignores_unknown_keys_and_rejects_oversize() -> None:
    assert parse_status(_json({**STATUS, "extra": [1, 2]})).index == 0
    with pytest.raises(InvalidUpload, match="limit"):
        parse_status(_json({**STATUS, "pad": "x" * 20_000}))


def _result(status: str, worst: Severity | None = None) -> ImageResult:
    counts = VulnerabilityCounts.from_mapping({worst: 1} if worst else {})
    return ImageResult.model_validate(
        {"image": "docker.io/library/nginx:1", "status": status, "vulnerabilities": counts, "worst_severity": worst}
    )


@pytest.mark.parametrize(
    ("status", "worst", "expected"),
    [
        ("completed", Severity.CRITICAL, True),
        ("completed", Severity.HIGH, True),
        ("completed", Severity.MEDIUM, False),
        ("completed", None, False),
        ("denied", Severity.HIGH, True),
        ("denied", Severity.LOW, False),
        ("cached", Severity.CRITICAL, True),
        ("failed", None, True),
        ("timed_out", None, True),
        ("skipped", None, False),
        ("uploaded", None, False),
        ("inventory", None, False),
    ],
)
def test_needs_notification(status: str, worst: Severity | None, expected: bool) -> None:
    assert needs_notification(_result(status, worst), "HIGH") is expected


def test_image_result_round_trips_as_json_with_all_counts() -> None:
    result = _result("completed", Severity.HIGH)
    dumped = result.model_dump(mode="json")
    assert dumped["vulnerabilities"] == {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 0, "LOW": 0}
    assert ImageResult.model_validate(dumped) == result


def test_clip_reason() -> None:
    assert clip_reason("a\x00b") == "a b"
    assert len(clip_reason("x" * 1000)) == 500
