"""The house rules that a reader can check by machine: module docstrings and file sizes."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def _python_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).exists()]


def test_every_module_starts_with_a_docstring() -> None:
    missing = [str(p.relative_to(ROOT)) for p in _python_files() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def test_every_python_file_stays_under_the_size_limit() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in _python_files()}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}
