"""One image's verdict from what its scanner uploaded: never a silent clean (pure; collect does the reading).

- The mode is the app's own (ScanOptions.qscanner_mode, in the collect input); a status.json naming another mode is
  an error.
- `error`/`timeout` from the scanner: `failed`/`timed_out` as before, with the scanner's words; a report that
  happens to be readable still gives its counts (no log check: the image is alerted anyway).
- `get-report`/`evaluate-policy` with `ok`/`deny`/`audit`: the report (SARIF first, else the JSON report) must be
  understood AND agree with the counts QScanner's log states (total and per Qualys severity, per QID); otherwise
  the image is `failed` with a reason starting `report not understood: `. An empty findings list with a log
  saying 0 is a real clean result.
- `scan-only` -> `uploaded`, `inventory-only` -> `inventory` (which needs the inventory, scanresult.json): no
  vulnerability report exists in these modes, so they are neither failures nor findings, and never cached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.json_report import JSON_REPORT_BLOB, parse_json_report
from core.options import QScannerMode
from core.report import (
    QUALYS_LEVELS,
    STATUS_OF_SCANNER_RESULT,
    InvalidUpload,
    ReportSummary,
    ResultStatus,
    ScanStatus,
)
from core.sarif import SARIF_BLOB, parse_sarif
from core.scan_log import LogCounts, read_log_counts

NOT_UNDERSTOOD = "report not understood: "
REPORT_MODES: frozenset[str] = frozenset({"get-report", "evaluate-policy"})
NO_REPORT_OUTCOME: dict[str, ResultStatus] = {"scan-only": "uploaded", "inventory-only": "inventory"}
PARSERS: dict[str, Callable[[bytes], ReportSummary]] = {SARIF_BLOB: parse_sarif, JSON_REPORT_BLOB: parse_json_report}
"""The reports the app reads, in the order it prefers them."""


@dataclass(frozen=True)
class ReportReading:
    """The first report understood (with its blob name), and why each earlier one was not."""

    summary: ReportSummary | None = None
    name: str | None = None
    problems: tuple[str, ...] = ()


def read_reports(uploads: Sequence[tuple[str, bytes | str]]) -> ReportReading:
    """Parse the uploaded reports in PARSERS order; `uploads` holds (blob name, bytes or why it was unreadable)."""
    given = dict(uploads)
    problems: list[str] = []
    for name, parse in PARSERS.items():
        raw = given.get(name)
        if raw is None:
            continue
        if isinstance(raw, str):
            problems.append(raw)
            continue
        try:
            return ReportReading(parse(raw), name, tuple(problems))
        except InvalidUpload as error:
            problems.append(str(error))
    return ReportReading(problems=tuple(problems))


@dataclass(frozen=True)
class Assessment:
    """The image's outcome, why, and the report summary whose counts it shows (None: no counts)."""

    status: ResultStatus
    reasons: list[str] = field(default_factory=list)
    summary: ReportSummary | None = None


def _levels_text(levels: dict[int, int]) -> str:
    return " ".join(f"{k}:{levels.get(k, 0)}" for k in QUALYS_LEVELS)


def _disagreement(summary: ReportSummary, name: str, counts: LogCounts) -> str | None:
    agree = summary.total == counts.total and (
        summary.levels == counts.levels or (summary.base_levels is not None and summary.base_levels == counts.levels)
    )
    if agree:
        return None
    return (
        f"{name} has {summary.total} QIDs (severity {_levels_text(summary.levels)}), "
        f"the log says {counts.total} (severity {_levels_text(counts.levels)})"
    )


def _scanner_words(status: ScanStatus) -> str:
    words = f"scanner result {status.result}, exit code {status.exit_code}"
    detail = status.error or status.detail
    return f"{words}: {detail}" if detail else words


def _checked(reading: ReportReading, log: str | None, log_cut: bool) -> str | None:
    """Why the report cannot be believed (None when it is understood and agrees with the log)."""
    if reading.summary is None or reading.name is None:
        return "; ".join(reading.problems) or f"the scanner uploaded no report ({SARIF_BLOB} or {JSON_REPORT_BLOB})"
    if log is None:
        return "the scanner uploaded no scan.log to check the report's counts against"
    counted = read_log_counts(log)
    if counted.counts is None:
        return f"{counted.problem}{' (scan.log was cut)' if log_cut else ''}"
    return _disagreement(reading.summary, reading.name, counted.counts)


def assess(
    mode: QScannerMode,
    status: ScanStatus,
    reading: ReportReading,
    log: str | None,
    *,
    log_cut: bool = False,
    has_inventory: bool = False,
) -> Assessment:
    """The outcome of one image that has a valid status.json (see the module docstring)."""
    if status.mode is not None and status.mode != mode:
        return Assessment("failed", [f"status.json says mode {status.mode}, the scan was asked for {mode}"])
    if status.result in ("error", "timeout"):
        return Assessment(STATUS_OF_SCANNER_RESULT[status.result], [_scanner_words(status)], reading.summary)
    if mode not in REPORT_MODES:
        if status.result != "ok":
            return Assessment("failed", [f"{_scanner_words(status)}, which mode {mode} cannot give"])
        if mode == "inventory-only" and not has_inventory:
            return Assessment("failed", ["the inventory-only scan uploaded no scanresult.json"])
        return Assessment(NO_REPORT_OUTCOME[mode])
    problem = _checked(reading, log, log_cut)
    if problem is not None:
        reasons = [NOT_UNDERSTOOD + problem]
        if status.result != "ok":
            reasons.append(_scanner_words(status))
        return Assessment("failed", reasons)
    reasons = [f"{p}; used {reading.name}" for p in reading.problems]
    if status.result != "ok":
        reasons.append(_scanner_words(status))
    return Assessment(STATUS_OF_SCANNER_RESULT[status.result], reasons, reading.summary)
