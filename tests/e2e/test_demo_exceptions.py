"""`make demo` with scenarios/exceptions.json: an exception that matches suppresses the alert, one scoped elsewhere
misses, one that expires during the run alerts once at the expiry timer's next run (no rescan), and the redeploy
after it sends nothing new."""

from __future__ import annotations

import email
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.demo_support import ROOT, run_scenario

SCENARIO = ROOT / "scenarios" / "exceptions.json"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    return run_scenario(SCENARIO, tmp_path_factory.mktemp("exceptions-out"))


def _subjects_and_bodies(out: Path) -> list[tuple[str, str]]:
    found = []
    for path in sorted((out / "mail").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        found.append((str(message["Subject"]), message.get_payload(decode=True).decode()))  # type: ignore[union-attr]
    return found


def test_match_miss_and_expiry(run: tuple[dict[str, Any], Path]) -> None:
    summary, out = run
    assert summary["notifications"] == {
        "email": 2,  # redis (ex-miss is scoped elsewhere), httpd once ex-expiring expired
        "webhook": 2,
        "teams": 0,
        "slack": 0,
        "suppressed_findings": 3,  # 2 findings by exceptions + httpd's redeploy as a duplicate
        "digests": 0,
    }
    assert summary["exceptions"] == {
        "loaded": 3,
        "expiry_runs": 1,
        "suppressed_findings": 2,
        "suppressed_duplicates": 1,
        "applied": {"docker.io/library/httpd:2.4": ["ex-expiring"], "docker.io/library/nginx:1.27": ["ex-match"]},
    }
    mails = _subjects_and_bodies(out)
    assert [subject for subject, _ in mails] == [
        "[QScanner] 1 image(s) need attention in aci app-1",
        "[QScanner] 1 image(s) need attention in aci app-2",
    ]
    assert "docker.io/library/redis:7.4" in mails[0][1] and "docker.io/library/httpd:2.4" in mails[1][1]
    assert all("nginx" not in body.split("Other images")[0] for _, body in mails)
    statuses = {image["image"]: image["status"] for image in summary["images"]}
    assert set(statuses.values()) == {"completed"}  # stored results are intact: exceptions apply when evaluated
