"""Scan results: severities, the scanner's status.json, the report summary and the per-image result.

The report parsers are in core/sarif.py (QScanner's SARIF report) and core/json_report.py (its JSON report), the
log's own counts in core/scan_log.py, the inventory's repo digest in core/inventory.py, and the verdict that joins
them in core/assessment.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

import pydantic_core
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from core.options import QScannerMode

MAX_STATUS_BYTES = 16 * 1024
MAX_REPORT_BYTES = 32 * 1024 * 1024
MAX_WORST_FINDINGS = 10
MAX_TITLE_CHARS = 300
MAX_CVES_PER_FINDING = 20
MAX_PACKAGES_PER_FINDING = 10
MAX_PACKAGE_CHARS = 200
MAX_VERSION_CHARS = 100
MAX_IMAGE_REF_CHARS = 1024
MAX_REASON_CHARS = 500
MAX_LOCATION_CHARS = 2048
MAX_LISTED_FILES = 16
MAX_DETAIL_CHARS = 2000
QUALYS_LEVELS = (5, 4, 3, 2, 1)
"""Qualys severity levels, worst first: 5 Urgent, 4 Critical, 3 Serious, 2 Medium, 1 Minimal."""

DIGEST_PATTERN = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,256}"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Severity(StrEnum):
    """A finding's severity; compares as its upper-case name (`Severity.HIGH == "HIGH"`)."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"

    @property
    def rank(self) -> int:
        """4 for CRITICAL down to 1 for LOW: higher is worse."""
        return _RANK[self]


_RANK: dict[Severity, int] = {Severity.CRITICAL: 4, Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1}
SEVERITIES_WORST_FIRST: tuple[Severity, ...] = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
# Qualys' 1-5 scale: 5 critical, 4 high, 3 medium, 1-2 low.
QUALYS_SCALE: dict[int, Severity] = {
    5: Severity.CRITICAL,
    4: Severity.HIGH,
    3: Severity.MEDIUM,
    2: Severity.LOW,
    1: Severity.LOW,
}


def at_or_above(severity: Severity | str | None, threshold: Severity | str) -> bool:
    """True when `severity` is as bad as `threshold` or worse; None (no finding) is never at or above."""
    if severity is None:
        return False
    return Severity(severity).rank >= Severity(threshold).rank


def worst_of(severities: Iterable[Severity | str]) -> Severity | None:
    """The worst severity in `severities`, None when empty."""
    ranked = [Severity(s) for s in severities]
    return max(ranked, key=lambda s: s.rank) if ranked else None


def severity_from(value: object) -> Severity | None:
    """A severity from a name (any case) or the Qualys 1-5 scale (int or numeric string); None when unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return QUALYS_SCALE.get(value)
    if isinstance(value, float) and value.is_integer():
        return QUALYS_SCALE.get(int(value))
    if isinstance(value, str) and len(value) <= 16:
        text = value.strip().upper()
        if text.isdigit():
            return QUALYS_SCALE.get(int(text))
        try:
            return Severity(text)
        except ValueError:
            return None
    return None


class InvalidUpload(ValueError):
    """An upload from the scanner is oversize, not JSON or not the expected shape."""


class ReportNotUnderstood(InvalidUpload):
    """A report that is JSON but holds no findings structure the app recognises (never read as a clean result)."""


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _empty_is_none(value: object) -> object:
    return None if value == "" else value


def _clipped(value: object) -> object:
    return value[:MAX_DETAIL_CHARS] if isinstance(value, str) else value


ImageRef = Annotated[str, StringConstraints(min_length=1, max_length=MAX_IMAGE_REF_CHARS), AfterValidator(_no_control)]
Digest = Annotated[str, StringConstraints(pattern=f"^{DIGEST_PATTERN}$", max_length=300)]
Reason = Annotated[str, StringConstraints(max_length=MAX_REASON_CHARS)]
Location = Annotated[str, StringConstraints(max_length=MAX_LOCATION_CHARS)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
UploadName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


class ScanStatus(BaseModel):
    """The scanner's `status.json` for one image; strict types, extra keys ignored (untrusted input).

    `digest` is accepted for older scanners ("" counts as absent) but not used: the digest comes from the
    inventory (scanresult.json). `mode` is the QSCANNER_MODE the scanner ran, `files` the blobs it uploaded for
    this image, `error` (or the older `detail`) why it failed.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    image: ImageRef
    index: int = Field(ge=0, le=10_000)
    exit_code: int | None = Field(default=None, ge=-(2**31), le=2**32)
    result: Literal["ok", "deny", "audit", "error", "timeout"]
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    digest: Annotated[Digest | None, BeforeValidator(_empty_is_none)] = None
    mode: QScannerMode | None = None
    files: tuple[UploadName, ...] | None = Field(default=None, max_length=MAX_LISTED_FILES)
    error: Annotated[str | None, BeforeValidator(_clipped)] = None
    detail: Annotated[str | None, BeforeValidator(_clipped)] = None


