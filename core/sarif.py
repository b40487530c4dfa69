"""QScanner's SARIF 2.1.0 report (`<image_id>-Report.sarif.json`, uploaded as `report.sarif.json`), summarised.

What is read, as the Qualys integrations read it (docs/architecture.md, "QScanner reports"):
`runs[].tool.driver.rules[]` (`id` = QID, `shortDescription.text`, `properties.severity` Qualys 1-5,
`properties.customerSeverity` which wins when set, `properties["cve-ids"]`, `properties.qds`), `runs[].results[]`
(`ruleId`, `ruleIndex`, `level`, `message.text`, `properties.QID`, `properties.vulnerableSoftware[]{name,
installedVersion, fixedVersion}`) and `runs[].properties.imageID`.

The models below cover only that subset and accept any value for the leaves, because every optional field may be
missing or odd; a library model of all of SARIF (sarif-pydantic, sarif-om) would refuse a report for a field the
app never reads, or accept one without the parts it needs. What is required: a `runs` list whose runs each carry a
`results` list (SARIF: an absent `results` means the tool did not run), and a QID and a severity for every result.
Anything else raises `ReportNotUnderstood`, never an empty (clean) summary.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.findings import (
    FindingsByQid,
    cves_of,
    is_set,
    package_of,
    qds_of,
    qid_of,
    qualys_level,
    sarif_level,
    text,
)
from core.report import MAX_REPORT_BYTES, MAX_TITLE_CHARS, Package, ReportNotUnderstood, ReportSummary, load_json_object

SARIF_VERSION = "2.1.0"
SARIF_BLOB = "report.sarif.json"


class _Loose(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class SarifRule(_Loose):
    """`runs[].tool.driver.rules[]`: one QID."""

    id: object = None
    short_description: object = Field(default=None, alias="shortDescription")
    default_configuration: object = Field(default=None, alias="defaultConfiguration")
    properties: dict[str, Any] | None = None


class SarifDriver(_Loose):
    """`runs[].tool.driver`."""

    rules: list[SarifRule] | None = None


class SarifTool(_Loose):
    """`runs[].tool`."""

    driver: SarifDriver | None = None


class SarifResult(_Loose):
    """`runs[].results[]`: one detection of a QID."""

    rule_id: object = Field(default=None, alias="ruleId")
    rule_index: object = Field(default=None, alias="ruleIndex")
    level: object = None
    message: object = None
    properties: dict[str, Any] | None = None


class SarifRun(_Loose):
    """`runs[]`."""

    tool: SarifTool | None = None
    results: list[SarifResult] | None = None
    properties: dict[str, Any] | None = None


class SarifLog(_Loose):
    """The SARIF document."""

    version: object = None
    runs: list[SarifRun]


def _text_of(value: object) -> str | None:
    """`{"text": ...}` (a SARIF message or description) as bounded text."""
    return text(value.get("text"), MAX_TITLE_CHARS) if isinstance(value, dict) else None


def _rule_for(result: SarifResult, rules: list[SarifRule], by_id: dict[str, SarifRule]) -> SarifRule | None:
    rule_id = qid_of(result.rule_id)
    if rule_id is not None and rule_id in by_id:
        return by_id[rule_id]
    index = result.rule_index
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(rules):
        return rules[index]
    return None


def _levels(result: SarifResult, rule: SarifRule | None) -> tuple[int | None, int | None]:
    """(effective level, Qualys level without customerSeverity): rule, then result properties, then SARIF level.

    A `severity`/`customerSeverity` that is set (not null, "" or Go's zero 0) but not a Qualys level 1-5 gives
    (None, None): unrecognised, never replaced by a guess from `level`.
    """
    for props in ((rule.properties if rule else None) or {}, result.properties or {}):
        base = qualys_level(props.get("severity"))
        customer = qualys_level(props.get("customerSeverity"))
        if (base is None and is_set(props.get("severity"))) or (
            customer is None and is_set(props.get("customerSeverity"))
        ):
            return None, None
        if customer is not None or base is not None:
            return customer or base, base or customer
    level = sarif_level(result.level)
    if level is None and rule is not None and isinstance(rule.default_configuration, dict):
        level = sarif_level(rule.default_configuration.get("level"))
    return level, level


def _packages(props: dict[str, Any]) -> list[Package]:
    software = props.get("vulnerableSoftware")
    rows = software if isinstance(software, list) else []
    found = [
        package_of(row.get("name"), row.get("installedVersion"), row.get("fixedVersion"))
        for row in rows[:1000]
        if isinstance(row, dict)
    ]
    if not rows:
        found.append(package_of(props.get("packageName"), props.get("installedVersion"), props.get("fixedVersion")))
    return [p for p in found if p is not None]


def _add_run(run: SarifRun, findings: FindingsByQid) -> int:
    """Add one run's results; returns how many results had no QID or no severity."""
    rules = (run.tool.driver.rules if run.tool and run.tool.driver else None) or []
    by_id = {rid: rule for rule in rules if (rid := qid_of(rule.id)) is not None}
    unrecognised = 0
    for result in run.results or []:
        rule = _rule_for(result, rules, by_id)
        props = result.properties or {}
        qid = qid_of(props.get("QID")) or qid_of(result.rule_id) or (qid_of(rule.id) if rule else None)
        level, base = _levels(result, rule)
        if qid is None or level is None:
            unrecognised += 1
            continue
        rule_props = (rule.properties if rule else None) or {}
        findings.add(
            qid,
            level,
            base_level=base,
            title=(_text_of(rule.short_description) if rule else None) or _text_of(result.message),
            cves=cves_of(rule_props.get("cve-ids")) or cves_of(props.get("cve-ids", props.get("cves"))),
            packages=_packages(props),
            qds=qds_of(rule_props.get("qds", props.get("qds"))),
        )
    return unrecognised


def parse_sarif(raw: bytes, *, max_bytes: int = MAX_REPORT_BYTES) -> ReportSummary:
    """Summarise QScanner's SARIF report; `InvalidUpload` when oversize or not JSON, `ReportNotUnderstood` when
    it is not a SARIF 2.1.0 log with results, or a result has no QID or no severity.
    """
    document = load_json_object(raw, SARIF_BLOB, max_bytes)
    if "runs" not in document:
        raise ReportNotUnderstood(f"{SARIF_BLOB} has no runs")
    try:
        log = SarifLog.model_validate(document)
    except ValidationError as error:
        where = ".".join(str(p) for p in error.errors(include_url=False)[0]["loc"])
        raise ReportNotUnderstood(f"{SARIF_BLOB} is not SARIF as QScanner writes it (at {where})") from None
    if log.version is not None and log.version != SARIF_VERSION:
        raise ReportNotUnderstood(f"{SARIF_BLOB} is SARIF version {text(log.version, 20)!r}, not {SARIF_VERSION}")
    if not log.runs:
        raise ReportNotUnderstood(f"{SARIF_BLOB} has no runs")
    missing = [i for i, run in enumerate(log.runs) if run.results is None]
    if missing:
        raise ReportNotUnderstood(f"{SARIF_BLOB} run {missing[0]} has no results list")
    findings = FindingsByQid()
    try:
        unrecognised = sum(_add_run(run, findings) for run in log.runs)
    except ValueError as error:
        raise ReportNotUnderstood(f"{SARIF_BLOB}: {error}") from None
    if unrecognised:
        total = sum(len(run.results or []) for run in log.runs)
        raise ReportNotUnderstood(f"{unrecognised} of {total} SARIF results have no QID or no severity")
    image_id = next((run.properties.get("imageID") for run in log.runs if run.properties), None)
    return findings.summary("sarif", image_id=text(image_id, 300))
