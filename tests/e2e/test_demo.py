"""`make demo` end to end: the sample scenario through `python -m devhost.demo`, checked through summary.json."""

from __future__ import annotations

import email
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "scenarios" / "sample.json"
WALL_CLOCK_BUDGET_S = 60.0
SAFETY_LIMIT_S = "120"
EXPECTED_STATUS = {
    "docker.io/library/nginx:1.27": "completed",  # shared by web-frontend and orders-api
    "ghcr.io/acme/shop-web:2.4.1": "completed",
    "docker.io/library/busybox:1.36": "completed",  # an init container
    "acme.azurecr.io/orders-api:3.1.0": "completed",  # a container app
    "acme.azurecr.io/etl-runner:1.0.0": "timed_out",  # a job whose scan hangs
    "acme.azurecr.io/payments:5.2.0": "failed",  # the scanner exits 9
    "docker.io/acme/legacy-admin:0.9": "denied",  # exit 42
    "docker.io/library/httpd:2.4": "completed",  # scanned, then redeployed: the redeploy is a cache hit
    "acme.azurecr.io/reports:1.4.0": "completed",  # legacy-reports: backfilled; its 30 h old result is rescanned
    "acme.azurecr.io/report-builder:0.3.1": "completed",  # report-builder: backfilled, then vanished
}
CACHED = {"docker.io/library/redis:7.4": "cached"}  # seeded in the cache: never scanned in this run
EVENT_DEPLOYMENTS = 8  # web-frontend, orders-api, nightly-etl, payments, legacy-admin, session-cache, status-page x2
SWEEP_SCANS = 1  # report-builder's image (never scanned); legacy-reports' image has a result: the rescan's
RESCANS = 1  # reports:1.4.0, last scanned 30 h before the run (a cache seed), rescanned after the first sweep
DEPLOYMENTS = EVENT_DEPLOYMENTS + SWEEP_SCANS + RESCANS
INVENTORY = {  # at the end: payments was deleted, report-builder vanished, the scanner's own group never counts
    "web-frontend",
    "orders-api",
    "nightly-etl",
    "legacy-admin",
    "session-cache",
    "status-page",
    "legacy-reports",
}
SCANNER_GROUPS = 8 + SWEEP_SCANS + RESCANS  # the scan queue: a short queue against 20 groups gets one image per group
ALERTING_DEPLOYMENTS = 4  # web-frontend (HIGH), nightly-etl (timed out), payments (failed), legacy-admin (CRITICAL)
RESCAN_ALERTS = 1  # reports:1.4.0: its rescan finds a new HIGH CVE (1 new since the cache seed)
ALERTS = ALERTING_DEPLOYMENTS + RESCAN_ALERTS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path, float]:
    out = tmp_path_factory.mktemp("demo-out")
    started = time.monotonic()
    command = [sys.executable, "-m", "devhost.demo", "--scenario", str(SAMPLE), "--out", str(out)]
    completed = subprocess.run(
        [*command, "--timeout", SAFETY_LIMIT_S],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=float(SAFETY_LIMIT_S) + 30,
        check=False,
    )
    return completed, out, time.monotonic() - started


@pytest.fixture(scope="module")
def summary(demo_run: tuple[subprocess.CompletedProcess[str], Path, float]) -> dict[str, Any]:
    completed, out, _ = demo_run
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    document: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return document


def test_the_run_is_fast_on_the_virtual_clock(demo_run: tuple[subprocess.CompletedProcess[str], Path, float]) -> None:
    assert demo_run[0].returncode == 0
    assert demo_run[2] < WALL_CLOCK_BUDGET_S


def test_summary_has_exactly_the_documented_shape(summary: dict[str, Any]) -> None:
    assert set(summary) == {
        "orchestrations",
        "images",
        "scans_started",
        "scanner_groups",
        "arm_requests",
        "notifications",
        "scheduling",
        "sweeps",
        "rescans",
    }
    assert summary["sweeps"] == {"runs": 2, "added": 2, "removed": 1}
    assert summary["rescans"] == {"started": RESCANS, "alerts": RESCAN_ALERTS}
    assert set(summary["scheduling"]) == {
        "makespan_s",
        "lower_bound_s",
        "wasted_wait_s",
        "peak_groups",
        "peak_cores",
        "max_creates_per_5min",
        "max_creates_per_hour",
        "images_per_group",
        "history_events",
        "arm_requests_per_group",
    }
    assert set(summary["scheduling"]["wasted_wait_s"]) == {"median", "p95", "max"}
    assert set(summary["scheduling"]["history_events"]) == {"mean", "max"}
    assert set(summary["scheduling"]["arm_requests_per_group"]) == {"mean", "max"}
    assert set(summary["orchestrations"]) == {"Completed", "Failed", "Running", "Terminated"}
    assert set(summary["scanner_groups"]) == {"created", "remaining"}
    assert set(summary["notifications"]) == {"email", "webhook", "teams", "slack", "suppressed_findings", "digests"}
    for entry in summary["images"]:
        assert set(entry) == {"image", "status", "vulnerabilities", "report"}
        assert set(entry["vulnerabilities"]) == {"CRITICAL", "HIGH", "MEDIUM", "LOW"}


