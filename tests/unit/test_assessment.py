"""Never a silent clean: the log's own counts, and the verdict per mode from status, reports and log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.assessment import NOT_UNDERSTOOD, assess, read_reports
from core.options import QScannerMode
from core.report import ScanStatus
from core.scan_log import read_log_counts

FILES = Path(__file__).parent.parent / "qscanner_files"
SARIF = (FILES / "debian.sarif.json").read_bytes()
JSON_REPORT = (FILES / "debian-Report.json").read_bytes()
LOG = (FILES / "debian.log").read_text()
CLEAN_SARIF = (FILES / "clean.sarif.json").read_bytes()
CLEAN_LOG = (FILES / "clean.log").read_text()


def _log(total: int, *levels: int, prefix: str = "2026-10-02T08:20:47.475+0000    INFO    ") -> str:
    lines = [f"{prefix}{total} vulnerabilities found!"]
    lines += [f"{prefix}  Severity {k}: {n}" for k, n in zip((5, 4, 3, 2, 1), levels, strict=True)]
    return "\n".join(lines) + "\n"


def _status(result: str = "ok", **extra: Any) -> ScanStatus:
    exit_codes = {"ok": 0, "deny": 42, "audit": 43, "error": 6, "timeout": 124}
    document = {"image": "docker.io/library/debian:12", "index": 0, "exit_code": exit_codes[result], "result": result}
    return ScanStatus.model_validate({**document, **extra})


def test_log_counts_in_the_readme_format() -> None:
    counts = read_log_counts(LOG).counts
    assert counts is not None
    assert (counts.total, counts.levels) == (3, {5: 0, 4: 1, 3: 2, 2: 0, 1: 0})


@pytest.mark.parametrize(
    "prefix",
    ["", "INFO ", "[INFO] ", "2026-10-02 08:20:47 INFO qscanner ", "\x1b[34mINFO\x1b[0m    ", "\t"],
)
def test_log_counts_tolerate_prefixes(prefix: str) -> None:
    counts = read_log_counts(_log(2, 0, 1, 0, 1, 0, prefix=prefix)).counts
    assert counts is not None and counts.levels[4] == 1


@pytest.mark.parametrize(
    ("log", "problem"),
    [
        ("", "no vulnerability counts"),
        ("INFO Vulnerability report received\n", "no vulnerability counts"),
        ("INFO 3 vulnerabilities found!\n", "lacks"),
        (_log(3, 0, 1, 1, 0, 0), "lacks"),  # severity lines do not add up
        (_log(1, 0, 0, 0, 0, 1).replace("Severity 3", "Severity 7"), "lacks"),
        ("INFO 3 vulnerabilities found! (cached)\n", "no vulnerability counts"),  # not the whole line
        ("INFO a b c d 3 vulnerabilities found!\n", "no vulnerability counts"),  # more than four tokens before
        ("INFO three vulnerabilities found!\n", "no vulnerability counts"),
    ],
)
def test_log_without_complete_counts(log: str, problem: str) -> None:
    reading = read_log_counts(log)
    assert reading.counts is None and reading.problem is not None and problem in reading.problem


def test_log_zero_alone_and_the_last_block_wins() -> None:
    zero = read_log_counts("INFO 0 vulnerabilities found!\n").counts
    assert zero is not None and zero.total == 0
    last = read_log_counts(_log(1, 1, 0, 0, 0, 0) + "retrying\n" + _log(2, 0, 0, 0, 2, 0)).counts
    assert last is not None and last.levels[2] == 2


@pytest.mark.parametrize("mode", ["get-report", "evaluate-policy"])
def test_report_and_log_agree(mode: QScannerMode) -> None:
    for uploads in ([("report.sarif.json", SARIF)], [("report.json", JSON_REPORT)]):
        verdict = assess(mode, _status(), read_reports(uploads), LOG)
        assert verdict.status == "completed" and verdict.reasons == []
        assert verdict.summary is not None and verdict.summary.vulnerabilities.MEDIUM == 2


def test_a_real_clean_result() -> None:
    verdict = assess("get-report", _status(), read_reports([("report.sarif.json", CLEAN_SARIF)]), CLEAN_LOG)
    assert verdict.status == "completed" and verdict.summary is not None and verdict.summary.total == 0


@pytest.mark.parametrize(
    ("uploads", "log", "why"),
    [
        ([("report.sarif.json", SARIF)], _log(4, 0, 2, 2, 0, 0), "has 3 QIDs"),  # the log counts more
        ([("report.sarif.json", SARIF)], _log(3, 1, 0, 2, 0, 0), "severity 5:0 4:1"),  # same total, other levels
        ([("report.sarif.json", CLEAN_SARIF)], LOG, "has 0 QIDs"),  # a clean report, findings in the log
        ([("report.sarif.json", SARIF)], "nothing here\n", "no vulnerability counts"),
        ([("report.sarif.json", SARIF)], None, "no scan.log"),
        ([], LOG, "no report"),
        ([("report.sarif.json", b'{"runs": []}')], CLEAN_LOG, "has no runs"),
        ([("report.json", b"{}")], CLEAN_LOG, "no vulnerabilities list"),
        ([("report.sarif.json", "report.sarif.json is oversize")], CLEAN_LOG, "oversize"),
    ],
)
def test_not_understood_is_failed(uploads: list[tuple[str, bytes | str]], log: str | None, why: str) -> None:
    verdict = assess("get-report", _status(), read_reports(uploads), log)
    assert verdict.status == "failed" and verdict.summary is None
    assert verdict.reasons[0].startswith(NOT_UNDERSTOOD) and why in verdict.reasons[0]


def test_customer_severity_agrees_with_a_log_counting_either_way() -> None:
    rules = [{"id": "7", "properties": {"severity": 2, "customerSeverity": 5}}]
    sarif = json.dumps({"runs": [{"tool": {"driver": {"rules": rules}}, "results": [{"ruleId": "7"}]}]}).encode()
    reading = read_reports([("report.sarif.json", sarif)])
    for log in (_log(1, 1, 0, 0, 0, 0), _log(1, 0, 0, 0, 1, 0)):
        assert assess("get-report", _status(), reading, log).status == "completed"
    assert assess("get-report", _status(), reading, _log(1, 0, 1, 0, 0, 0)).status == "failed"


def test_sarif_first_then_the_json_report() -> None:
    both = read_reports([("report.json", JSON_REPORT), ("report.sarif.json", SARIF)])
    assert both.name == "report.sarif.json"
    fallback = read_reports([("report.sarif.json", b'{"runs": 1}'), ("report.json", JSON_REPORT)])
    assert fallback.name == "report.json" and fallback.problems
    verdict = assess("get-report", _status(), fallback, LOG)
    assert verdict.status == "completed" and "used report.json" in verdict.reasons[0]


def test_policy_outcomes_keep_denied_and_audit() -> None:
    reading = read_reports([("report.sarif.json", SARIF)])
    denied = assess("evaluate-policy", _status("deny"), reading, LOG)
    assert denied.status == "denied" and "exit code 42" in denied.reasons[0]
    assert assess("evaluate-policy", _status("audit"), reading, LOG).status == "completed"
    unread = assess("evaluate-policy", _status("deny"), read_reports([]), LOG)
    assert unread.status == "failed" and unread.reasons[0].startswith(NOT_UNDERSTOOD)


def test_scanner_errors_stay_failures_with_the_scanners_words() -> None:
    verdict = assess("get-report", _status("error", error="failed to fetch image"), read_reports([]), None)
    assert verdict.status == "failed" and verdict.reasons == [
        "scanner result error, exit code 6: failed to fetch image"
    ]
    assert assess("get-report", _status("timeout"), read_reports([]), None).status == "timed_out"
    with_report = assess("get-report", _status("error"), read_reports([("report.sarif.json", SARIF)]), None)
    assert with_report.status == "failed" and with_report.summary is not None  # counts shown, as before


@pytest.mark.parametrize(("mode", "expected"), [("scan-only", "uploaded"), ("inventory-only", "inventory")])
def test_modes_without_a_vulnerability_report(mode: QScannerMode, expected: str) -> None:
    verdict = assess(mode, _status(mode=mode), read_reports([]), "no counts at all\n", has_inventory=True)
    assert (verdict.status, verdict.reasons, verdict.summary) == (expected, [], None)
    assert assess(mode, _status("deny"), read_reports([]), None, has_inventory=True).status == "failed"


def test_inventory_only_needs_the_inventory_and_scan_only_does_not() -> None:
    missing = assess("inventory-only", _status(), read_reports([]), None)
    assert missing.status == "failed" and "scanresult.json" in missing.reasons[0]
    assert assess("scan-only", _status(), read_reports([]), None).status == "uploaded"


def test_the_mode_comes_from_the_app_and_a_status_naming_another_is_an_error() -> None:
    verdict = assess("get-report", _status(mode="scan-only"), read_reports([("report.sarif.json", SARIF)]), LOG)
    assert verdict.status == "failed" and "mode scan-only" in verdict.reasons[0]
    assert assess("scan-only", _status(mode="get-report"), read_reports([]), None).status == "failed"
