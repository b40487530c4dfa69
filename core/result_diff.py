"""What changed between an image's previous result and its latest (issue 11: a rescan alerts only on change).

Pure: the caller applies the active exceptions to both report summaries first (core/exceptions_doc.py), so a
suppressed finding neither appears nor counts. Only findings at or above the notify threshold are compared, per
QID: a QID that appears is `new`, one that disappears is `resolved`, one in both is `still_open`; among those, a
changed severity or a fixed version that became known is `changed`. The image's status (`completed` or `denied`
by a policy) changing counts too. A report summary lists at most MAX_WORST_FINDINGS QIDs, so a count at or above
the threshold that grew beyond what the listed QIDs explain is `unlisted_new` (a new QID the summary does not
name). `resolved` alone is not a change worth an alert (good news); everything else is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from core.report import (
    CACHEABLE_STATUSES,
    MAX_WORST_FINDINGS,
    SEVERITIES_WORST_FIRST,
    Finding,
    ImageResult,
    ReportSummary,
    Severity,
    at_or_above,
)

COMPARABLE_STATUSES: Final = CACHEABLE_STATUSES
"""Results whose findings can be compared: a scan that wrote a report (`completed`, or `denied` by a policy)."""


def comparable(result: ImageResult | None) -> bool:
    """True for a result with a report whose findings can be compared (not a failure, not a mode without report)."""
    return result is not None and result.status in COMPARABLE_STATUSES and result.report is not None


def same_scan(a: ImageResult | None, b: ImageResult | None) -> bool:
    """The same scan's result (stored again by a retry, or by the requester after the batch stored it)."""
    if a is None or b is None:
        return False
    return (a.instance_id, a.scanned_at, a.report, a.status) == (b.instance_id, b.scanned_at, b.report, b.status)


class FindingChange(BaseModel):
    """A QID found in both results whose severity changed or whose fix became available."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    qid: str
    title: str
    severity: Severity
    previous_severity: Severity | None = None
    """Set when the severity changed (customerSeverity or Qualys' own)."""
    fix_available: bool = False
    """A fixed version is known now and was not before."""


class FindingsDiff(BaseModel):
    """The diff of an image's findings at or above `threshold` between two results (bounded: summaries list at most
    MAX_WORST_FINDINGS QIDs each).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: Severity
    baseline: bool = True
    """False when there was no comparable previous result: every finding is `new` and nothing is known to change."""
    previous_scan: str | None = None
    previous_scanned_at: datetime | None = None
    previous_status: str | None = None
    status: str | None = None
    new: tuple[Finding, ...] = Field(default=(), max_length=MAX_WORST_FINDINGS)
    changed: tuple[FindingChange, ...] = Field(default=(), max_length=MAX_WORST_FINDINGS)
    resolved: tuple[Finding, ...] = Field(default=(), max_length=MAX_WORST_FINDINGS)
    still_open: tuple[Finding, ...] = Field(default=(), max_length=MAX_WORST_FINDINGS)
    unlisted_new: dict[Severity, int] = Field(default_factory=dict)

    @property
    def status_changed(self) -> bool:
        return self.baseline and self.previous_status is not None and self.previous_status != self.status

    @property
    def has_changes(self) -> bool:
        """Worth an alert: new QIDs, a changed severity or fix, a status change, or more QIDs than listed."""
        return self.baseline and bool(self.new or self.changed or self.status_changed or self.unlisted_new)

    def counts(self) -> dict[str, int]:
        """How many of each kind (for summaries and logs)."""
        return {
            "new": len(self.new) + sum(self.unlisted_new.values()),
            "changed": len(self.changed),
            "resolved": len(self.resolved),
            "still_open": len(self.still_open),
        }


def _fixable(finding: Finding) -> bool:
    return any(p.fixed_version for p in finding.packages)


def _at_or_above(summary: ReportSummary, threshold: Severity) -> dict[str, Finding]:
    return {f.qid: f for f in summary.worst_findings if at_or_above(f.severity, threshold)}


def diff_findings(
    previous: ReportSummary | None,
    current: ReportSummary,
    threshold: Severity,
    *,
    previous_result: ImageResult | None = None,
    result: ImageResult | None = None,
) -> FindingsDiff:
    """The diff of `current` against `previous` (both with exceptions applied); `previous` None: no baseline."""
    now = _at_or_above(current, threshold)
    status = result.status if result is not None else None
    if previous is None:
        return FindingsDiff(threshold=threshold, baseline=False, status=status, new=tuple(now.values()))
    before = _at_or_above(previous, threshold)
    new = tuple(f for qid, f in now.items() if qid not in before)
    resolved = tuple(f for qid, f in before.items() if qid not in now)
    still = tuple(f for qid, f in now.items() if qid in before)
    changed: list[FindingChange] = []
    for finding in still:
        old = before[finding.qid]
        severity_moved = old.severity != finding.severity
        fix_now = _fixable(finding) and not _fixable(old)
        if severity_moved or fix_now:
            changed.append(
                FindingChange(
                    qid=finding.qid,
                    title=finding.title,
                    severity=finding.severity,
                    previous_severity=old.severity if severity_moved else None,
                    fix_available=fix_now,
                )
            )
    explained = {s: 0 for s in SEVERITIES_WORST_FIRST}
    for finding in new:
        explained[finding.severity] += 1
    for change in changed:
        if change.previous_severity is not None:
            explained[change.severity] += 1
    unlisted: dict[Severity, int] = {}
    for severity in SEVERITIES_WORST_FIRST:
        if not at_or_above(severity, threshold):
            continue
        grew = current.vulnerabilities.of(severity) - previous.vulnerabilities.of(severity)
        if grew > explained[severity]:
            unlisted[severity] = grew - explained[severity]
    return FindingsDiff(
        threshold=threshold,
        previous_scan=previous_result.instance_id if previous_result else None,
        previous_scanned_at=previous_result.scanned_at if previous_result else None,
        previous_status=previous_result.status if previous_result else None,
        status=status,
        new=new,
        changed=tuple(changed),
        resolved=resolved,
        still_open=still,
        unlisted_new=unlisted,
    )
