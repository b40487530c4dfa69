"""A rescan's alert: the diff in the text, the webhook JSON, and Teams and Slack within their limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.alert_cards import TEAMS_BUDGET_BYTES, slack_payload, teams_payload
from core.alerts import Alert, render_json, render_text
from core.report import Finding, ImageResult, Package, ReportSummary, Severity
from core.result_diff import diff_findings
from devhost.demo_chat_receivers import check_slack, check_teams

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _finding(qid: str, fixed: str | None = "1.0.1") -> Finding:
    return Finding(
        qid=qid,
        title=f"finding {qid} " + "x" * 250,
        severity=Severity.HIGH,
        level=4,
        cves=tuple(f"CVE-2026-{n:05d}" for n in range(20)),
        packages=(Package(name="openssl", fixed_version=fixed),),
    )


def _summary(*findings: Finding) -> ReportSummary:
    return ReportSummary(source="sarif", levels={5: 0, 4: len(findings), 3: 0, 2: 0, 1: 0}, worst_findings=findings)


def _alert(images: int) -> Alert:
    before = _summary(*(_finding(str(q), fixed=None) for q in range(5)))
    after = _summary(*(_finding(str(q)) for q in range(3, 10)))
    previous = ImageResult(image="x.io/a:1", status="completed", instance_id="rescan-0", scanned_at=NOW)
    attention = [
        ImageResult.model_validate({"image": f"registry.example.com/team/svc-{i:03d}:1", "status": "completed",
                                    "vulnerabilities": {"HIGH": 7}, "worst_severity": "HIGH"})
        for i in range(images)
    ]  # fmt: skip
    diff = diff_findings(before, after, Severity.HIGH, previous_result=previous, result=attention[0])
    workloads = {r.image: tuple(f"aca app-{j} (rg-{'y' * 60})" for j in range(50)) for r in attention}
    return Alert(
        "rescan-1", None, Severity.HIGH, attention, [], workloads,
        findings={r.image: diff.new for r in attention}, diffs={r.image: diff for r in attention}, rescan=True,
    )  # fmt: skip


def test_the_text_and_json_carry_the_diff() -> None:
    alert = _alert(1)
    text = render_text(alert)
    assert alert.title == "[QScanner] rescan: findings changed in 1 running image(s)"
    assert "change:   5 new, 2 changed, 3 resolved, 2 still open since scan rescan-0" in text
    assert "changed:  3 HIGH finding 3" in text and "(fix available)" in text
    assert text.count("    workload: ") == 50
    document = json.loads(render_json(alert, NOW))
    assert document["rescan"] is True
    [image] = document["images"]
    assert [f["qid"] for f in image["diff"]["resolved"]] == ["0", "1", "2"]
    assert [f["qid"] for f in image["new_findings"]] == ["5", "6", "7", "8", "9"]


@pytest.mark.parametrize("images", [1, 20, 200])
def test_teams_and_slack_keep_their_limits(images: int) -> None:
    teams = teams_payload(_alert(images), None)
    assert len(teams) <= TEAMS_BUDGET_BYTES
    check_teams(teams)
    card = json.loads(teams)["attachments"][0]["content"]
    facts = card["body"][2]["items"][1]["facts"]
    assert any(f["title"] == "Change" and f["value"].startswith("5 new, 2 changed") for f in facts)
    check_slack(slack_payload(_alert(images), None))
