"""`make demo` with scenarios/scope.json: MONITORED_SUBSCRIPTIONS and SCAN_EXCLUDE, and the exports through the API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.exports import sarif_problems
from tests.e2e.demo_support import SAFETY_LIMIT_S, run_scenario
from tests.sbom_validation import cyclonedx_problems, spdx_problems

ROOT = Path(__file__).resolve().parents[2]
SCOPE = ROOT / "scenarios" / "scope.json"
# The own subscription, a listed one (busybox excluded by image:), a workload in a group named like the scanner's.
SCANNED = {
    "docker.io/library/nginx:1.27",
    "ghcr.io/acme/web:2.0",
    "ghcr.io/acme/orders:1.4",
    "ghcr.io/acme/report-builder:1",
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    return run_scenario(SCOPE, tmp_path_factory.mktemp("scope-out"))


def test_only_monitored_and_not_excluded_workloads_are_scanned(run: tuple[dict[str, Any], Path]) -> None:
    summary, out = run
    assert {entry["image"]: entry["status"] for entry in summary["images"]} == dict.fromkeys(SCANNED, "completed")
    assert summary["orchestrations"]["Completed"] == 3 and sum(summary["orchestrations"].values()) == 3
    log = (out / "demo.log").read_text()
    assert "subscription 9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a is not in MONITORED_SUBSCRIPTIONS" in log
    assert (
        "legacy-payments/providers/Microsoft.ContainerInstance/containerGroups/batch: excluded by SCAN_EXCLUDE" in log
    )
    assert "unmonitored=1" in log and "excluded=1" in log
    assert "busybox" not in json.dumps(summary)


def test_exports_are_valid_sarif_and_cyclonedx(run: tuple[dict[str, Any], Path]) -> None:
    _, out = run
    index = json.loads((out / "exports" / "index.json").read_text())
    served = {(row["image"], row["format"]): row for row in index}
    assert {image for image, _ in served} == SCANNED
    for image in SCANNED:
        assert served[image, "sarif"]["status"] == 200 and served[image, "json"]["status"] == 200
        assert served[image, "cyclonedx"]["status"] == 200
        assert served[image, "spdx"]["status"] == 404 and "no stored sbom.spdx.json" in served[image, "spdx"]["error"]
        sarif = json.loads((out / "exports" / served[image, "sarif"]["file"]).read_bytes())
        assert sarif_problems(sarif) == []
        assert cyclonedx_problems((out / "exports" / served[image, "cyclonedx"]["file"]).read_bytes()) == []


def test_sample_scenario_sboms_are_valid_spdx(tmp_path: Path) -> None:
    """The default QSCANNER_SBOM_FORMAT (spdx) through the minimal scenario."""
    command = [sys.executable, "-m", "devhost.demo", "--scenario", str(ROOT / "scenarios" / "minimal.json")]
    completed = subprocess.run(
        [*command, "--out", str(tmp_path), "--timeout", SAFETY_LIMIT_S],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    spdx = sorted((tmp_path / "exports").glob("*.sbom.spdx.json"))
    assert len(spdx) == 2
    for path in spdx:
        assert spdx_problems(path.read_bytes()) == []
