"""The demo harness's parts without the whole run: scenario parsing, outcomes and summary, the receivers."""

from __future__ import annotations

import email
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from activities.notifications import Alert, send_email
from core.report import ImageResult, Severity
from core.settings import load_settings
from devhost.demo import EXIT_BAD_INPUT, run_demo
from devhost.demo_receivers import SMTP_PASSWORD, SMTP_USERNAME, SmtpReceiver, WebhookReceiver
from devhost.demo_report import RunRecord, build_summary, image_outcomes, render_table, summary_line
from devhost.demo_run import OperationTracker
from devhost.demo_scenario import ScenarioError, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
NGINX = "docker.io/library/nginx:1.27"
SUBSCRIPTION = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"


def _result(image: str, status: str, instance: str, **extra: Any) -> ImageResult:
    return ImageResult.model_validate({"image": image, "status": status, "instance_id": instance, **extra})


def _record(instance: str, minutes: int, *results: ImageResult) -> RunRecord:
    finished = T0 + timedelta(minutes=minutes)
    return RunRecord(instance, "Completed", finished, 0, "completed", "x", list(results), "test")


# --- scenario ---------------------------------------------------------------------------------------------------


def test_messages_are_bodies_or_envelopes_and_strings_are_sent_as_they_are() -> None:
    scenario = parse_scenario(
        {
            "messages": [
                {"records": []},
                [{"eventType": "x"}],
                "not json {",
                {"after_s": 60, "note": "later", "body": {"records": []}},
                {"body": "raw", "id": "an event with a body field is a message"},
            ]
        }
    )
    bodies = [(d.body, d.after_s, d.note) for d in scenario.deliveries]
    assert bodies == [
        ('{"records":[]}', None, None),
        ('[{"eventType":"x"}]', None, None),
        ("not json {", None, None),
        ('{"records":[]}', 60.0, "later"),
        ('{"body":"raw","id":"an event with a body field is a message"}', None, None),
    ]


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"unknown": 1},
        {"messages": [{"body": {}, "after_s": -1}]},
        {"cache": [{"image": "nginx", "status": "failed"}]},
        {"scans": {"nginx": {"result": "maybe"}}},
    ],
)
def test_invalid_scenarios_are_refused_with_a_reason(document: object) -> None:
    with pytest.raises(ScenarioError):
        parse_scenario(document)


GROUP_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/apps/providers/Microsoft.ContainerInstance/containerGroups/web"
)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"resources": [{"id": "web", "images": ["nginx"]}]}, "not the exact id of a target resource"),
        ({"resources": [{"id": GROUP_ID}, {"id": GROUP_ID.upper()}]}, "listed twice"),
        ({"scans": {"not a ref!": {}}}, "scans key 'not a ref!' is not an image reference"),
        ({"scans": {"nginx:1.27": {}, NGINX: {"result": "deny"}}}, f"the same image {NGINX}"),
        ({"scans": {"default": {"vulnerabilities": {"SEVERE": 1}}}}, "unknown severity 'SEVERE'"),
        ({"scans": {"default": {"vulnerabilities": {"HIGH": -1}}}}, "negative count"),
        ({"cache": [{"image": "Not A Ref"}]}, "contains whitespace"),
    ],
)
def test_scenario_mistakes_that_would_be_silently_ignored_are_refused(document: object, reason: str) -> None:
    """A typo in an id, a scans key or a severity would otherwise just never match (or crash the seeding)."""
    with pytest.raises(ScenarioError, match=reason):
        parse_scenario(document)


def test_settings_numbers_and_booleans_are_their_text_and_severities_any_case() -> None:
    scenario = parse_scenario(
        {
            "settings": {"SCAN_TIMEOUT": 600, "RESOLVE_DIGESTS": False, "ARMSIM_PROVISIONING_DELAY_S": 2.5},
            "scans": {"default": {"vulnerabilities": {"critical": 1, "High": 2}}},
        }
    )
    assert scenario.sim.app_settings() == {"SCAN_TIMEOUT": "600", "RESOLVE_DIGESTS": "false"}
    assert scenario.sim.sim_settings().provisioning_delay_s == 2.5
    assert scenario.sim.scans["default"].vulnerabilities == {"CRITICAL": 1, "HIGH": 2}


def test_bundled_scenarios_are_valid() -> None:
    for path in sorted((ROOT / "scenarios").glob("*.json")):
        scenario = parse_scenario(json.loads(path.read_text()), str(path), path.parent)
        assert scenario.deliveries and scenario.description, path


def test_an_unreadable_scenario_is_exit_code_2(tmp_path: Path) -> None:
    assert run_demo(tmp_path / "missing.json", tmp_path / "out") == EXIT_BAD_INPUT
    bad = tmp_path / "bad.json"
    bad.write_text('{"settings": {"QUALYS_POD": "MARS"}, "messages": [')
    assert run_demo(bad, tmp_path / "out") == EXIT_BAD_INPUT


# --- redeploys -------------------------------------------------------------------------------------------------


def _grid_event(name: str, correlation: str) -> str:
    resource = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/demo-apps/providers/Microsoft.App/containerApps/{name}"
    data = {"operationName": "Microsoft.App/containerApps/write", "status": "Succeeded", "resourceUri": resource}
    event = {
        "id": correlation,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-10-02T08:00:00Z",
        "subject": resource,
        "data": {**data, "correlationId": correlation},
    }
    return json.dumps(event)


