"""QScanner's SARIF and JSON reports: what is read, what is refused as not understood, and the inventory's digest."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from core.inventory import choose_digest, scan_digest
from core.json_report import parse_json_report
from core.report import MAX_WORST_FINDINGS, InvalidUpload, ReportNotUnderstood, Severity
from core.sarif import parse_sarif

FILES = Path(__file__).parent.parent / "qscanner_files"
IMAGE = "docker.io/library/debian:12"
D = {n: f"sha256:{str(n) * 64}" for n in range(10)}


def _load(name: str) -> Any:
    return json.loads((FILES / name).read_text())


def _bytes(document: object) -> bytes:
    return json.dumps(document).encode()


def _sarif(results: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None) -> bytes:
    return _bytes({"version": "2.1.0", "runs": [{"tool": {"driver": {"rules": rules or []}}, "results": results}]})


def test_sarif_in_the_readme_shape_counts_per_qid() -> None:
    summary = parse_sarif((FILES / "debian.sarif.json").read_bytes())
    assert summary.source == "sarif"
    assert summary.total == 3  # 3 QIDs on 4 package rows
    assert summary.levels == {5: 0, 4: 1, 3: 2, 2: 0, 1: 0}
    assert summary.base_levels is None
    assert summary.vulnerabilities.model_dump() == {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 0}
    glibc = summary.worst_findings[0]
    assert (glibc.qid, glibc.level, glibc.severity, glibc.qds) == ("6019286", 4, Severity.HIGH, 35.0)
    assert glibc.title == "Debian Security Update for glibc (CVE-2025-0395)"
    assert glibc.cves == ("CVE-2025-0395",)
    assert [(p.name, p.installed_version, p.fixed_version) for p in glibc.packages] == [
        ("libc-bin", "2.36-9+deb12u7", "2.36-9+deb12u10"),
        ("libc6:amd64", "2.36-9+deb12u7", "2.36-9+deb12u10"),
    ]
    assert [f.qid for f in summary.worst_findings] == ["6019286", "6017660", "6017622"]  # level, then QDS
    assert summary.worst_findings[1].qds == 30.0  # a numeric string
    tasn = summary.worst_findings[2]
    assert (tasn.qds, tasn.packages[0].fixed_version) == (None, None)  # missing optional fields
    assert summary.image_id is not None and summary.image_id.startswith("sha256:2e5b")


def test_one_qid_in_two_results_counts_once_at_its_worst() -> None:
    rules = [{"id": "1", "properties": {"severity": 2}}]
    raw = _sarif(
        [
            {"ruleId": "1", "properties": {"vulnerableSoftware": [{"name": "a"}]}},
            {"ruleId": "1", "properties": {"vulnerableSoftware": [{"name": "b"}]}},
            {"ruleId": "2", "properties": {"severity": 5}},
        ],
        rules,
    )
    summary = parse_sarif(raw)
    assert summary.levels == {5: 1, 4: 0, 3: 0, 2: 1, 1: 0}
    assert [p.name for p in summary.worst_findings[1].packages] == ["a", "b"]


def test_customer_severity_wins_and_the_qualys_one_is_kept_for_the_log_check() -> None:
    rules = [
        {"id": "7", "properties": {"severity": 2, "customerSeverity": 5}},
        {"id": "8", "properties": {"severity": 3}},
    ]
    summary = parse_sarif(_sarif([{"ruleId": "7"}, {"ruleId": "8"}], rules))
    assert summary.levels == {5: 1, 4: 0, 3: 1, 2: 0, 1: 0}
    assert summary.base_levels == {5: 0, 4: 0, 3: 1, 2: 1, 1: 0}
    assert summary.worst_severity is Severity.CRITICAL


@pytest.mark.parametrize(("level", "expected"), [("error", 5), ("warning", 3), ("note", 2), ("none", 1), ("NOTE", 2)])
def test_severity_falls_back_to_the_sarif_level_as_the_integrations_do(level: str, expected: int) -> None:
    summary = parse_sarif(_sarif([{"ruleId": "42", "level": level}]))
    assert summary.levels[expected] == 1 and summary.total == 1


def test_severity_from_the_result_properties_and_a_rule_found_by_index() -> None:
    rules = [{"id": "100", "properties": {"severity": 4}}]
    summary = parse_sarif(_sarif([{"ruleIndex": 0}, {"ruleId": "101", "properties": {"severity": "1"}}], rules))
    assert summary.levels == {5: 0, 4: 1, 3: 0, 2: 0, 1: 1}
    assert [f.qid for f in summary.worst_findings] == ["100", "101"]


def test_a_clean_sarif_report_is_an_empty_summary() -> None:
    summary = parse_sarif((FILES / "clean.sarif.json").read_bytes())
    assert (summary.total, summary.worst_severity, summary.worst_findings) == (0, None, ())


def test_worst_findings_are_bounded() -> None:
    summary = parse_sarif(_sarif([{"ruleId": str(i), "level": "note"} for i in range(50)]))
    assert summary.total == 50 and len(summary.worst_findings) == MAX_WORST_FINDINGS


NOT_SARIF: dict[str, object] = {
    "no runs": {"version": "2.1.0"},
    "runs empty": {"version": "2.1.0", "runs": []},
    "runs not a list": {"runs": {"results": []}},
    "run without results": {"runs": [{"tool": {}}]},
    "results not a list": {"runs": [{"results": {"a": 1}}]},
    "a result that is a string": {"runs": [{"results": ["x"]}]},
    "other SARIF version": {"version": "2.0.0", "runs": [{"results": []}]},
    "result without QID": {"runs": [{"results": [{"level": "error"}]}]},
    "result without severity": {"runs": [{"results": [{"ruleId": "1"}]}]},
    "severity off the scale": {"runs": [{"results": [{"ruleId": "1", "properties": {"severity": 9}}]}]},
    "severity as a word": {"runs": [{"results": [{"ruleId": "1", "properties": {"severity": "HIGH"}}]}]},
    # Held-out review: a severity that is set but unreadable is not replaced by a guess from the SARIF level.
    "rule severity off the scale beside a level": {
        "runs": [
            {
                "tool": {"driver": {"rules": [{"id": "1", "properties": {"severity": 9}}]}},
                "results": [{"ruleId": "1", "level": "error"}],
            }
        ]
    },
    "customerSeverity as a word beside a severity": {
        "runs": [{"results": [{"ruleId": "1", "properties": {"severity": 3, "customerSeverity": "Urgent"}}]}]
    },
    "the invented shape": {"vulnerabilities": [{"qid": 1, "title": "t", "severity": 5}]},
    "an empty object": {},
}


def test_unset_optional_severities_are_go_zero_values() -> None:
    rules = [{"id": "1", "properties": {"severity": 4, "customerSeverity": 0}}]
    assert parse_sarif(
        _sarif([{"ruleId": "1"}, {"ruleId": "2", "level": "note", "properties": {"severity": ""}}], rules)
    ).levels == {
        5: 0,
        4: 1,
        3: 0,
        2: 1,
        1: 0,
    }


@pytest.mark.parametrize("case", list(NOT_SARIF))
def test_shapes_that_are_not_qscanner_sarif_are_not_understood(case: str) -> None:
    with pytest.raises(ReportNotUnderstood):
        parse_sarif(_bytes(NOT_SARIF[case]))


@pytest.mark.parametrize("raw", [b"", b"[]", b'"x"', b"not json", b"\xff\xfe", b"[" * 100_000, b'{"a": NaN}'])
def test_non_objects_are_invalid_uploads(raw: bytes) -> None:
    for parse in (parse_sarif, parse_json_report):
        with pytest.raises(InvalidUpload):
            parse(raw)


def test_oversize_reports_are_refused() -> None:
    with pytest.raises(InvalidUpload, match="limit"):
        parse_sarif(b" " * 101, max_bytes=100)


def test_json_report_in_a_plausible_qualys_shape() -> None:
    summary = parse_json_report((FILES / "debian-Report.json").read_bytes())
    assert summary.source == "json"
    assert summary.levels == {5: 0, 4: 1, 3: 2, 2: 0, 1: 0}
    glibc = summary.worst_findings[0]
    assert (glibc.qid, glibc.qds, glibc.cves) == ("6019286", 35.0, ("CVE-2025-0395",))
    assert [p.name for p in glibc.packages] == ["libc-bin", "libc6:amd64"]


@pytest.mark.parametrize(
    "document",
    [
        {"vulnerabilities": [{"qid": 1, "title": "t", "severity": 5, "cveIds": ["CVE-2024-0001"], "package": "x"}]},
        {"report": {"Vulnerabilities": [{"QID": "1", "Severity": 5}]}},
        {"Result": {"VulnerabilityList": [{"Qid": 1, "CustomerSeverity": 5, "Severity": 2}]}},
    ],
)
def test_json_report_keys_are_matched_loosely(document: dict[str, Any]) -> None:
    summary = parse_json_report(_bytes(document))
    assert summary.levels[5] == 1 and summary.total == 1


def test_json_report_null_list_is_empty_and_lists_are_merged_per_qid() -> None:
    assert parse_json_report(_bytes({"Vulnerabilities": None})).total == 0
    document = {
        "Vulnerabilities": [{"QID": 1, "Severity": 3}],
        "Layers": [{"Vulnerabilities": [{"QID": 1, "Severity": 3}]}],
    }
    assert parse_json_report(_bytes(document)).total == 1


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"vulnerabilities": {"a": 1}},
        {"OSResults": [{"Packages": []}]},
        {"vulnerabilities": [{"qid": 1, "severity": "LOW"}]},
        {"vulnerabilities": [{"qid": 1, "severity": 3, "customerSeverity": "Urgent"}]},
        {"vulnerabilities": [{"title": "no qid", "severity": 4}]},
        {"vulnerabilities": ["x"]},
        {"a": {"b": {"c": {"d": {"e": {"f": {"vulnerabilities": []}}}}}}},
    ],
)
def test_json_reports_without_a_readable_findings_list_are_not_understood(document: dict[str, Any]) -> None:
    with pytest.raises(ReportNotUnderstood):
        parse_json_report(_bytes(document))


def test_repo_digest_from_the_inventory_matches_the_images_repository() -> None:
    raw = (FILES / "debian-ScanResult.json").read_bytes()
    chosen = scan_digest(raw, IMAGE, None)
    assert chosen.digest == D[4]  # `debian@...` is docker.io/library/debian; the mirror entry is another repository
    assert scan_digest(raw, IMAGE, D[4]).note is None
    other = scan_digest(raw, IMAGE, D[5])
    assert other.digest == D[4] and other.note is not None and D[5] in other.note
    assert scan_digest(raw, "docker.io/library/ubuntu:24.04", None).digest is None
    assert scan_digest(raw, "mirror.example.com/library/debian:12", None).digest == D[9]


def test_repo_digest_choice_when_several_entries_match() -> None:
    entries = [f"docker.io/library/debian@{D[1]}", f"debian@{D[2]}", "garbage", f"debian@{D[2]}", "debian:12"]
    assert choose_digest(entries, IMAGE, D[2]).digest == D[2]  # agrees with the digest resolved before
    assert choose_digest(entries, f"debian@{D[1]}", None).digest == D[1]  # the image's own pinned digest
    ambiguous = choose_digest(entries, IMAGE, D[3])
    assert ambiguous.digest is None and ambiguous.note is not None and "2 digests" in ambiguous.note
    assert choose_digest([], IMAGE, D[3]).digest is None


def test_inventory_in_the_integration_shape_and_without_digests() -> None:
    ado = {"Metadata": {"Target": {"ImageID": D[7], "RepoDigests": [f"debian@{D[1]}"]}}}
    assert scan_digest(_bytes(ado), IMAGE, None).digest == D[1]
    no_digests = copy.deepcopy(_load("debian-ScanResult.json"))
    del no_digests["Metadata"]["TargetMetadata"]["ImageMetadata"]["RepoDigests"]
    assert scan_digest(_bytes(no_digests), IMAGE, D[3]).digest is None  # never the ImageID
    with pytest.raises(InvalidUpload):
        scan_digest(b"[]", IMAGE, None)
