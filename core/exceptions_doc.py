"""Exceptions (risk acceptance) with expiry: the versioned document, its validation, and pure matching.

The document, shared by `PUT /api/exceptions`, scenarios and the store (docs/results.md, "Exceptions"):
`{"version": 3, "exceptions": [{"id": "ex-1", "qid": 6019286, "image": "docker.io/library/nginx:*",
"scope": "/subscriptions/<sub>/resourceGroups/<rg>", "reason": "...", "owner": "...",
"expires": "2026-12-31T00:00:00Z"}]}`, `cve` in place of `qid` where wanted.

An entry matches a finding when its QID (or one of its CVEs) is the entry's, the image's canonical reference matches
the `image` glob (fnmatch, case-sensitive) when one is given, and one of the image's workloads (ARM resource ids) lies
under `scope` (case-insensitive prefix on path-segment boundaries) when one is given; and it has not expired
(`now < expires`). Exceptions act on the findings a stored report summary lists (its worst findings, at most
`core.report.MAX_WORST_FINDINGS`): a finding the summary does not list is never suppressed (fail loud, not quiet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.report import SEVERITIES_WORST_FIRST, Finding, ImageResult, ReportSummary

MAX_EXCEPTIONS = 500
MAX_DOCUMENT_BYTES = 256 * 1024
DEFAULT_MAX_DAYS = 180
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CVE_PATTERN = re.compile(r"^CVE-\d{4}-\d{4,}$")
GLOB_CHARS = frozenset("*?[")


class InvalidExceptions(ValueError):
    """The document is refused whole; the message names the entry (`exceptions[2].scope: ...`)."""


def scope_problem(scope: str) -> str | None:
    """Why `scope` is not a subscription, resource group or resource id prefix (None when it is)."""
    parts = scope.strip("/").split("/")
    if not scope.startswith("/") or len(parts) < 2 or parts[0].lower() != "subscriptions" or "" in parts:
        return "must be an ARM id prefix: /subscriptions/<id>[/resourceGroups/<rg>[/providers/...]]"
    if len(parts) >= 3 and parts[2].lower() != "resourcegroups":
        return "the segment after the subscription must be resourceGroups"
    return None


def under_scope(resource_id: str, scope: str) -> bool:
    """`resource_id` is `scope` or below it, case-insensitively, on path-segment boundaries."""
    rid, prefix = resource_id.lower().rstrip("/"), scope.lower().rstrip("/")
    return rid == prefix or rid.startswith(prefix + "/")


class ExceptionEntry(BaseModel):
    """One accepted risk. Extra fields (ticket, links) are kept as given."""

    model_config = ConfigDict(frozen=True, extra="allow", str_strip_whitespace=True)

    id: str = Field(pattern=ID_PATTERN)
    qid: int | None = Field(default=None, ge=1, le=10**12, strict=True)
    cve: str | None = Field(default=None, max_length=40)
    image: str | None = Field(default=None, min_length=1, max_length=1024)
    scope: str | None = Field(default=None, min_length=1, max_length=2048)
    reason: str = Field(min_length=1, max_length=2000)
    owner: str = Field(min_length=1, max_length=256)
    expires: AwareDatetime

    @field_validator("cve")
    @classmethod
    def _cve(cls, value: str | None) -> str | None:
        if value is None:
            return None
        upper = value.upper()
        if not CVE_PATTERN.match(upper):
            raise ValueError("must look like CVE-2025-0395")
        return upper

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and (any(c.isspace() for c in value) or "/" not in value):
            raise ValueError("must be a glob over the canonical reference, e.g. docker.io/library/nginx:*")
        return value

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str | None) -> str | None:
        problem = scope_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _shape(self) -> ExceptionEntry:
        if (self.qid is None) == (self.cve is None):
            raise ValueError("give exactly one of qid and cve")
        if self.image is None and self.scope is None:
            raise ValueError("give an image pattern, a scope, or both")
        return self

    def active(self, now: datetime) -> bool:
        return now < self.expires

    def matches_finding(self, finding: Finding) -> bool:
        if self.qid is not None:
            return finding.qid.strip() == str(self.qid)
        return self.cve in {c.upper() for c in finding.cves}

    def matches_target(self, image: str, workloads: Sequence[str]) -> bool:
        if self.image is not None and not fnmatchcase(image, self.image):
            return False
        return self.scope is None or any(under_scope(w, self.scope) for w in workloads)


class ExceptionsDocument(BaseModel):
    """The whole document; `version` counts accepted changes (0: never written)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(default=0, ge=0, strict=True)
    exceptions: tuple[ExceptionEntry, ...] = Field(default=(), max_length=MAX_EXCEPTIONS)

    @model_validator(mode="after")
    def _unique_ids(self) -> ExceptionsDocument:
        seen: set[str] = set()
        for index, entry in enumerate(self.exceptions):
            if entry.id in seen:
                raise ValueError(f"exceptions[{index}].id: {entry.id} is used twice")
            seen.add(entry.id)
        return self