def test_a_new_operation_on_a_resource_of_an_earlier_message_is_a_redeploy() -> None:
    tracker = OperationTracker("rg-qscanner")
    assert tracker.redeploys(_grid_event("shop", "op-1")) == []
    assert tracker.redeploys(_grid_event("shop", "op-1")) == []  # a duplicate delivery is not a redeploy
    assert tracker.redeploys(_grid_event("orders", "op-2")) == []
    assert tracker.redeploys(_grid_event("shop", "op-3")) == ["shop"]
    assert tracker.redeploys("not json {") == []


# --- outcomes and summary ---------------------------------------------------------------------------------------


def test_an_image_shows_its_scan_in_this_run_and_cached_only_when_never_scanned() -> None:
    first = _record(
        "scan-a", 5, _result(NGINX, "completed", "scan-a"), _result("docker.io/library/x:1", "failed", "scan-a")
    )
    shared = _record("scan-b", 6, _result(NGINX, "completed", "scan-a"))
    redeploy = _record(
        "scan-c", 40, _result(NGINX, "cached", "scan-a"), _result("docker.io/library/seeded:1", "cached", "scan-0")
    )
    outcomes = image_outcomes([first, shared, redeploy])
    assert {image: r.status for image, r in outcomes.items()} == {
        NGINX: "completed",  # scanned in this run; the redeploy's cache hit does not hide that scan
        "docker.io/library/x:1": "failed",
        "docker.io/library/seeded:1": "cached",  # only the cache held it
    }


def test_summary_shape_table_and_line() -> None:
    report = "http://127.0.0.1:1/devstoreaccount1/scan-reports/k/scan-a/report.json"
    outcomes = image_outcomes(
        [_record("scan-a", 1, _result(NGINX, "denied", "scan-a", vulnerabilities={"CRITICAL": 2}, report=report))]
    )
    summary = build_summary(
        [{"runtimeStatus": "Completed"}, {"runtimeStatus": "Pending"}],
        outcomes=outcomes,
        sim_stats={"total": 12, "groups": {"created": 1, "deleted": 1, "remaining": 0}, "scans": {"images_started": 1}},
        emails=1,
        webhooks=0,
    )
    assert summary == {
        "orchestrations": {"Completed": 1, "Failed": 0, "Running": 1, "Terminated": 0},
        "images": [
            {
                "image": NGINX,
                "status": "denied",
                "vulnerabilities": {"CRITICAL": 2, "HIGH": 0, "MEDIUM": 0, "LOW": 0},
                "report": report,
            }
        ],
        "scans_started": 1,
        "scanner_groups": {"created": 1, "remaining": 0},
        "arm_requests": 12,
        "notifications": {"email": 1, "webhook": 0, "teams": 0, "slack": 0, "suppressed_findings": 0, "digests": 0},
    }
    table = render_table(summary).splitlines()
    assert table[0].split() == ["IMAGE", "STATUS", "CRIT", "HIGH", "MED", "LOW", "REPORT"]
    assert table[1].split() == [NGINX, "denied", "2", "0", "0", "0", report]
    assert summary_line(summary).startswith("1 images (1 denied); 2 orchestrations (1 Completed, 1 Running)")


# --- receivers --------------------------------------------------------------------------------------------------


def test_the_app_mails_the_smtp_receiver_over_trusted_starttls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smtp = SmtpReceiver(tmp_path / "mail", tmp_path).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(smtp.ca_bundle))  # what the demo sets for the app's process
        settings = load_settings(
            {
                "QUALYS_POD": "US2",
                "QUALYS_ACCESS_TOKEN": "fake",
                "AZURE_SUBSCRIPTION_ID": "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a",
                "SCANNER_RESOURCE_GROUP": "rg-qscanner",
                "SCANNER_LOCATION": "westeurope",
                "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                "NOTIFICATION_EMAIL": "team@example.com",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "SMTP_FROM": "demo@example.com",
                "SMTP_USERNAME": SMTP_USERNAME,
                "SMTP_PASSWORD": SMTP_PASSWORD,
            }
        )
        failed = _result(NGINX, "failed", "scan-a")
        send_email(settings, Alert("scan-a", None, Severity(settings.notify_severity_threshold), [failed], []))
    finally:
        smtp.stop()
    assert smtp.count == 1 and smtp.logins_refused == 0
    saved = email.message_from_bytes((tmp_path / "mail" / "001.eml").read_bytes())
    assert saved["To"] == "team@example.com" and str(saved["Subject"]).startswith("[QScanner]")


def test_the_webhook_receiver_saves_json_posts_only_on_its_path(tmp_path: Path) -> None:
    receiver = WebhookReceiver(tmp_path / "hooks").start()
    try:
        request = urllib.request.Request(receiver.url, data=b'{"event":"scan.alert"}', method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 204
        wrong = urllib.request.Request(receiver.url + "x", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(wrong, timeout=5)
        assert refused.value.code == 404
    finally:
        receiver.stop()
    assert receiver.count == 1
    assert json.loads((tmp_path / "hooks" / "001.json").read_text()) == {"event": "scan.alert"}
