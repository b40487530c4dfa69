"""The vulnerability counts QScanner's own log states, read independently of any report file.

In `get-report` (and `evaluate-policy`) mode QScanner logs, after `Vulnerability report received` (README v4.8.0
sample output):

    2025-03-28T08:20:47.475+0530    INFO    3 vulnerabilities found!
    2025-03-28T08:20:47.475+0530    INFO      Severity 5: 0
    ... one line per Qualys severity, 5 down to 1

A count line is matched with at most four leading tokens (date, time, level, a tag) and nothing after it; ANSI
colour codes are removed first. The five `Severity K: n` lines must follow the total line directly, in order 5..1,
and add up to the total; `0 vulnerabilities found!` alone also stands for all zeros. The last complete block in the
log wins (a retried fetch logs again). A total line without its severity lines is reported as a problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.report import QUALYS_LEVELS

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PREFIX = r"^\s*(?:\S+\s+){0,4}?"
_TOTAL = re.compile(_PREFIX + r"(\d{1,9}) vulnerabilit(?:y|ies) found!\s*$")
_SEVERITY = re.compile(_PREFIX + r"Severity ([1-5]):\s*(\d{1,9})\s*$")
MAX_LOG_LINES = 200_000


@dataclass(frozen=True)
class LogCounts:
    """What the log says: the total number of QIDs and the number per Qualys severity (5..1)."""

    total: int
    levels: dict[int, int]


@dataclass(frozen=True)
class LogReading:
    """The last complete count block (None when there is none) and, when none, what was wrong."""

    counts: LogCounts | None
    problem: str | None = None


def _block_at(lines: list[str], start: int, total: int) -> LogCounts | None:
    levels: dict[int, int] = {}
    following = [line for line in lines[start + 1 : start + 1 + len(QUALYS_LEVELS)]]
    for expected, line in zip(QUALYS_LEVELS, following, strict=False):
        match = _SEVERITY.match(line)
        if match is None or int(match.group(1)) != expected:
            break
        levels[expected] = int(match.group(2))
    if len(levels) == len(QUALYS_LEVELS) and sum(levels.values()) == total:
        return LogCounts(total, levels)
    if total == 0 and not levels:
        return LogCounts(0, dict.fromkeys(QUALYS_LEVELS, 0))
    return None


def read_log_counts(log: str) -> LogReading:
    """The counts of the last complete block in `log`, or why there are none."""
    lines = [_ANSI.sub("", line) for line in log.splitlines()[-MAX_LOG_LINES:]]
    last: LogCounts | None = None
    broken = 0
    for index, line in enumerate(lines):
        match = _TOTAL.match(line)
        if match is None:
            continue
        block = _block_at(lines, index, int(match.group(1)))
        if block is None:
            broken += 1
        else:
            last = block
    if last is not None:
        return LogReading(last)
    if broken:
        return LogReading(None, "the log's 'N vulnerabilities found!' lacks 'Severity 5..1' lines adding up to N")
    return LogReading(None, "the log states no vulnerability counts ('N vulnerabilities found!')")
