"""The Function App package: the app and scanner script ship; dev/test code neither ships nor is imported."""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_PACKAGES = ("starters", "orchestrators", "activities", "entities", "core")


def _ignore_patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(relative: str) -> bool:
    """Whether `relative` is left out: a file pattern matches the path, a `dir/` pattern any of its folders."""
    parts = relative.split("/")
    folders = ["/".join(parts[: i + 1]) + "/" for i in range(len(parts) - 1)]
    for pattern in _ignore_patterns():
        candidates = folders if pattern.endswith("/") else [relative]
        if any(fnmatch.fnmatch(candidate, pattern) for candidate in candidates):
            return True
    return False


def test_the_package_keeps_what_the_app_needs() -> None:
    needed = ["function_app.py", "host.json", "requirements.txt", "scanner/scan.sh"]
    needed += [f"{package}/__init__.py" for package in APP_PACKAGES]
    assert [path for path in needed if _ignored(path)] == []


def test_the_package_leaves_out_dev_and_test_code() -> None:
    for path in ("devhost/engine.py", "tests/conftest.py", "node_modules/x", ".venv/bin/python", "benchmarks/x.py"):
        assert _ignored(path), path


def test_the_app_never_imports_devhost_or_tests() -> None:
    offenders = []
    files = [ROOT / "function_app.py"] + [p for pkg in APP_PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}: {name}" for name in names if name.split(".")[0] in ("devhost", "tests")
            ]
    assert offenders == []


def test_core_has_no_azure_imports() -> None:
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "azure"]
    assert offenders == []