def _reason(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_input=False, include_url=False)[:5]:
        loc = [str(p) for p in item["loc"]]
        where = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc).lstrip(".")
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def parse_document(data: Any, now: datetime, max_days: int = DEFAULT_MAX_DAYS) -> ExceptionsDocument:
    """A validated document; InvalidExceptions naming the entry and the reason. `expires` may lie in the past (the
    entry is inactive, kept for the record) but not more than `max_days` after `now`.
    """
    if not isinstance(data, dict):
        raise InvalidExceptions('the document must be a JSON object {"exceptions": [...]}')
    try:
        document = ExceptionsDocument.model_validate(data)
    except ValidationError as error:
        raise InvalidExceptions(_reason(error)) from None
    bound = now + timedelta(days=max_days)
    for index, entry in enumerate(document.exceptions):
        if entry.expires > bound:
            raise InvalidExceptions(
                f"exceptions[{index}].expires: more than EXCEPTION_MAX_DAYS ({max_days}) days ahead "
                f"(at most {bound.isoformat()})"
            )
    return document


@dataclass(frozen=True)
class Applied:
    """A report summary with the exceptions applied: the effective summary (suppressed findings removed from the
    listed findings and the counts), what was suppressed per severity, and which exception ids applied.
    """

    summary: ReportSummary
    suppressed: tuple[Finding, ...] = ()
    exception_ids: tuple[str, ...] = ()

    @property
    def by_severity(self) -> dict[str, int]:
        counts = dict.fromkeys((s.value for s in SEVERITIES_WORST_FIRST), 0)
        for finding in self.suppressed:
            counts[finding.severity.value] += 1
        return counts

    def view(self) -> dict[str, Any]:
        """What the API shows next to a result: `{"suppressed": {"CRITICAL": 1, ...}, "exception_ids": [...]}`."""
        return {
            "suppressed": self.by_severity,
            "suppressed_qids": [f.qid for f in self.suppressed],
            "exception_ids": list(self.exception_ids),
        }


def active_entries(document: ExceptionsDocument, now: datetime) -> tuple[ExceptionEntry, ...]:
    return tuple(e for e in document.exceptions if e.active(now))


def apply_to_summary(
    summary: ReportSummary, image: str, workloads: Sequence[str], entries: Iterable[ExceptionEntry], now: datetime
) -> Applied:
    """The summary with every active matching entry applied (pure)."""
    candidates = [e for e in entries if e.active(now) and e.matches_target(image, workloads)]
    if not candidates:
        return Applied(summary)
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    ids: list[str] = []
    for finding in summary.worst_findings:
        hits = [e.id for e in candidates if e.matches_finding(finding)]
        (suppressed if hits else kept).append(finding)
        ids += hits
    if not suppressed:
        return Applied(summary)
    levels = dict(summary.levels)
    base = dict(summary.base_levels) if summary.base_levels is not None else None
    for finding in suppressed:
        levels[finding.level] = max(0, levels.get(finding.level, 0) - 1)
        if base is not None:
            base[finding.level] = max(0, base.get(finding.level, 0) - 1)
    effective = summary.model_copy(update={"levels": levels, "base_levels": base, "worst_findings": tuple(kept)})
    return Applied(effective, tuple(suppressed), tuple(dict.fromkeys(ids)))


def effective_result(result: ImageResult, applied: Applied) -> ImageResult:
    """The result as thresholds see it: counts and worst severity without the suppressed findings."""
    if not applied.suppressed:
        return result
    counts = applied.summary.vulnerabilities
    return result.model_copy(update={"vulnerabilities": counts, "worst_severity": counts.worst})


def expired_between(document: ExceptionsDocument, since: datetime, now: datetime) -> tuple[ExceptionEntry, ...]:
    """Entries whose expiry fell in (since, now]: their findings count again from now on."""
    return tuple(e for e in document.exceptions if since < e.expires <= now)
