"""Scan results: severities, the scanner's status.json and report.json parsers, and the per-image result."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

import pydantic_core
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MAX_STATUS_BYTES = 16 * 1024
MAX_REPORT_BYTES = 32 * 1024 * 1024
MAX_WORST_FINDINGS = 10
MAX_TITLE_CHARS = 300
MAX_CVES_PER_FINDING = 20
MAX_PACKAGE_CHARS = 200
MAX_IMAGE_REF_CHARS = 1024
MAX_REASON_CHARS = 500
MAX_LOCATION_CHARS = 2048
REPORT_CONTAINERS = ("report", "result")
VULNERABILITIES_KEY = "vulnerabilities"

DIGEST_PATTERN = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,256}"
_DIGEST = re.compile(DIGEST_PATTERN)
_CVE = re.compile(r"CVE-\d{4}-\d{4,12}", re.IGNORECASE)
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
_QUALYS_SCALE: dict[int, Severity] = {
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
        return _QUALYS_SCALE.get(value)
    if isinstance(value, float) and value.is_integer():
        return _QUALYS_SCALE.get(int(value))
    if isinstance(value, str) and len(value) <= 16:
        text = value.strip().upper()
        if text.isdigit():
            return _QUALYS_SCALE.get(int(text))
        try:
            return Severity(text)
        except ValueError:
            return None
    return None


class InvalidUpload(ValueError):
    """An upload from the scanner (status.json, report.json) is oversize, not JSON or not the expected shape."""


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


ImageRef = Annotated[str, StringConstraints(min_length=1, max_length=MAX_IMAGE_REF_CHARS), AfterValidator(_no_control)]
Digest = Annotated[str, StringConstraints(pattern=f"^{DIGEST_PATTERN}$", max_length=300)]
Reason = Annotated[str, StringConstraints(max_length=MAX_REASON_CHARS)]
Location = Annotated[str, StringConstraints(max_length=MAX_LOCATION_CHARS)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]


class ScanStatus(BaseModel):
    """The scanner's `status.json` for one image; strict types, extra keys ignored (untrusted input)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    image: ImageRef
    index: int = Field(ge=0, le=10_000)
    exit_code: int | None = Field(default=None, ge=-(2**31), le=2**32)
    result: Literal["ok", "deny", "audit", "error", "timeout"]
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    digest: Digest | None = None


def _check_size(raw: bytes, limit: int, what: str) -> None:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise InvalidUpload(f"{what} must be bytes")
    if len(raw) > limit:
        raise InvalidUpload(f"{what} is {len(raw)} bytes, more than the limit of {limit}")


def parse_status(raw: bytes, *, max_bytes: int = MAX_STATUS_BYTES) -> ScanStatus:
    """Parse and validate a `status.json`; raise `InvalidUpload` for anything else."""
    _check_size(raw, max_bytes, "status.json")
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


class Finding(BaseModel):
    """One finding, trimmed to what a summary needs."""

    model_config = ConfigDict(frozen=True)

    qid: str = Field(max_length=64)
    title: str = Field(max_length=MAX_TITLE_CHARS)
    severity: Severity
    cves: tuple[str, ...] = Field(default=(), max_length=MAX_CVES_PER_FINDING)
    package: str | None = Field(default=None, max_length=MAX_PACKAGE_CHARS)


class ReportSummary(BaseModel):
    """What the app keeps of a QScanner report: counts, the worst findings and the image digest."""

    model_config = ConfigDict(frozen=True)

    digest: Digest | None = None
    vulnerabilities: VulnerabilityCounts = VulnerabilityCounts()
    worst_findings: tuple[Finding, ...] = Field(default=(), max_length=MAX_WORST_FINDINGS)
    unrecognised_findings: Count = 0

    @property
    def worst_severity(self) -> Severity | None:
        """The worst severity found, None when the report has no finding."""
        return self.vulnerabilities.worst


def _text(value: object, limit: int) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = _CONTROL.sub(" ", str(value)).strip()
        return text[:limit] if text else None
    return None