def check_size(raw: bytes, limit: int, what: str) -> None:
    """Raise `InvalidUpload` unless `raw` is bytes of at most `limit` bytes."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise InvalidUpload(f"{what} must be bytes")
    if len(raw) > limit:
        raise InvalidUpload(f"{what} is {len(raw)} bytes, more than the limit of {limit}")


def load_json_object(raw: bytes, what: str, max_bytes: int) -> dict[str, Any]:
    """A bounded upload parsed as a JSON object; `InvalidUpload` for anything else."""
    check_size(raw, max_bytes, what)
    try:
        document = pydantic_core.from_json(bytes(raw), allow_inf_nan=False, cache_strings=False)
    except ValueError as error:
        raise InvalidUpload(f"{what} is not JSON: {str(error)[:200]}") from None
    if not isinstance(document, dict):
        raise InvalidUpload(f"{what} is not a JSON object")
    return document


def parse_status(raw: bytes, *, max_bytes: int = MAX_STATUS_BYTES) -> ScanStatus:
    """Parse and validate a `status.json`; raise `InvalidUpload` for anything else."""
    check_size(raw, max_bytes, "status.json")
    try:
        return ScanStatus.model_validate_json(bytes(raw))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or '<root>'}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False)[:5]
        )
        raise InvalidUpload(f"invalid status.json: {problems}") from None


class VulnerabilityCounts(BaseModel):
    """Findings per severity; every severity is always present (zero when none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    CRITICAL: Count = 0
    HIGH: Count = 0
    MEDIUM: Count = 0
    LOW: Count = 0

    def of(self, severity: Severity | str) -> int:
        """The count for one severity."""
        return int(getattr(self, Severity(severity).value))

    @property
    def total(self) -> int:
        """All findings with a known severity."""
        return self.CRITICAL + self.HIGH + self.MEDIUM + self.LOW

    @property
    def worst(self) -> Severity | None:
        """The worst severity with at least one finding, None when there is none."""
        return next((s for s in SEVERITIES_WORST_FIRST if self.of(s) > 0), None)

    @classmethod
    def from_mapping(cls, counts: Mapping[Severity, int]) -> VulnerabilityCounts:
        """Counts from a severity -> count mapping; missing severities are zero."""
        return cls(**{s.value: counts.get(s, 0) for s in SEVERITIES_WORST_FIRST})

    @classmethod
    def from_levels(cls, levels: Mapping[int, int]) -> VulnerabilityCounts:
        """Counts from Qualys level -> count (5 CRITICAL, 4 HIGH, 3 MEDIUM, 1-2 LOW)."""
        counts = dict.fromkeys(SEVERITIES_WORST_FIRST, 0)
        for level, n in levels.items():
            counts[QUALYS_SCALE[level]] += n
        return cls.from_mapping(counts)


class Package(BaseModel):
    """A vulnerable package of a finding: name, installed and fixed version."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(max_length=MAX_PACKAGE_CHARS)
    installed_version: str | None = Field(default=None, max_length=MAX_VERSION_CHARS)
    fixed_version: str | None = Field(default=None, max_length=MAX_VERSION_CHARS)


class Finding(BaseModel):
    """One finding (one QID), trimmed to what a summary needs."""

    model_config = ConfigDict(frozen=True)

    qid: str = Field(max_length=64)
    title: str = Field(max_length=MAX_TITLE_CHARS)
    severity: Severity
    level: int = Field(ge=1, le=5, description="Qualys severity 1-5 (customerSeverity when set)")
    cves: tuple[str, ...] = Field(default=(), max_length=MAX_CVES_PER_FINDING)
    packages: tuple[Package, ...] = Field(default=(), max_length=MAX_PACKAGES_PER_FINDING)
    qds: float | None = Field(default=None, ge=0, le=100)


class ReportSummary(BaseModel):
    """What the app keeps of a QScanner report: per-QID counts by Qualys level and the worst findings.

    `levels` counts QIDs by their effective level (customerSeverity when set); `base_levels` by the Qualys
    severity alone, when it differs for some QID (the log may count either way).
    """

    model_config = ConfigDict(frozen=True)

    source: Literal["sarif", "json"]
    levels: dict[int, Count] = Field(default_factory=lambda: dict.fromkeys(QUALYS_LEVELS, 0))
    base_levels: dict[int, Count] | None = None
    worst_findings: tuple[Finding, ...] = Field(default=(), max_length=MAX_WORST_FINDINGS)
    image_id: str | None = Field(default=None, max_length=300)

    @property
    def total(self) -> int:
        """QIDs found."""
        return sum(self.levels.values())

    @property
    def vulnerabilities(self) -> VulnerabilityCounts:
        """The per-QID counts on the app's four-step scale."""
        return VulnerabilityCounts.from_levels(self.levels)

    @property
    def worst_severity(self) -> Severity | None:
        """The worst severity found, None when the report has no finding."""
        return self.vulnerabilities.worst


ResultStatus = Literal["completed", "denied", "uploaded", "inventory", "cached", "failed", "timed_out", "skipped"]
CACHEABLE_STATUSES: frozenset[str] = frozenset({"completed", "denied"})
ALERT_STATUSES: frozenset[str] = frozenset({"failed", "timed_out"})
NO_REPORT_STATUSES: frozenset[str] = frozenset({"uploaded", "inventory"})
"""Outcomes of the modes that write no vulnerability report: neither failures nor findings, never cached."""
STATUS_OF_SCANNER_RESULT: dict[str, ResultStatus] = {
    "ok": "completed",
    "audit": "completed",
    "deny": "denied",
    "error": "failed",
    "timeout": "timed_out",
}


class ImageResult(BaseModel):
    """The outcome for one image of one scan: small (no report body), stored, returned and notified.

    `digest` is the repo digest the scan reported, else the one resolved before it; `resolved_digest` is the one
    resolved before the scan when it differs (the cache answers lookups by either).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    image: ImageRef
    digest: Digest | None = None
    resolved_digest: Digest | None = None
    status: ResultStatus
    vulnerabilities: VulnerabilityCounts = VulnerabilityCounts()
    worst_severity: Severity | None = None
    report: Location | None = None
    log: Location | None = None
    scanned_at: AwareDatetime | None = None
    instance_id: str | None = Field(default=None, max_length=200)
    exit_code: int | None = None
    reason: Reason | None = None


def needs_notification(result: ImageResult, threshold: Severity | str) -> bool:
    """True when a result must be reported: worst finding at or above `threshold`, or the scan failed or timed out.

    A cached result counts too: the deployment of a known-vulnerable image is news for that deployment.
    """
    if result.status in ALERT_STATUSES:
        return True
    if result.status == "skipped":
        return False
    return at_or_above(result.worst_severity or result.vulnerabilities.worst, threshold)


def clip_reason(text: str) -> str:
    """A reason trimmed to the stored length, control characters replaced."""
    cleaned = _CONTROL.sub(" ", text).strip()
    return cleaned if len(cleaned) <= MAX_REASON_CHARS else cleaned[: MAX_REASON_CHARS - 3] + "..."
