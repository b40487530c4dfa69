"""Collect against real Azurite with the upload contract's blobs (docs/scanner.md): reports, inventory, SBOM, modes,
the digest from the scan, and what the cache then answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import UpdateMode

from activities import results_collect
from activities.results_collect import collect_results
from activities.results_store import lookup_cache, store_results
from core.naming import image_key
from core.options import QScannerMode
from core.report import ImageResult, needs_notification
from core.results import CacheLookupRequest, CollectRequest, ImageToCheck, StoreRequest
from devhost.azurite import Azurite
from tests.integration.test_results_store_support import azurite_settings, clients, scanner_uploads, upload

pytestmark = pytest.mark.azurite

FILES = Path(__file__).parent.parent / "qscanner_files"
NOW = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
DEBIAN = "docker.io/library/debian:12"
SCANNED = "sha256:" + "4" * 64  # debian-ScanResult.json's RepoDigests entry for docker.io/library/debian
RESOLVED = "sha256:" + "5" * 64
SBOM = {"spdxVersion": "SPDX-2.3", "name": "debian"}
CONTRACT = {
    "report.sarif.json": (FILES / "debian.sarif.json").read_bytes(),
    "report.json": (FILES / "debian-Report.json").read_bytes(),
    "scanresult.json": (FILES / "debian-ScanResult.json").read_bytes(),
    "sbom.spdx.json": json.dumps(SBOM).encode(),
    "scan.log": (FILES / "debian.log").read_bytes(),
}


def _status(mode: str = "get-report", result: str = "ok", **extra: Any) -> dict[str, Any]:
    return {
        "image": DEBIAN,
        "index": 0,
        "exit_code": {"ok": 0, "deny": 42}[result],
        "result": result,
        "started_at": "2026-10-02T08:55:00Z",
        "finished_at": "2026-10-02T08:58:00Z",
        "digest": "",
        "mode": mode,
        **extra,
    }


def _collect(
    azurite: Azurite, instance: str, blobs: dict[str, bytes], status: dict[str, Any], **request: Any
) -> tuple[ImageResult, Any]:
    settings = azurite_settings(azurite)
    scanner = scanner_uploads(settings, instance)
    for name, body in blobs.items():
        upload(scanner, f"{instance}/0/{name}", body)
    upload(scanner, f"{instance}/0/status.json", {**status, "files": sorted(blobs)})
    collect = CollectRequest(instance_id=instance, images=[ImageToCheck(image=DEBIAN, **request)], now=NOW)
    mode = status.get("mode")
    if mode:
        collect = collect.model_copy(update={"mode": mode})
    (result,) = collect_results(clients(settings), settings, collect)
    return result, settings


def _store_and_lookup(settings: Any, result: ImageResult, digest: str | None) -> bool:
    store = StoreRequest(instance_id=result.instance_id or "x", status="completed", finished_at=NOW, results=[result])
    store_results(clients(settings), settings, store)
    lookup = CacheLookupRequest(images=[ImageToCheck(image=DEBIAN, digest=digest)], cache_hours=24, now=NOW)
    return lookup_cache(clients(settings), settings, lookup)[0].hit


def test_every_contract_file_is_read_checked_and_kept(azurite: Azurite) -> None:
    result, settings = _collect(azurite, "scan-contract", CONTRACT, _status(), digest=SCANNED)

    assert (result.status, result.digest, result.resolved_digest, result.reason) == ("completed", SCANNED, None, None)
    assert result.vulnerabilities.model_dump() == {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 0}
    folder = f"{image_key(DEBIAN, SCANNED)}/scan-contract"
    assert result.report is not None and result.report.endswith(f"/{folder}/report.sarif.json")
    reports = clients(settings).container(settings.results_container)
    for name, body in CONTRACT.items():
        assert reports.download_blob(f"{folder}/{name}").readall() == body
    summary = json.loads(reports.download_blob(f"{folder}/summary.json").readall())
    assert summary["mode"] == "get-report" and summary["summary"]["source"] == "sarif"
    assert set(summary["files"]) == set(CONTRACT)
    assert _store_and_lookup(settings, result, SCANNED)


def test_the_scans_digest_keys_the_result_and_the_resolved_one_still_finds_it(azurite: Azurite) -> None:
    result, settings = _collect(azurite, "scan-digests", CONTRACT, _status(), digest=RESOLVED)

    assert (result.digest, result.resolved_digest) == (SCANNED, RESOLVED)
    assert result.reason is not None and "not the " + RESOLVED in result.reason
    assert result.report is not None and f"/{image_key(DEBIAN, SCANNED)}/" in result.report
    assert _store_and_lookup(settings, result, RESOLVED)
    lookup = CacheLookupRequest(images=[ImageToCheck(image=DEBIAN, digest=SCANNED)], cache_hours=24, now=NOW)
    assert lookup_cache(clients(settings), settings, lookup)[0].hit


def test_without_an_inventory_the_resolved_digest_keys_it_never_the_image_id(azurite: Azurite) -> None:
    blobs = {name: body for name, body in CONTRACT.items() if name != "scanresult.json"}
    result, _ = _collect(azurite, "scan-noinv", blobs, _status(), digest=RESOLVED)
    assert (result.status, result.digest, result.resolved_digest) == ("completed", RESOLVED, None)
    unresolved, _ = _collect(azurite, "scan-noinv2", blobs, _status())
    assert unresolved.digest is None  # the canonical reference keys it; the SARIF imageID is the config digest


def test_a_report_the_log_contradicts_fails_alerts_and_is_not_cached(azurite: Azurite) -> None:
    log = (
        CONTRACT["scan.log"]
        .replace(b"3 vulnerabilities found!", b"4 vulnerabilities found!")
        .replace(b"Severity 5: 0", b"Severity 5: 1")
    )
    result, settings = _collect(azurite, "scan-contradicted", {**CONTRACT, "scan.log": log}, _status())

    assert result.status == "failed" and result.reason is not None
    assert result.reason.startswith("report not understood: report.sarif.json has 3 QIDs")
    assert result.vulnerabilities.total == 0 and needs_notification(result, "CRITICAL")
    assert result.report is not None  # kept for diagnosis
    assert not _store_and_lookup(settings, result, SCANNED)


def test_the_json_report_serves_when_there_is_no_sarif(azurite: Azurite) -> None:
    blobs = {name: body for name, body in CONTRACT.items() if name != "report.sarif.json"}
    result, _ = _collect(azurite, "scan-json", blobs, _status())
    assert result.status == "completed" and result.vulnerabilities.MEDIUM == 2
    assert result.report is not None and result.report.endswith("/report.json")


def test_policy_deny_keeps_denied(azurite: Azurite) -> None:
    result, _ = _collect(azurite, "scan-deny", CONTRACT, _status("evaluate-policy", "deny"))
    assert (result.status, result.exit_code) == ("denied", 42)


@pytest.mark.parametrize(("mode", "expected"), [("scan-only", "uploaded"), ("inventory-only", "inventory")])
def test_modes_without_a_report_have_their_own_status(azurite: Azurite, mode: QScannerMode, expected: str) -> None:
    blobs = {"scanresult.json": CONTRACT["scanresult.json"], "scan.log": b"no counts in this mode\n"}
    result, settings = _collect(azurite, f"scan-{expected}", blobs, _status(mode))

    assert (result.status, result.digest, result.reason) == (expected, SCANNED, None)
    assert result.report is not None and result.report.endswith("/scanresult.json")
    assert not needs_notification(result, "LOW")
    assert not _store_and_lookup(settings, result, SCANNED)  # not cached: no vulnerability verdict


def test_the_mode_is_the_apps_not_the_uploads(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    scanner = scanner_uploads(settings, "scan-mode")
    upload(scanner, "scan-mode/0/scanresult.json", CONTRACT["scanresult.json"])
    upload(scanner, "scan-mode/0/status.json", _status("scan-only"))
    request = CollectRequest(instance_id="scan-mode", images=[ImageToCheck(image=DEBIAN)], now=NOW)  # get-report
    (result,) = collect_results(clients(settings), settings, request)
    assert result.status == "failed" and result.reason is not None and "mode scan-only" in result.reason


def test_an_oversize_sbom_is_not_kept_and_says_so(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(results_collect.KEPT_BLOBS, "sbom.spdx.json", 10)
    result, settings = _collect(azurite, "scan-bigsbom", CONTRACT, _status())
    assert result.status == "completed"
    assert result.reason is not None and "sbom.spdx.json is oversize" in result.reason
    reports = clients(settings).container(settings.results_container)
    folder = f"{image_key(DEBIAN, SCANNED)}/scan-bigsbom"
    assert not reports.get_blob_client(f"{folder}/sbom.spdx.json").exists()


def test_cache_rows_from_before_reports_were_checked_are_misses(azurite: Azurite) -> None:
    result, settings = _collect(azurite, "scan-oldrow", CONTRACT, _status())
    assert _store_and_lookup(settings, result, SCANNED)
    cache = clients(settings).table(settings.cache_table)
    for row in list(cache.list_entities()):
        del row["checked"]
        cache.upsert_entity(row, mode=UpdateMode.REPLACE)
    lookup = CacheLookupRequest(images=[ImageToCheck(image=DEBIAN, digest=SCANNED)], cache_hours=24, now=NOW)
    assert not lookup_cache(clients(settings), settings, lookup)[0].hit