def test_each_image_has_the_outcome_the_scenario_implies(summary: dict[str, Any]) -> None:
    assert {entry["image"]: entry["status"] for entry in summary["images"]} == EXPECTED_STATUS | CACHED


def test_counts_and_reports_come_from_the_stored_results(
    summary: dict[str, Any], demo_run: tuple[subprocess.CompletedProcess[str], Path, float]
) -> None:
    by_image = {entry["image"]: entry for entry in summary["images"]}
    shop_web = by_image["ghcr.io/acme/shop-web:2.4.1"]["vulnerabilities"]
    assert shop_web == {"CRITICAL": 0, "HIGH": 2, "MEDIUM": 4, "LOW": 7}
    legacy_admin = by_image["docker.io/acme/legacy-admin:0.9"]["vulnerabilities"]
    assert legacy_admin == {"CRITICAL": 1, "HIGH": 3, "MEDIUM": 0, "LOW": 5}
    assert by_image["docker.io/library/httpd:2.4"]["vulnerabilities"]["LOW"] == 2
    assert by_image["docker.io/library/redis:7.4"]["vulnerabilities"] == {
        "CRITICAL": 0,
        "HIGH": 0,
        "MEDIUM": 1,
        "LOW": 4,
    }
    for image, entry in by_image.items():
        has_report = entry["status"] in ("completed", "denied", "cached")
        assert entry["report"].endswith(("/report.sarif.json", "/report.json")) == has_report, image
        if has_report:
            assert entry["report"].startswith("http://127.0.0.1:")
    saved = {path.name for path in (demo_run[1] / "reports").glob("*.json")}
    assert "ghcr.io_acme_shop-web_2.4.1.json" in saved
    assert len(saved) == sum(1 for entry in summary["images"] if entry["report"])


def test_duplicates_do_not_start_extra_orchestrations(summary: dict[str, Any]) -> None:
    assert summary["orchestrations"] == {"Completed": DEPLOYMENTS, "Failed": 0, "Running": 0, "Terminated": 0}


def test_a_shared_image_is_scanned_once_and_every_scanner_group_is_deleted(summary: dict[str, Any]) -> None:
    # Every distinct image is handed to a scanner exactly once: nginx is shared by two deployments of one wave,
    # httpd is scanned in the first wave and its redeploy is a cache hit.
    assert summary["scans_started"] == len(EXPECTED_STATUS)
    assert summary["scanner_groups"] == {"created": SCANNER_GROUPS, "remaining": 0}
    assert summary["arm_requests"] > 0


def test_notifications_are_counted_and_written(
    summary: dict[str, Any], demo_run: tuple[subprocess.CompletedProcess[str], Path, float]
) -> None:
    out = demo_run[1]
    assert summary["notifications"] == {
        "email": ALERTS,
        "webhook": ALERTS,
        "teams": 0,
        "slack": 0,
        "suppressed_findings": 0,
        "digests": 0,
    }
    mails = sorted((out / "mail").glob("*.eml"))
    hooks = sorted((out / "webhooks").glob("*.json"))
    assert len(mails) == len(hooks) == ALERTS
    subjects = [str(email.message_from_bytes(path.read_bytes())["Subject"]) for path in mails]
    assert all(subject.startswith("[QScanner]") for subject in subjects)
    assert all(json.loads(path.read_text())["event"] == "scan.alert" for path in hooks)


def test_the_output_is_readable_and_keeps_secrets_out(
    demo_run: tuple[subprocess.CompletedProcess[str], Path, float],
) -> None:
    completed, out, _ = demo_run
    assert "IMAGE" in completed.stdout and "STATUS" in completed.stdout
    assert "11 images (" in completed.stdout
    assert str(out / "summary.json") in completed.stdout
    logs = (out / "demo.log").read_text() + completed.stdout + completed.stderr
    assert "FAKE-demo-token-not-a-qualys-credential" not in logs
    assert "FAKE-demo-smtp-password" not in logs


