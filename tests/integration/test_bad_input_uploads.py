"""Hostile scanner uploads against real Azurite: every bad upload is one failed image with a reason, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from activities.results_collect import MAX_LOG_BYTES, collect_results
from activities.results_store import collect_results_activity
from core.report import MAX_REASON_CHARS, MAX_REPORT_BYTES, MAX_STATUS_BYTES
from core.results import CollectRequest, ImageToCheck
from core.settings import get_settings
from devhost.azurite import Azurite
from tests.integration.test_results_store_support import (
    azurite_env,
    azurite_settings,
    clients,
    scanner_uploads,
    upload,
)

pytestmark = pytest.mark.azurite
NOW = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
IMAGE = "docker.io/library/app:1"
GOOD_REPORT = {"version": "2.1.0", "runs": [{"results": [{"ruleId": "1", "properties": {"severity": 4}}]}]}
GOOD_LOG = (
    b"INFO 1 vulnerabilities found!\nINFO Severity 5: 0\nINFO Severity 4: 1\nINFO Severity 3: 0\n"
    b"INFO Severity 2: 0\nINFO Severity 1: 0\n"
)
CONTROL_CHARS = {chr(c) for c in range(32)} | {"\x7f"}


def _status(image: str = IMAGE, index: object = 0, **extra: Any) -> dict[str, Any]:
    return {"image": image, "index": index, "exit_code": 0, "result": "ok", **extra}


# Each case: the blobs of image 0 (name under `{instance}/0/` -> body), the expected status, a reason fragment.
HOSTILE_UPLOADS: dict[str, tuple[dict[str, Any], str, str]] = {
    "empty status.json": ({"status.json": b""}, "failed", "invalid status.json"),
    "empty report.json": ({"status.json": _status(), "report.json": b""}, "failed", "report.json is not JSON"),
    "status.json is a JSON array": ({"status.json": b"[]"}, "failed", "invalid status.json"),
    "status.json nested 5000 deep": ({"status.json": b"[" * 5000 + b"]" * 5000}, "failed", "invalid status.json"),
    "status.json with a BOM": ({"status.json": b"\xef\xbb\xbf" + json.dumps(_status()).encode()}, "failed", "JSON"),
    "status.json in UTF-16": ({"status.json": json.dumps(_status()).encode("utf-16")}, "failed", "JSON"),
    "status.json NUL bytes": ({"status.json": b"\x00" * 100}, "failed", "invalid status.json"),
    "index given as a string": ({"status.json": _status(index="0")}, "failed", "index"),
    "index given as a boolean": ({"status.json": _status(index=False)}, "failed", "index"),
    "exit code beyond 32 bits": ({"status.json": _status(exit_code=10**30)}, "failed", "exit_code"),
    "unknown result word": ({"status.json": _status(result="pwned")}, "failed", "result"),
    "image with a newline": ({"status.json": _status(image=IMAGE + "\nx")}, "failed", "image"),
    "claims another image": ({"status.json": _status(image="docker.io/library/other:1")}, "failed", "expected 0"),
    "claims another index": ({"status.json": _status(index=3)}, "failed", "expected 0"),
    "digest with a path": ({"status.json": _status(digest="sha256:../../../etc/passwd")}, "failed", "digest"),
    "oversize status.json": ({"status.json": b" " * (MAX_STATUS_BYTES + 1)}, "failed", "oversize"),
    "report nested 100000 deep": (
        {"status.json": _status(), "report.json": b'{"a":' * 100_000 + b"1" + b"}" * 100_000},
        "failed",
        "report.json is not JSON",
    ),
    "report is a JSON string": ({"status.json": _status(), "report.json": b'"x"'}, "failed", "not a JSON object"),
    "only a scan.log, no status": ({"scan.log": b"hello\n"}, "failed", "no status.json"),
    "SARIF nested 100000 deep": (
        {"status.json": _status(), "report.sarif.json": b'{"a":' * 100_000 + b"1" + b"}" * 100_000},
        "failed",
        "report not understood: report.sarif.json is not JSON",
    ),
    "SARIF that is not SARIF": (
        {"status.json": _status(), "report.sarif.json": {"runs": [{"results": {"x": 1}}]}, "scan.log": GOOD_LOG},
        "failed",
        "report not understood: report.sarif.json is not SARIF",
    ),
    "status.json lists files never uploaded": (
        {"status.json": _status(files=["report.sarif.json"]), "scan.log": GOOD_LOG},
        "failed",
        "lists report.sarif.json, which was not uploaded",
    ),
    "status.json names another mode": ({"status.json": _status(mode="scan-only")}, "failed", "mode scan-only"),
    "status.json lists a path": ({"status.json": _status(files=["../../x"])}, "failed", "files"),
    "blobs below status.json": ({"status.json/x": b"{}", "status.json.bak": b"{}"}, "failed", "no status.json"),
}


@pytest.mark.parametrize("case", list(HOSTILE_UPLOADS))
def test_a_hostile_upload_fails_its_image_with_a_reason_and_spares_the_others(azurite: Azurite, case: str) -> None:
    """Image 0 gets the hostile upload, image 1 a good one: 0 fails with a clear reason, 1 is still completed."""
    blobs, expected_status, reason_part = HOSTILE_UPLOADS[case]
    settings = azurite_settings(azurite)
    instance = "scan-hostile"
    scanner = scanner_uploads(settings, instance)
    for name, body in blobs.items():
        upload(scanner, f"{instance}/0/{name}", body)
    good = "docker.io/library/good:1"
    upload(scanner, f"{instance}/1/report.sarif.json", GOOD_REPORT)
    upload(scanner, f"{instance}/1/scan.log", GOOD_LOG)
    upload(scanner, f"{instance}/1/status.json", _status(good, 1))
    request = CollectRequest(
        instance_id=instance, images=[ImageToCheck(image=IMAGE), ImageToCheck(image=good)], now=NOW
    )

    hostile, spared = collect_results(clients(settings), settings, request)

    assert hostile.status == expected_status
    assert hostile.reason is not None and reason_part in hostile.reason
    assert len(hostile.reason) <= MAX_REASON_CHARS and not CONTROL_CHARS & set(hostile.reason)
    assert (spared.status, spared.vulnerabilities.HIGH) == ("completed", 1)


def test_an_empty_scan_log_is_kept_but_cannot_vouch_for_the_report(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    instance = "scan-empty-log"
    scanner = scanner_uploads(settings, instance)
    upload(scanner, f"{instance}/0/status.json", _status())
    upload(scanner, f"{instance}/0/report.sarif.json", GOOD_REPORT)
    upload(scanner, f"{instance}/0/scan.log", b"")
    request = CollectRequest(instance_id=instance, images=[ImageToCheck(image=IMAGE)], now=NOW)

    (result,) = collect_results(clients(settings), settings, request)

    assert result.status == "failed" and result.log is not None
    assert result.reason == "report not understood: the log states no vulnerability counts ('N vulnerabilities found!')"


def test_a_scanner_time_in_the_future_is_not_believed(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    instance = "scan-future"
    scanner = scanner_uploads(settings, instance)
    upload(scanner, f"{instance}/0/status.json", _status(finished_at="9999-12-31T23:59:59Z"))
    upload(scanner, f"{instance}/0/report.sarif.json", GOOD_REPORT)
    upload(scanner, f"{instance}/0/scan.log", GOOD_LOG)
    request = CollectRequest(instance_id=instance, images=[ImageToCheck(image=IMAGE)], now=NOW)

    (result,) = collect_results(clients(settings), settings, request)

    assert result.scanned_at == NOW  # a future time would pin the result in the cache


@pytest.mark.slow
def test_oversize_report_and_log_are_bounded(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    instance = "scan-oversize"
    scanner = scanner_uploads(settings, instance)
    upload(scanner, f"{instance}/0/status.json", _status())
    upload(scanner, f"{instance}/0/report.json", b" " * (MAX_REPORT_BYTES + 1))
    upload(scanner, f"{instance}/0/scan.log", b"x" * (MAX_LOG_BYTES + 10) + b"\nLAST LINE\n")
    request = CollectRequest(instance_id=instance, images=[ImageToCheck(image=IMAGE)], now=NOW)

    (result,) = collect_results(clients(settings), settings, request)

    assert result.status == "failed" and "report.json is oversize" in (result.reason or "")
    assert "scan.log cut" in (result.reason or "")
    reports = clients(settings).container(settings.results_container)
    assert result.log is not None
    copied = reports.download_blob(result.log.rsplit(f"/{settings.results_container}/", 1)[1]).readall()
    assert len(copied) == MAX_LOG_BYTES and copied.endswith(b"LAST LINE\n")


def test_unexpected_blob_names_are_never_read(azurite: Azurite) -> None:
    """The app reads only `{prefix}/{i}/<fixed name>`: look-alike names next to them are ignored, never listed."""
    settings = azurite_settings(azurite)
    instance = "scan-lookalike"
    scanner = scanner_uploads(settings, instance)
    lookalikes = ("0/STATUS.JSON", "00/status.json", "0/status.json.tmp", "0/status.json/", "0 /status.json")
    for name in lookalikes:
        upload(scanner, f"{instance}/{name}", _status(result="ok"))
    upload(scanner, f"{instance}-other/0/status.json", _status(result="ok"))
    request = CollectRequest(instance_id=instance, images=[ImageToCheck(image=IMAGE)], now=NOW)

    (result,) = collect_results(clients(settings), settings, request)

    assert result.status == "failed" and "no status.json" in (result.reason or "")


def test_another_groups_forged_uploads_are_never_read(azurite: Azurite) -> None:
    """A subverted scanner can write a victim's blob names only into its own container: no forged clean result.

    The victim's group uploaded nothing, so its image stays without a status (timed out).
    """
    settings = azurite_settings(azurite)
    victim = "scan-victim"
    attacker = scanner_uploads(settings, "scan-attacker")
    upload(attacker, f"{victim}/0/status.json", _status())
    upload(attacker, f"{victim}/0/report.sarif.json", {"version": "2.1.0", "runs": [{"results": []}]})
    scanner_uploads(settings, victim)  # the victim's group and its (empty) container exist
    request = CollectRequest(
        instance_id=victim, images=[ImageToCheck(image=IMAGE)], missing_status="timed_out", now=NOW
    )

    (result,) = collect_results(clients(settings), settings, request)

    assert result.status == "timed_out" and "no status.json" in (result.reason or "")


@pytest.mark.parametrize(
    "payload",
    [
        {"instance_id": "../etc", "images": [{"image": IMAGE}]},
        {"instance_id": "scan-x", "scanner_group": "../scan-reports", "images": [{"image": IMAGE}]},
        {"instance_id": "scan-x", "scanner_group": "qscan-A/b", "images": [{"image": IMAGE}]},
        {"instance_id": "scan-x", "prefix": "a/../../b", "images": [{"image": IMAGE}]},
        {"instance_id": "scan-x", "images": [{"image": "nginx\n--help"}]},
        {"instance_id": "scan-x", "images": [{"image": IMAGE, "digest": "sha256:../../x"}]},
        {"instance_id": "scan-x", "images": [{"image": IMAGE}], "unexpected": 1},
    ],
)
def test_collect_activity_refuses_payloads_that_would_steer_blob_names(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, payload: dict[str, Any]
) -> None:
    for name, value in azurite_env(azurite).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="validation error"):
            collect_results_activity(payload)
    finally:
        get_settings.cache_clear()
