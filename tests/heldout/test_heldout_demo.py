"""Held-out verbatim QScanner outputs (tests/heldout/demo/files, written by the issue-9 checker) through the demo.

Real shapes (README-shaped SARIF with one QID over two packages, a JSON report with customerSeverity, an empty
but valid clean report; log lines with timestamps, brackets or ANSI colour) give their counts and are cached on the
redeploy; shapes no source describes end `failed` with "report not understood: ...", are alerted and scanned again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.naming import image_key

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).parent / "demo" / "heldout.json"
UNDERSTOOD = {
    "acme.azurecr.io/heldout-readme:1": {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 0},
    "acme.azurecr.io/heldout-customer:1": {"CRITICAL": 1, "HIGH": 0, "MEDIUM": 0, "LOW": 1},
    "acme.azurecr.io/heldout-clean:1": {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0},
}
NOT_UNDERSTOOD = [
    "noresults",
    "disagree",
    "nocount",
    "nolog",
    "truncated",
    "unknownsev",
    "othershape",
]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_verbatim_outputs_through_the_demo(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "devhost.demo", "--scenario", str(SCENARIO), "--out", str(out)]
    completed = subprocess.run(
        [*command, "--timeout", "90"], cwd=ROOT, capture_output=True, text=True, timeout=110, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    by_image = {item["image"]: item for item in summary["images"]}
    for image, counts in UNDERSTOOD.items():
        assert by_image[image]["vulnerabilities"] == counts, image
    readme = by_image["acme.azurecr.io/heldout-readme:1"]["report"]
    # Keyed by the RepoDigests entry of the inventory, never by the config id the files are named after.
    assert f"/{image_key('acme.azurecr.io/heldout-readme:1', 'sha256:' + '4' * 64)}/" in readme
    first, redeploy = json.loads((out / "orchestrations.json").read_text())
    for run, cached in ((first, "completed"), (redeploy, "cached")):
        statuses = {item["image"]: item for item in run["images"]}
        for image in UNDERSTOOD:
            assert statuses[image]["status"] == cached, (image, statuses[image])
        for name in NOT_UNDERSTOOD:
            item = statuses[f"acme.azurecr.io/heldout-{name}:1"]
            assert item["status"] == "failed", item
            assert item["reason"].startswith("report not understood: "), item
    mails = sorted((out / "mail").glob("*.eml"))
    assert len(mails) == 2
    for mail in mails:
        body = mail.read_text()
        assert all(f"heldout-{name}" in body for name in NOT_UNDERSTOOD)
