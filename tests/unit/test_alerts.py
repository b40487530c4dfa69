"""Alert messages: fingerprints, the timestamped signature, Teams and Slack within their limits, the settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.alert_cards import SLACK_MAX_BLOCKS, TEAMS_BUDGET_BYTES, slack_payload, teams_payload
from core.alerts import Alert, failure_fingerprint, findings_fingerprint, signature, verify_signature
from core.report import Finding, ImageResult, Package, ReportSummary, Severity
from core.settings import SettingsError, load_settings
from devhost.demo_chat_receivers import Refused, check_slack, check_teams

BASE_ENV = {
    "QUALYS_POD": "US2",
    "QUALYS_ACCESS_TOKEN": "token",
    "AZURE_SUBSCRIPTION_ID": "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a",
    "SCANNER_RESOURCE_GROUP": "rg-scanners",
    "SCANNER_LOCATION": "westeurope",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def _result(image: str, status: str = "completed", reason: str | None = None) -> ImageResult:
    return ImageResult.model_validate(
        {"image": image, "status": status, "vulnerabilities": {"HIGH": 2}, "reason": reason}
    )


def _summary(*findings: Finding) -> ReportSummary:
    levels = {1: 0, 2: 0, 3: 0, 4: len(findings), 5: 0}
    return ReportSummary(source="sarif", levels=levels, worst_findings=findings)


def _finding(qid: str, fixed: str | None = None, severity: Severity = Severity.HIGH) -> Finding:
    return Finding(
        qid=qid,
        title=f"finding {qid}",
        severity=severity,
        level=4,
        packages=(Package(name="openssl", fixed_version=fixed),),
    )


def test_fingerprint_changes_with_qids_and_fix_availability_only() -> None:
    one = findings_fingerprint(_summary(_finding("1"), _finding("2")), Severity.HIGH)
    assert one == findings_fingerprint(_summary(_finding("2"), _finding("1")), Severity.HIGH)  # order-free
    assert one != findings_fingerprint(_summary(_finding("1"), _finding("3")), Severity.HIGH)
    assert one != findings_fingerprint(_summary(_finding("1", fixed="3.0.1"), _finding("2")), Severity.HIGH)


def test_failure_fingerprint_is_per_reason() -> None:
    a = failure_fingerprint(_result("x.io/a:1", "failed", "exit 9"))
    assert a == failure_fingerprint(_result("x.io/a:1", "failed", "exit 9"))
    assert a != failure_fingerprint(_result("x.io/a:1", "failed", "exit 2"))
    assert a != failure_fingerprint(_result("x.io/a:1", "timed_out", "exit 9"))


def test_signature_covers_the_timestamp_and_rejects_replays() -> None:
    body = b'{"event":"scan.alert"}'
    header = signature("s3cret", body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature("s3cret", body, header, now=1_700_000_100)
    assert not verify_signature("s3cret", body, header, now=1_700_000_000 + 301)  # outside the tolerance: replay
    assert not verify_signature("s3cret", body + b" ", header, now=1_700_000_000)
    assert not verify_signature("other", body, header, now=1_700_000_000)
    forged = header.replace("t=1700000000", "t=1700000200")  # a new timestamp on an old signature
    assert not verify_signature("s3cret", body, forged, now=1_700_000_200)


def _big_alert(images: int, digest: bool = True) -> Alert:
    attention = [_result(f"registry.example.com/team/service-{i:03d}:1.{i}") for i in range(images)]
    workloads = {
        r.image: tuple(f"containerApp app-{i}-{j} (rg-{'x' * 60})" for j in range(8)) for i, r in enumerate(attention)
    }
    findings = {r.image: tuple(_finding(str(q)) for q in range(10)) for r in attention}
    scans = tuple(f"scan-{i}" for i in range(images)) if digest else ()
    return Alert("digest-1", None, Severity.HIGH, attention, [], workloads, findings, scans)


@pytest.mark.parametrize("images", [1, 30, 200])
def test_teams_card_fits_28_kb_and_says_what_was_left_out(images: int) -> None:
    body = teams_payload(_big_alert(images), "https://scanner.example.com")
    assert len(body) <= TEAMS_BUDGET_BYTES
    check_teams(body)  # the receiver's strict checks
    card = json.loads(body)["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    shown = sum(1 for item in card["body"] if item["type"] == "Container")
    if shown < images:
        assert f"{images - shown} more image(s) not shown" in card["body"][-1]["text"]
        assert card["actions"][0]["url"].startswith("https://scanner.example.com/api/images?ref=registry.example.com")


@pytest.mark.parametrize("images", [1, 46, 47, 200])
def test_slack_message_keeps_to_50_blocks_and_3000_characters(images: int) -> None:
    body = slack_payload(_big_alert(images, digest=False), None)
    check_slack(body)
    blocks = json.loads(body)["blocks"]
    assert len(blocks) <= SLACK_MAX_BLOCKS
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
    if images > 46:
        assert "more image(s) not shown" in blocks[-1]["elements"][0]["text"]
        assert "GET /api/scans/digest-1" in blocks[-1]["elements"][0]["text"]


def test_receivers_refuse_what_the_services_refuse() -> None:
    with pytest.raises(Refused) as too_big:
        check_teams(b"{" + b" " * 28_001 + b"}")
    assert too_big.value.status == 413
    with pytest.raises(Refused):
        check_teams(json.dumps({"type": "message", "attachments": [{"contentType": "x", "content": {}}]}).encode())
    with pytest.raises(Refused, match="invalid_blocks"):
        check_slack(json.dumps({"blocks": [{"type": "divider"}] * 51}).encode())
    with pytest.raises(Refused, match="invalid_blocks"):
        check_slack(
            json.dumps({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]}).encode()
        )


def test_plaintext_smtp_only_to_a_loopback_relay_when_allowed() -> None:
    plain = {**BASE_ENV, "SMTP_HOST": "smtp.example.com", "SMTP_STARTTLS": "false"}
    with pytest.raises(SettingsError, match="SMTP_STARTTLS: plain-text SMTP is refused"):
        load_settings(plain)
    with pytest.raises(SettingsError, match="SMTP_ALLOW_PLAINTEXT: allows plain-text SMTP only to a loopback"):
        load_settings({**plain, "SMTP_ALLOW_PLAINTEXT": "true"})
    assert load_settings({**plain, "SMTP_HOST": "127.0.0.1", "SMTP_ALLOW_PLAINTEXT": "true"}).smtp_allow_plaintext
    assert load_settings({**plain, "SMTP_PORT": "465"}).smtp_port == 465  # implicit TLS


def test_chat_urls_are_https_secrets_and_digest_windows_divide_the_day() -> None:
    with pytest.raises(SettingsError, match="NOTIFY_TEAMS_URL: must use https"):
        load_settings({**BASE_ENV, "NOTIFY_TEAMS_URL": "http://teams.example.com/hook"})
    settings = load_settings({**BASE_ENV, "NOTIFY_SLACK_URL": "https://hooks.slack.com/services/T/B/slack-canary-9f1"})
    assert "slack-canary-9f1" not in repr(settings)
    with pytest.raises(SettingsError, match="ALERT_DIGEST_MINUTES"):
        load_settings({**BASE_ENV, "ALERT_DIGEST_MINUTES": "7"})
    assert load_settings({**BASE_ENV, "ALERT_DIGEST_MINUTES": "120"}).alert_digest_minutes == 120


def test_the_documented_receiver_snippet_verifies_the_signature() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "results.md").read_text(encoding="utf-8")
    section = doc.split("### Verifying the webhook signature", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/results.md", "exec"), namespace)  # noqa: S102 - our own documentation's snippet
    body = b'{"event":"scan.digest"}'
    header = signature("k", body, 1_700_000_000)
    assert namespace["verify"](b"k", body, header, now=1_700_000_010)
    assert not namespace["verify"](b"k", body, header, now=1_700_000_000 + 301)
    assert not namespace["verify"](b"k", body + b"x", header, now=1_700_000_010)
