"""The separate checkov virtual environment (.venv-checkov, built by `make setup`) and how the tests call it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.infra.bicep_model import INFRA_DIR, REPO_ROOT

CHECKOV_VENV = REPO_ROOT / ".venv-checkov"
CHECKOV = CHECKOV_VENV / "bin" / "checkov"
CHECKOV_PYTHON = CHECKOV_VENV / "bin" / "python"
CHECKOV_CONFIG = INFRA_DIR / ".checkov.yaml"
CHECKOV_TIMEOUT_SECONDS = 240


def require_checkov() -> None:
    """Fail (never skip) when the checkov environment has not been built."""
    for tool in (CHECKOV, CHECKOV_PYTHON):
        if not tool.is_file():
            raise AssertionError(
                f"{tool} is missing: run `make setup` (it builds .venv-checkov from requirements-checkov.txt)"
            )


def checkov_command(directory: Path, *extra: str) -> list[str]:
    """The offline Bicep scan of `directory` with JSON output, plus `extra` arguments."""
    return [str(CHECKOV), "-d", str(directory), "--framework", "bicep", "--skip-download", "-o", "json", *extra]


def start_checkov(directory: Path, home: Path, *extra: str) -> subprocess.Popen[str]:
    """Start a scan of `directory` from its parent, with `home` as HOME so no personal ~/.checkov.yaml applies.

    checkov also reads `.checkov.yaml` from the scanned directory and the working directory on its own.
    BC_SKIP_MAPPING keeps it from calling its vendor's API.
    """
    require_checkov()
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING", "HOME": str(home)}
    return subprocess.Popen(
        checkov_command(directory, *extra),
        cwd=directory.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_checkov(process: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for a scan and return its Bicep report (checkov exits 1 when a check fails, which is data here)."""
    stdout, stderr = process.communicate(timeout=CHECKOV_TIMEOUT_SECONDS)
    assert process.returncode in (0, 1), f"checkov exited {process.returncode}:\n{stderr[-3000:]}"
    report = json.loads(stdout)
    reports = report if isinstance(report, list) else [report]
    bicep = [r for r in reports if r.get("check_type") == "bicep"]
    assert len(bicep) == 1, f"expected one Bicep report, got {[r.get('check_type') for r in reports]}"
    return dict(bicep[0])


def load_yaml(path: Path) -> Any:
    """Parse a YAML file with PyYAML from the checkov environment (the app's venv has no YAML parser)."""
    require_checkov()
    code = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))"
    completed = subprocess.run(
        [str(CHECKOV_PYTHON), "-c", code, str(path)], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(completed.stdout)
