"""QScanner's JSON report (`<image_id>-Report.json`, uploaded as `report.json`), summarised tolerantly.

Qualys publishes no schema for it: the README calls it the "detailed JSON report which includes inventory" and
lists what the detailed report holds per vulnerability (QID, CVE-IDs, Severity, CustomerSeverity, Softwares with
name, installed and fixed version, Title, ...). So keys are matched case- and separator-insensitively (`QID`,
`qid`; `CVEIDs`, `cveIds`, `cve-ids`) and the findings list is looked for under a key named like
`vulnerabilities` (`Vulnerabilities`, `vulns`, `vulnerabilityList`) anywhere in the first levels of the document.
A `null` there is an empty list (Go writes empty slices so). Every entry needs a QID and a Qualys severity 1-5.
A document without such a list, or with an entry the app cannot read, raises `ReportNotUnderstood`: the log's
counts (core/scan_log.py) are the independent check that a recognised list is the whole truth.
"""

from __future__ import annotations

import re
from typing import Any

from core.findings import FindingsByQid, cves_of, is_set, package_of, qds_of, qid_of, qualys_level, text
from core.report import MAX_REPORT_BYTES, MAX_TITLE_CHARS, Package, ReportNotUnderstood, ReportSummary, load_json_object

JSON_REPORT_BLOB = "report.json"
FINDINGS_KEYS = frozenset({"vulnerabilities", "vulns", "vulnerabilitylist", "vulnerabilitiesfound"})
MAX_DEPTH = 6
MAX_NODES = 200_000
_SEPARATORS = re.compile(r"[^a-z0-9]")


def _norm(key: str) -> str:
    return _SEPARATORS.sub("", key.lower())


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    """An object's entries by normalised key (the first spelling wins)."""
    fields: dict[str, Any] = {}
    for key, value in item.items():
        fields.setdefault(_norm(key), value)
    return fields


def _findings_lists(document: dict[str, Any]) -> list[list[Any]]:
    """Every list (or null) under a findings key, breadth first, bounded in depth and nodes."""
    found: list[list[Any]] = []
    level: list[Any] = [document]
    seen = 0
    for _ in range(MAX_DEPTH):
        below: list[Any] = []
        for node in level:
            seen += 1
            if seen > MAX_NODES:
                return found
            children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for key, value in children:
                if isinstance(key, str) and _norm(key) in FINDINGS_KEYS and (value is None or isinstance(value, list)):
                    found.append(value or [])
                elif isinstance(value, dict | list):
                    below.append(value)
        level = below
    return found


def _packages(fields: dict[str, Any]) -> list[Package]:
    rows: list[Any] = []
    for key in ("softwares", "vulnerablesoftware", "software", "packages", "package"):
        value = fields.get(key)
        rows = value if isinstance(value, list) else [value] if value is not None else []
        if rows:
            break
    found: list[Package | None] = []
    for row in rows[:1000]:
        if isinstance(row, dict):
            f = _fields(row)
            found.append(package_of(f.get("name"), f.get("installedversion", f.get("version")), f.get("fixedversion")))
        else:
            found.append(package_of(row))
    return [p for p in found if p is not None]


def _qds(value: object) -> float | None:
    return qds_of(_fields(value).get("score")) if isinstance(value, dict) else qds_of(value)


def _add(item: object, findings: FindingsByQid) -> bool:
    """Add one entry; False when it has no QID or no Qualys severity."""
    if not isinstance(item, dict):
        return False
    fields = _fields(item)
    qid = qid_of(fields.get("qid"))
    base = qualys_level(fields.get("severity"))
    customer = qualys_level(fields.get("customerseverity"))
    level = customer or base
    unreadable = (base is None and is_set(fields.get("severity"))) or (
        customer is None and is_set(fields.get("customerseverity"))
    )
    if qid is None or level is None or unreadable:
        return False
    title = text(fields.get("title"), MAX_TITLE_CHARS) or text(fields.get("summary"), MAX_TITLE_CHARS)
    cves = next((c for key in ("cveids", "cves", "cve", "cvelist") if (c := cves_of(fields.get(key)))), ())
    findings.add(
        qid,
        level,
        base_level=base or customer,
        title=title,
        cves=cves,
        packages=_packages(fields),
        qds=_qds(fields.get("qds")),
    )
    return True


def parse_json_report(raw: bytes, *, max_bytes: int = MAX_REPORT_BYTES) -> ReportSummary:
    """Summarise QScanner's JSON report; `InvalidUpload` when oversize or not a JSON object, `ReportNotUnderstood`
    when no findings list is found or an entry has no QID or no severity.
    """
    document = load_json_object(raw, JSON_REPORT_BLOB, max_bytes)
    lists = _findings_lists(document)
    if not lists:
        raise ReportNotUnderstood(f"{JSON_REPORT_BLOB} has no vulnerabilities list")
    findings = FindingsByQid()
    items = [item for found in lists for item in found]
    try:
        unrecognised = sum(1 for item in items if not _add(item, findings))
    except ValueError as error:
        raise ReportNotUnderstood(f"{JSON_REPORT_BLOB}: {error}") from None
    if unrecognised:
        what = f"{unrecognised} of {len(items)} entries in {JSON_REPORT_BLOB}"
        raise ReportNotUnderstood(f"{what} have no QID or no severity")
    fields = _fields(document)
    return findings.summary("json", image_id=text(fields.get("imageid"), 300))