def _cves(value: object) -> tuple[str, ...]:
    items: list[object] = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    found: list[str] = []
    for item in items[:1000]:
        if isinstance(item, str):
            found.extend(match.upper() for match in _CVE.findall(item[:10_000]))
        if len(found) >= MAX_CVES_PER_FINDING:
            break
    return tuple(dict.fromkeys(found))[:MAX_CVES_PER_FINDING]


def _package(value: object) -> str | None:
    if isinstance(value, dict):
        name, version = _text(value.get("name"), MAX_PACKAGE_CHARS), _text(value.get("version"), 100)
        if name is None:
            return None
        return f"{name} {version}"[:MAX_PACKAGE_CHARS] if version else name
    return _text(value, MAX_PACKAGE_CHARS)


def _finding(item: object) -> Finding | None:
    if not isinstance(item, dict):
        return None
    severity = severity_from(item.get("severity"))
    if severity is None:
        return None
    qid = _text(item.get("qid"), 64) or "?"
    title = _text(item.get("title"), MAX_TITLE_CHARS) or ""
    cves = _cves(item.get("cveIds", item.get("cves")))
    return Finding(qid=qid, title=title, severity=severity, cves=cves, package=_package(item.get("package")))


def _vulnerability_list(document: dict[str, Any]) -> list[object] | None:
    candidates: list[object] = [document.get(VULNERABILITIES_KEY)]
    for key in REPORT_CONTAINERS:
        nested = document.get(key)
        candidates.append(nested.get(VULNERABILITIES_KEY) if isinstance(nested, dict) else nested)
    return next((c for c in candidates if isinstance(c, list)), None)


def _digest_of(document: dict[str, Any]) -> str | None:
    image = document.get("image")
    candidates = [image.get("digest") if isinstance(image, dict) else None, document.get("imageDigest")]
    return next((c for c in candidates if isinstance(c, str) and len(c) <= 300 and _DIGEST.fullmatch(c)), None)


def _sort_key(finding: Finding) -> tuple[int, str, str]:
    return (-finding.severity.rank, finding.qid, finding.title)


def parse_report(raw: bytes, *, max_bytes: int = MAX_REPORT_BYTES) -> ReportSummary:
    """Summarise a QScanner `report.json` tolerantly; raise `InvalidUpload` when it is oversize or not a JSON object.

    Findings without a recognisable severity are counted in `unrecognised_findings`, not guessed at.
    A report without any vulnerability list is an empty report (zero findings).
    """
    _check_size(raw, max_bytes, "report.json")
    try:
        document = pydantic_core.from_json(bytes(raw), allow_inf_nan=True, cache_strings=False)
    except ValueError as error:
        raise InvalidUpload(f"report.json is not JSON: {str(error)[:200]}") from None
    if not isinstance(document, dict):
        raise InvalidUpload("report.json is not a JSON object")
    counts = dict.fromkeys(SEVERITIES_WORST_FIRST, 0)
    worst: list[Finding] = []
    unrecognised = 0
    for item in _vulnerability_list(document) or []:
        finding = _finding(item)
        if finding is None:
            unrecognised += 1
            continue
        counts[finding.severity] += 1
        worst.append(finding)
        if len(worst) > 4 * MAX_WORST_FINDINGS:
            worst = sorted(worst, key=_sort_key)[:MAX_WORST_FINDINGS]
    return ReportSummary(
        digest=_digest_of(document),
        vulnerabilities=VulnerabilityCounts.from_mapping(counts),
        worst_findings=tuple(sorted(worst, key=_sort_key)[:MAX_WORST_FINDINGS]),
        unrecognised_findings=unrecognised,
    )


ResultStatus = Literal["completed", "denied", "cached", "failed", "timed_out", "skipped"]
CACHEABLE_STATUSES: frozenset[str] = frozenset({"completed", "denied"})
ALERT_STATUSES: frozenset[str] = frozenset({"failed", "timed_out"})
STATUS_OF_SCANNER_RESULT: dict[str, ResultStatus] = {
    "ok": "completed",
    "audit": "completed",
    "deny": "denied",
    "error": "failed",
    "timeout": "timed_out",
}


class ImageResult(BaseModel):
    """The outcome for one image of one scan: small (no report body), stored, returned and notified."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    image: ImageRef
    digest: Digest | None = None
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
