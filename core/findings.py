"""What both report parsers share: bounded text from untrusted JSON, Qualys levels, and per-QID accumulation.

QScanner's log counts vulnerabilities per QID (its README: QID 6019286 over `libc-bin` and `libc6` counts once),
so findings are grouped by QID here: one QID over several packages or results is one finding.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from core.report import (
    MAX_CVES_PER_FINDING,
    MAX_PACKAGE_CHARS,
    MAX_PACKAGES_PER_FINDING,
    MAX_TITLE_CHARS,
    MAX_VERSION_CHARS,
    MAX_WORST_FINDINGS,
    QUALYS_LEVELS,
    QUALYS_SCALE,
    Finding,
    Package,
    ReportSummary,
)

MAX_FINDINGS = 200_000
"""More QIDs than any image has: a report beyond this is refused rather than summarised partly."""
MAX_QID_CHARS = 64
_CVE = re.compile(r"CVE-\d{4}-\d{4,12}", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What the integrations (nelssec/qualys-jenkins SarifParser) map SARIF levels to when no numeric severity is set.
SARIF_LEVELS: dict[str, int] = {"error": 5, "warning": 3, "note": 2, "none": 1}


def text(value: object, limit: int) -> str | None:
    """A scalar as bounded single-line text; None for objects, lists, booleans, null and blanks."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float | str):
        cleaned = _CONTROL.sub(" ", str(value)[: limit * 4]).strip()
        return cleaned[:limit] if cleaned else None
    return None


def qid_of(value: object) -> str | None:
    """A QID (int or text); None when absent or not a plain value."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return text(value, MAX_QID_CHARS)


def qualys_level(value: object) -> int | None:
    """A Qualys severity 1-5 from an int, an integral float or a numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value) <= 8:
        value = int(value.strip())
    return value if isinstance(value, int) and value in QUALYS_SCALE else None


def is_set(value: object) -> bool:
    """Whether an optional severity field holds a value: null, "" and Go's zero value 0 mean "not set"."""
    return value is not None and value != "" and not (value == 0 and not isinstance(value, bool))


def sarif_level(value: object) -> int | None:
    """A Qualys level from a SARIF `level` (error 5, warning 3, note 2, none 1), as the integrations map it."""
    return SARIF_LEVELS.get(value.strip().lower()) if isinstance(value, str) and len(value) <= 16 else None


def qds_of(value: object) -> float | None:
    """A QDS (0-100) from a number or numeric string; None otherwise."""
    if isinstance(value, str) and len(value) <= 16:
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0 <= number <= 100 else None


def cves_of(value: object) -> tuple[str, ...]:
    """CVE ids from a list of strings or one string (comma-separated or not), upper case, deduplicated, bounded."""
    items: list[object] = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    found: list[str] = []
    for item in items[:1000]:
        if isinstance(item, str):
            found.extend(match.upper() for match in _CVE.findall(item[:10_000]))
        if len(found) >= MAX_CVES_PER_FINDING:
            break
    return tuple(dict.fromkeys(found))[:MAX_CVES_PER_FINDING]


def package_of(name: object, installed: object = None, fixed: object = None) -> Package | None:
    """A vulnerable package; None without a name."""
    package_name = text(name, MAX_PACKAGE_CHARS)
    if package_name is None:
        return None
    return Package(
        name=package_name,
        installed_version=text(installed, MAX_VERSION_CHARS),
        fixed_version=text(fixed, MAX_VERSION_CHARS),
    )


@dataclass
class _Qid:
    level: int
    base_level: int
    title: str = ""
    cves: tuple[str, ...] = ()
    packages: list[Package] = field(default_factory=list)
    qds: float | None = None


class FindingsByQid:
    """Findings grouped by QID: the worst level wins, packages and CVEs are merged, first title and QDS kept."""

    def __init__(self) -> None:
        self._by_qid: dict[str, _Qid] = {}

    def add(
        self,
        qid: str,
        level: int,
        *,
        base_level: int | None = None,
        title: str | None = None,
        cves: tuple[str, ...] = (),
        packages: list[Package] | None = None,
        qds: float | None = None,
    ) -> None:
        """Record one finding (a result, or a package row) of `qid`."""
        known = self._by_qid.get(qid)
        if known is None:
            if len(self._by_qid) >= MAX_FINDINGS:
                raise ValueError(f"more than {MAX_FINDINGS} QIDs")
            known = self._by_qid[qid] = _Qid(level=level, base_level=base_level or level)
        known.level = max(known.level, level)
        known.base_level = max(known.base_level, base_level or level)
        known.title = known.title or (title or "")
        known.cves = tuple(dict.fromkeys(known.cves + cves))[:MAX_CVES_PER_FINDING]
        for package in packages or []:
            if package not in known.packages and len(known.packages) < MAX_PACKAGES_PER_FINDING:
                known.packages.append(package)
        known.qds = known.qds if known.qds is not None else qds

    def summary(self, source: str, image_id: str | None = None) -> ReportSummary:
        """The report summary: per-QID counts by level and the worst findings (level, then QDS, then QID)."""
        levels = dict.fromkeys(QUALYS_LEVELS, 0)
        base = dict.fromkeys(QUALYS_LEVELS, 0)
        for found in self._by_qid.values():
            levels[found.level] += 1
            base[found.base_level] += 1
        ranked = sorted(self._by_qid.items(), key=lambda item: (-item[1].level, -(item[1].qds or 0), item[0]))
        worst = tuple(
            Finding(
                qid=qid,
                title=found.title[:MAX_TITLE_CHARS],
                severity=QUALYS_SCALE[found.level],
                level=found.level,
                cves=found.cves,
                packages=tuple(found.packages),
                qds=found.qds,
            )
            for qid, found in ranked[:MAX_WORST_FINDINGS]
        )
        return ReportSummary.model_validate(
            {
                "source": source,
                "levels": levels,
                "base_levels": base if base != levels else None,
                "worst_findings": worst,
                "image_id": text(image_id, 300),
            }
        )
