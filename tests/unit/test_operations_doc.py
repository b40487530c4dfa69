"""The log lines docs/operations.md quotes are the formats the app's code actually logs."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"
APP_PACKAGES = ("starters", "orchestrators", "activities", "entities", "core")
ORCHESTRATION_PREFIX = "<instance>: "  # ScanRun.log adds "%s: " with the instance id
PLACEHOLDER = re.compile(r"<[a-z ]+>")


def _quoted_log_lines() -> list[str]:
    """Backticked formats in the "Line" column of the log-line table."""
    lines: list[str] = []
    for row in OPERATIONS_DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) == 2 and "%" in cells[1]:
            lines += [q for q in re.findall(r"`([^`]+)`", cells[1]) if "%" in q or ORCHESTRATION_PREFIX in q]
    return lines


def _code_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for pkg in APP_PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py"))


def test_the_log_table_is_found():
    assert len(_quoted_log_lines()) >= 15


def test_every_quoted_log_line_is_a_format_in_the_code():
    code = _code_text()
    missing = []
    for line in _quoted_log_lines():
        fmt = PLACEHOLDER.sub("%s", line.removeprefix(ORCHESTRATION_PREFIX))
        if fmt not in code:
            missing.append(line)
    assert missing == [], f"docs/operations.md quotes log lines the code does not write: {missing}"