def test_the_safety_limit_ends_the_run_with_a_clear_error(tmp_path: Path) -> None:
    minimal = ROOT / "scenarios" / "minimal.json"
    command = [sys.executable, "-m", "devhost.demo", "--scenario", str(minimal), "--out", str(tmp_path)]
    completed = subprocess.run(
        [*command, "--timeout", "0.1"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 3
    assert "wall-clock safety limit of 0 s reached" in completed.stderr


def test_inventory_json_is_every_page_of_the_inventory_api(
    demo_run: tuple[subprocess.CompletedProcess[str], Path, float],
) -> None:
    document = json.loads((demo_run[1] / "inventory.json").read_text())
    assert document["count"] == len(document["items"])
    by_name = {item["name"]: item for item in document["items"]}
    assert set(by_name) == INVENTORY
    web = by_name["web-frontend"]
    assert [(i["image"], i["init"]) for i in web["images"]] == [
        ("docker.io/library/nginx:1.27", False),
        ("ghcr.io/acme/shop-web:2.4.1", False),
        ("docker.io/library/busybox:1.36", True),
    ]
    assert web["worstSeverity"] == "HIGH" and web["eventTime"] == "2026-10-02T08:00:40+00:00"
    backfilled = by_name["legacy-reports"]
    assert backfilled["location"] == "northeurope" and backfilled["eventTime"] is None
    assert backfilled["images"][0]["latestResult"]["status"] == "completed"
    assert by_name["nightly-etl"]["images"][0]["latestResult"]["status"] == "timed_out"


def test_metrics_json_counts_what_the_run_did(
    summary: dict[str, Any], demo_run: tuple[subprocess.CompletedProcess[str], Path, float]
) -> None:
    """OUT/metrics.json (issue 12 item 6): the in-memory reader's view of the same run, low-cardinality labels only."""
    document = json.loads((demo_run[1] / "metrics.json").read_text())
    assert document["meter"] == "qscan" and document["temporality"] == "cumulative"
    metrics = {name: metric["points"] for name, metric in document["metrics"].items()}
    for name, points in metrics.items():
        for point in points:
            assert all(len(value) <= 16 and "/" not in value for value in point["attributes"].values()), name

    def value(name: str, **attributes: str) -> Any:
        found = [p for p in metrics[name] if p["attributes"] == attributes]
        return (found[0].get("value", found[0].get("count")) if found else 0) or 0

    assert (
        value("qscan.scans", outcome="completed", kind="deployment")
        + value("qscan.scans", outcome="failed", kind="deployment")
        + value("qscan.scans", outcome="partial", kind="deployment")
        == EVENT_DEPLOYMENTS
    )
    assert value("qscan.scans", outcome="completed", kind="image") == SWEEP_SCANS
    assert sum(p["count"] for p in metrics["qscan.scan.duration"]) == DEPLOYMENTS
    statuses = list(EXPECTED_STATUS.values())
    assert {p["attributes"]["status"]: p["value"] for p in metrics["qscan.images"]} == {
        status: statuses.count(status) for status in set(statuses)
    }
    scanned = [entry for entry in summary["images"] if entry["status"] != "cached"]
    for severity in ("CRITICAL", "HIGH", "MEDIUM", "LOW"):
        expected = sum(entry["vulnerabilities"][severity] for entry in scanned)
        assert value("qscan.findings", severity=severity) == expected, severity
    assert value("qscan.cache.lookups", result="hit") == 2  # redis seeded, httpd redeployed
    assert value("qscan.scanner.groups") == SCANNER_GROUPS
    assert value("qscan.scanner.cores") == 0  # every group deleted
    assert value("qscan.scanner.group_seconds") > 0
    assert sum(p["count"] for p in metrics["qscan.queue.wait"]) == len(EXPECTED_STATUS)
    assert value("qscan.queue.depth") == 0
    for channel in ("email", "webhook"):
        assert value("qscan.alerts", channel=channel, mode="scan", outcome="sent") == summary["notifications"][channel]
    assert value("qscan.sweeps", trigger="api") == summary["sweeps"]["runs"]
    assert value("qscan.sweep.scans", trigger="api") == SWEEP_SCANS
