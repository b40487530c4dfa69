"""Severity ordering, the tolerant report parser, the strict status parser and the notification rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.report import (
    MAX_WORST_FINDINGS,
    ImageResult,
    InvalidUpload,
    Severity,
    VulnerabilityCounts,
    at_or_above,
    clip_reason,
    needs_notification,
    parse_report,
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


def test_parse_report_counts_worst_findings_and_digest() -> None:
    findings: list[object] = [{"qid": i, "title": f"low {i}", "severity": 1} for i in range(30)]
    findings += [
        {"qid": 9001, "title": "Heartbleed", "severity": "CRITICAL", "cveIds": ["CVE-2014-0160"], "package": "openssl"},
        {"qid": 9002, "title": "Bad", "severity": 4, "package": {"name": "zlib", "version": "1.2.11"}},
        {"qid": 9003, "title": "Meh", "severity": "medium", "cveIds": "CVE-2020-0001, CVE-2020-0002"},
        {"qid": 9004, "title": "Unknown", "severity": "unheard-of"},
        "not a finding",
    ]
    summary = parse_report(_json({"vulnerabilities": findings, "image": {"digest": DIGEST}}))
    assert summary.vulnerabilities == VulnerabilityCounts(CRITICAL=1, HIGH=1, MEDIUM=1, LOW=30)
    assert summary.unrecognised_findings == 2
    assert summary.digest == DIGEST
    assert summary.worst_severity is Severity.CRITICAL
    assert len(summary.worst_findings) == MAX_WORST_FINDINGS
    top = summary.worst_findings[0]
    assert (top.qid, top.severity, top.cves, top.package) == ("9001", Severity.CRITICAL, ("CVE-2014-0160",), "openssl")
    assert summary.worst_findings[1].package == "zlib 1.2.11"
    assert summary.worst_findings[2].cves == ("CVE-2020-0001", "CVE-2020-0002")
    assert [f.severity for f in summary.worst_findings[3:]] == [Severity.LOW] * 7


@pytest.mark.parametrize(
    "document",
    [
        {"report": {"vulnerabilities": [{"qid": 1, "title": "t", "severity": 5}]}, "imageDigest": DIGEST},
        {"result": {"vulnerabilities": [{"qid": 1, "title": "t", "severity": 5}]}, "imageDigest": DIGEST},
        {"report": [{"qid": 1, "title": "t", "severity": "CRITICAL"}], "imageDigest": DIGEST},
    ],
)
def test_parse_report_accepts_nested_lists(document: dict[str, object]) -> None:
    summary = parse_report(_json(document))
    assert summary.vulnerabilities.CRITICAL == 1
    assert summary.digest == DIGEST


def test_parse_report_empty_and_odd_shapes_are_empty_reports() -> None:
    for document in ({}, {"vulnerabilities": None}, {"vulnerabilities": {"a": 1}}, {"image": "x", "imageDigest": 7}):
        summary = parse_report(_json(document))
        assert summary.vulnerabilities.model_dump() == {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0}
        assert summary.digest is None
        assert summary.worst_severity is None


def test_parse_report_bounds_untrusted_text() -> None:
    finding = {
        "qid": "x" * 500,
        "title": "t\n" * 1000,
        "severity": 5,
        "cveIds": [f"CVE-2020-{i:05d}" for i in range(99)],
    }
    summary = parse_report(_json({"vulnerabilities": [finding]}))
    kept = summary.worst_findings[0]
    assert len(kept.qid) == 64
    assert len(kept.title) <= 300
    assert "\n" not in kept.title
    assert len(kept.cves) == 20


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"[" * 100_000, b"{'a': 1}"])
def test_parse_report_rejects_non_objects(raw: bytes) -> None:
    with pytest.raises(InvalidUpload):
        parse_report(raw)


def test_parse_report_rejects_oversize() -> None:
    with pytest.raises(InvalidUpload, match="limit"):
        parse_report(b" " * 101, max_bytes=100)


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
