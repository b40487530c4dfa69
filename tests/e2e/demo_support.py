"""Running the demo on a scenario as `make demo` does (`python -m devhost.demo` in its own process), for e2e tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAFETY_LIMIT_S = "120"
"""The demo's own `--timeout`: a stuck run fails with its output instead of hanging the suite."""


def run_scenario(scenario: Path, out: Path) -> tuple[dict[str, Any], Path]:
    """Run the demo on `scenario` into `out`; its summary.json and `out`. A failed run fails the test with the tail
    of its output."""
    command = [sys.executable, "-m", "devhost.demo", "--scenario", str(scenario), "--out", str(out)]
    completed = subprocess.run(
        [*command, "--timeout", SAFETY_LIMIT_S], cwd=ROOT, capture_output=True, text=True, timeout=150, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    return json.loads((out / "summary.json").read_text()), out
