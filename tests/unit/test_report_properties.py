"""Property tests: upload parsers raise only InvalidUpload, and arbitrary uploads are never a silent clean."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.assessment import assess, read_reports
from core.inventory import scan_digest
from core.json_report import parse_json_report
from core.report import InvalidUpload, ScanStatus, parse_status
from core.sarif import parse_sarif
from core.scan_log import read_log_counts

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=40,
)
LEVELS = st.sampled_from([1, 2, 3, 4, 5, 0, 9, "3", "HIGH", None, 4.0, True]) | JSON_VALUES
SARIF_RESULTS = st.fixed_dictionaries(
    {},
    optional={
        "ruleId": st.sampled_from(["1", "2", "3", 4]) | JSON_VALUES,
        "ruleIndex": st.integers(-1, 3) | JSON_VALUES,
        "level": st.sampled_from(["error", "warning", "note", "none", "x"]) | JSON_VALUES,
        "message": st.fixed_dictionaries({"text": JSON_VALUES}) | JSON_VALUES,
        "properties": st.fixed_dictionaries({}, optional={"QID": JSON_VALUES, "severity": LEVELS}) | JSON_VALUES,
    },
)
SARIF_RULES = st.fixed_dictionaries(
    {"id": st.sampled_from(["1", "2", "3"]) | JSON_VALUES},
    optional={"properties": st.fixed_dictionaries({}, optional={"severity": LEVELS, "customerSeverity": LEVELS})},
)
SARIF_DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "version": st.sampled_from(["2.1.0", "2.0.0"]) | JSON_VALUES,
        "runs": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "tool": st.fixed_dictionaries({"driver": st.fixed_dictionaries({"rules": st.lists(SARIF_RULES)})}),
                    "results": st.lists(SARIF_RESULTS | JSON_VALUES, max_size=8) | JSON_VALUES,
                },
            )
            | JSON_VALUES,
            max_size=3,
        )
        | JSON_VALUES,
    },
)
LOG_LINES = st.lists(
    st.sampled_from(["INFO 0 vulnerabilities found!", "INFO 2 vulnerabilities found!", "Vulnerability report received"])
    | st.builds(lambda k, n: f"INFO   Severity {k}: {n}", st.integers(1, 5), st.integers(0, 3))
    | st.text(max_size=30),
    max_size=12,
)
STATUS = ScanStatus(image="docker.io/library/app:1", index=0, exit_code=0, result="ok")


def _parsers(raw: bytes) -> None:
    for parse in (parse_sarif, parse_json_report, parse_status):
        with contextlib.suppress(InvalidUpload):
            parse(raw)
    with contextlib.suppress(InvalidUpload):
        scan_digest(raw, "docker.io/library/app:1", None)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_invalid_upload(raw: bytes) -> None:
    _parsers(raw)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_arbitrary_json_raises_only_invalid_upload(value: object) -> None:
    _parsers(json.dumps(value).encode())


def _understood(raw: bytes) -> bool:
    for parse in (parse_sarif, parse_json_report):
        with contextlib.suppress(InvalidUpload):
            parse(raw)
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(SARIF_DOCUMENTS | JSON_VALUES, st.sampled_from(["report.sarif.json", "report.json"]), LOG_LINES)
def test_never_a_clean_result_unless_the_report_is_understood_and_the_log_agrees(
    document: Any, name: str, lines: list[str]
) -> None:
    raw = json.dumps(document).encode()
    log = "\n".join(lines)
    verdict = assess("get-report", STATUS, read_reports([(name, raw)]), log)
    if verdict.status == "failed":
        assert verdict.reasons[0].startswith("report not understood: ")
        return
    assert verdict.status == "completed" and verdict.summary is not None
    assert _understood(raw)
    counts = read_log_counts(log).counts
    assert counts is not None and counts.total == verdict.summary.total
    assert verdict.summary.vulnerabilities.total == counts.total


@settings(max_examples=200, deadline=None)
@given(SARIF_DOCUMENTS)
def test_sarif_counts_are_per_qid_and_bounded(document: dict[str, Any]) -> None:
    with contextlib.suppress(InvalidUpload):
        summary = parse_sarif(json.dumps(document).encode())
        results = sum(len(run["results"]) for run in document["runs"])
        assert 0 <= summary.total <= results
        assert len(summary.worst_findings) == min(10, summary.total)
        ranks = [f.level for f in summary.worst_findings]
        assert ranks == sorted(ranks, reverse=True)


FINDINGS = st.dictionaries(st.integers(1, 10**7).map(str), st.integers(1, 5), max_size=25)


def _rendered(findings: dict[str, int], rows_per_qid: int) -> bytes:
    rules = [{"id": qid, "properties": {"severity": level}} for qid, level in findings.items()]
    results = [
        {"ruleId": qid, "properties": {"vulnerableSoftware": [{"name": f"pkg{n}"}]}}
        for qid in findings
        for n in range(rows_per_qid)
    ]
    return json.dumps(
        {"version": "2.1.0", "runs": [{"tool": {"driver": {"rules": rules}}, "results": results}]}
    ).encode()


def _log_for(levels: dict[int, int]) -> str:
    lines = [f"2026-10-02T08:20:47Z INFO {sum(levels.values())} vulnerabilities found!"]
    return "\n".join(lines + [f"2026-10-02T08:20:47Z INFO   Severity {k}: {levels[k]}" for k in (5, 4, 3, 2, 1)])


@settings(max_examples=150, deadline=None)
@given(FINDINGS, st.integers(1, 3), st.integers(1, 5), st.sampled_from([-1, 1]))
def test_a_matching_log_vouches_for_the_report_and_any_other_count_fails_it(
    findings: dict[str, int], rows: int, perturbed: int, delta: int
) -> None:
    levels = {k: sum(1 for level in findings.values() if level == k) for k in (5, 4, 3, 2, 1)}
    reading = read_reports([("report.sarif.json", _rendered(findings, rows))])
    verdict = assess("get-report", STATUS, reading, _log_for(levels))
    assert verdict.status == "completed" and verdict.summary is not None
    assert verdict.summary.total == len(findings)  # per QID, however many package rows
    if levels[perturbed] + delta >= 0:
        wrong = {**levels, perturbed: levels[perturbed] + delta}
        assert assess("get-report", STATUS, reading, _log_for(wrong)).status == "failed"
