"""`python -m devhost.demo` with scenarios/rescan.json: scans that finish at one moment alert the same findings once
(issue 12 item 4, under concurrency).

web-frontend and shop-api deploy ghcr.io/acme/shop-web:2.4.1 together and their scans finish at the same virtual
moment: one alert for QIDs 100001 and 100002, the other scan's image suppressed as the same findings. At 90000 s the
rescan timer's rescan of shop-web and web-frontend's redeploy share one scan (the second result, QID 100003 new): one
alert for it, the other suppressed. The demo's engine runs alerts one at a time in the order they were scheduled
(docs/demo.md, "Determinism"), so the winner is the same on every run: shop-api's scan, then the rescan.
"""

from __future__ import annotations

import email
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.demo_support import ROOT, run_scenario

SCENARIO = ROOT / "scenarios" / "rescan.json"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    return run_scenario(SCENARIO, tmp_path_factory.mktemp("rescan-race-out"))


def _bodies(out: Path) -> list[str]:
    return [
        email.message_from_bytes(mail.read_bytes()).get_payload(decode=True).decode()  # type: ignore[union-attr]
        for mail in sorted((out / "mail").glob("*.eml"))
    ]


def test_scans_finishing_together_alert_the_same_findings_once(run: tuple[dict[str, Any], Path]) -> None:
    summary, out = run
    assert summary["notifications"] == {
        "email": 2,  # the first result's findings, then QID 100003's
        "webhook": 2,
        "teams": 0,
        "slack": 0,
        "suppressed_findings": 2,  # the losing scan of each pair
        "digests": 0,
    }
    assert summary["orchestrations"]["Completed"] == 5 and summary["scans_started"] == 4
    first, second = _bodies(out)
    assert "new:      100001" in first and "new:      100002" in first and "100003" not in first
    assert "workload: aca shop-api (demo-apps)" in first and "web-frontend" not in first  # the winner, alone
    assert "100003" in second
    # the rescan and the redeploy share one scan: the rescan claims first and alerts, the redeploy is suppressed
    assert "A scheduled rescan found changed findings" in second
    assert "workload: aca shop-api (demo-apps)" in second and "workload: aci web-frontend (demo-apps)" in second
    assert "change:   1 new, 0 changed, 0 resolved, 2 still open" in second
    assert summary["rescans"] == {"started": 2, "alerts": 1}
    hooks = sorted((out / "webhooks").glob("*.json"))
    assert len(hooks) == 2
    qids = [
        {int(f["qid"]) for image in json.loads(hook.read_text())["images"] for f in image.get("new_findings", [])}
        for hook in hooks
    ]
    assert {100001, 100002} <= qids[0] and 100003 not in qids[0] and 100003 in qids[1]
