"""The pure diff of an image's findings between its previous and latest results (core/result_diff.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from core.alerts import findings_fingerprint
from core.exceptions_doc import ExceptionEntry, apply_to_summary
from core.report import Finding, ImageResult, Package, ReportSummary, Severity
from core.result_diff import comparable, diff_findings, same_scan

LEVEL = {Severity.CRITICAL: 5, Severity.HIGH: 4, Severity.MEDIUM: 3, Severity.LOW: 2}
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _finding(qid: str, severity: Severity = Severity.HIGH, fixed: str | None = "1.0.1") -> Finding:
    return Finding(
        qid=qid,
        title=f"finding {qid}",
        severity=severity,
        level=LEVEL[severity],
        cves=(f"CVE-2026-{qid}",),
        packages=(Package(name="openssl", installed_version="1.0.0", fixed_version=fixed),),
    )


def _summary(*findings: Finding, extra: dict[int, int] | None = None) -> ReportSummary:
    levels = dict.fromkeys((5, 4, 3, 2, 1), 0)
    for finding in findings:
        levels[finding.level] += 1
    for level, n in (extra or {}).items():
        levels[level] += n
    return ReportSummary(source="sarif", levels=levels, worst_findings=findings)


def _result(status: str = "completed", instance: str = "scan-1", report: str | None = "https://r/1") -> ImageResult:
    return ImageResult.model_validate(
        {"image": "docker.io/library/nginx:1.27", "status": status, "instance_id": instance, "report": report}
    )


def test_same_findings_is_no_change() -> None:
    before = _summary(_finding("1"), _finding("2", Severity.CRITICAL))
    diff = diff_findings(before, before, Severity.HIGH, previous_result=_result(), result=_result())
    assert not diff.has_changes
    assert [f.qid for f in diff.still_open] == ["1", "2"]
    assert diff.counts() == {"new": 0, "changed": 0, "resolved": 0, "still_open": 2}


def test_new_qid_resolved_qid_and_still_open() -> None:
    diff = diff_findings(_summary(_finding("1"), _finding("2")), _summary(_finding("1"), _finding("3")), Severity.HIGH)
    assert [f.qid for f in diff.new] == ["3"]
    assert [f.qid for f in diff.resolved] == ["2"]
    assert [f.qid for f in diff.still_open] == ["1"]
    assert diff.has_changes


def test_only_resolved_is_not_a_change() -> None:
    diff = diff_findings(_summary(_finding("1"), _finding("2")), _summary(_finding("1")), Severity.HIGH)
    assert [f.qid for f in diff.resolved] == ["2"]
    assert not diff.has_changes


def test_fix_that_became_available_and_severity_change_count() -> None:
    before = _summary(_finding("1", fixed=None), _finding("2", Severity.HIGH))
    after = _summary(_finding("1", fixed="2.0"), _finding("2", Severity.CRITICAL))
    diff = diff_findings(before, after, Severity.HIGH)
    assert {(c.qid, c.fix_available, c.previous_severity) for c in diff.changed} == {
        ("1", True, None),
        ("2", False, Severity.HIGH),
    }
    assert diff.has_changes and not diff.unlisted_new  # the CRITICAL that grew is explained by the change
    # a fix that went away is not news
    assert not diff_findings(
        after, _summary(_finding("1", fixed=None), _finding("2", Severity.CRITICAL)), Severity.HIGH
    ).changed


def test_below_threshold_does_not_count() -> None:
    before = _summary(_finding("1"))
    after = _summary(_finding("1"), _finding("9", Severity.MEDIUM))
    assert not diff_findings(before, after, Severity.HIGH).has_changes
    assert diff_findings(before, after, Severity.MEDIUM).has_changes


def test_status_change_counts() -> None:
    same = _summary(_finding("1"))
    diff = diff_findings(same, same, Severity.HIGH, previous_result=_result(), result=_result("denied"))
    assert diff.status_changed and diff.has_changes


def test_count_growth_beyond_the_listed_findings_is_unlisted_new() -> None:
    before = _summary(_finding("1"), extra={4: 10})
    after = _summary(_finding("1"), extra={4: 12})
    diff = diff_findings(before, after, Severity.HIGH)
    assert diff.unlisted_new == {Severity.HIGH: 2}
    assert diff.has_changes and diff.counts()["new"] == 2


def test_no_baseline_lists_everything_new_but_claims_no_change() -> None:
    diff = diff_findings(None, _summary(_finding("1")), Severity.HIGH, result=_result())
    assert not diff.baseline and [f.qid for f in diff.new] == ["1"]
    assert not diff.has_changes


def test_exceptions_applied_first_hide_a_new_finding() -> None:
    before = _summary(_finding("1"))
    after = _summary(_finding("1"), _finding("3"))
    entry = ExceptionEntry.model_validate(
        {
            "id": "ex-1",
            "qid": 3,
            "image": "docker.io/library/nginx:*",
            "reason": "accepted",
            "owner": "sec",
            "expires": "2027-01-01T00:00:00Z",
        }
    )
    effective = apply_to_summary(after, "docker.io/library/nginx:1.27", [], [entry], NOW).summary
    assert not diff_findings(before, effective, Severity.HIGH).has_changes


def test_a_change_is_a_new_fingerprint() -> None:
    """Coherent with the never-twice rule: whatever the diff calls a change also changes the fingerprint."""
    before = _summary(_finding("1", fixed=None))
    for after in (
        _summary(_finding("1", fixed=None), _finding("2")),
        _summary(_finding("1", fixed="2.0")),
        _summary(_finding("1", Severity.CRITICAL, fixed=None)),
    ):
        assert diff_findings(before, after, Severity.HIGH).has_changes
        assert findings_fingerprint(before, Severity.HIGH) != findings_fingerprint(after, Severity.HIGH)


def test_comparable_and_same_scan() -> None:
    assert comparable(_result()) and comparable(_result("denied"))
    assert not comparable(_result("failed")) and not comparable(_result(report=None)) and not comparable(None)
    assert same_scan(_result(), _result())
    assert not same_scan(_result(), _result(instance="scan-2")) and not same_scan(_result(), None)
