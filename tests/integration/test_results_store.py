"""Collect, store and cache lookups against real Azurite: garbage uploads, idempotent stores, injected time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from activities import results_store
from activities.results_collect import collect_results
from activities.results_store import get_latest_result, get_scan_record, lookup_cache, store_results
from activities.storage_clients import list_uploads_containers
from core.naming import image_key, scanner_group_name
from core.report import ImageResult
from core.results import CacheLookupRequest, CollectRequest, ImageToCheck, StoreRequest
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
DIGEST = "sha256:" + "1" * 64
OTHER_DIGEST = "sha256:" + "2" * 64
NGINX = "docker.io/library/nginx:1.27"
REDIS = "docker.io/library/redis:7"
REPORT = {
    "version": "2.1.0",
    "runs": [
        {
            "tool": {
                "driver": {
                    "rules": [
                        {
                            "id": "1",
                            "shortDescription": {"text": "Heartbleed"},
                            "properties": {"severity": 5, "cve-ids": ["CVE-2014-0160"]},
                        },
                        {"id": "2", "shortDescription": {"text": "Meh"}, "properties": {"severity": 2}},
                    ]
                }
            },
            "results": [
                {"ruleId": "1", "properties": {"vulnerableSoftware": [{"name": "openssl"}]}},
                {"ruleId": "2"},
            ],
        }
    ],
}
LOG = (
    b"INFO    2 vulnerabilities found!\nINFO      Severity 5: 1\nINFO      Severity 4: 0\n"
    b"INFO      Severity 3: 0\nINFO      Severity 2: 1\nINFO      Severity 1: 0\n"
)
INVENTORY = {"Metadata": {"TargetMetadata": {"ImageMetadata": {"RepoDigests": [f"docker.io/library/app0@{DIGEST}"]}}}}


def _status(image: str, index: int, result: str = "ok", exit_code: int = 0, **extra: object) -> dict[str, object]:
    return {
        "image": image,
        "index": index,
        "exit_code": exit_code,
        "result": result,
        "started_at": "2026-10-02T08:55:00Z",
        "finished_at": "2026-10-02T08:58:00Z",
        **extra,
    }


def test_collect_reads_good_missing_and_garbage_uploads(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    instance = "scan-collect"
    images = [f"docker.io/library/app{i}:1" for i in range(7)]
    scanner = scanner_uploads(settings, instance)
    upload(scanner, f"{instance}/0/report.sarif.json", REPORT)
    upload(scanner, f"{instance}/0/scanresult.json", INVENTORY)
    upload(scanner, f"{instance}/0/scan.log", b"scanning app0\n" + LOG)
    upload(scanner, f"{instance}/0/status.json", _status(images[0], 0, digest=""))
    upload(scanner, f"{instance}/1/report.sarif.json", REPORT)
    upload(scanner, f"{instance}/1/scan.log", LOG)
    upload(scanner, f"{instance}/1/status.json", _status(images[1], 1, "deny", 42))
    # 2: nothing uploaded at all
    upload(scanner, f"{instance}/3/status.json", b"\x00garbage{")
    upload(scanner, f"{instance}/3/scan.log", b"it crashed\n")
    upload(scanner, f"{instance}/4/status.json", _status(images[4], 4))
    upload(scanner, f"{instance}/4/report.sarif.json", b"not json at all")
    upload(scanner, f"{instance}/5/status.json", _status(images[0], 0))  # claims to be another image
    upload(scanner, f"{instance}/6/status.json", {"pad": "x" * 20_000})  # oversize
    request = CollectRequest(
        instance_id=instance,
        images=[ImageToCheck(image=image) for image in images],
        missing_status="timed_out",
        reason="scanner group timed out after 1800 s",
        now=NOW,
    )

    results = collect_results(clients(settings), settings, request)

    by_index = dict(enumerate(results))
    first = by_index[0]
    assert (first.status, first.digest, first.worst_severity) == ("completed", DIGEST, "CRITICAL")
    assert first.vulnerabilities.model_dump() == {"CRITICAL": 1, "HIGH": 0, "MEDIUM": 0, "LOW": 1}
    assert first.scanned_at == datetime(2026, 10, 2, 8, 58, tzinfo=UTC)
    assert first.report is not None
    assert first.report.endswith(f"/{image_key(images[0], DIGEST)}/{instance}/report.sarif.json")
    assert (by_index[1].status, by_index[1].exit_code) == ("denied", 42)
    assert by_index[2].status == "timed_out"
    assert by_index[2].reason is not None
    assert "timed out after 1800 s" in by_index[2].reason
    assert by_index[3].status == "failed"
    assert by_index[3].log is not None  # the log of a broken scan is kept for diagnosis
    assert by_index[4].status == "failed"
    assert (by_index[4].reason or "").startswith("report not understood: report.sarif.json is not JSON")
    assert by_index[5].status == "failed"
    assert "expected 5" in (by_index[5].reason or "")
    assert (by_index[6].status, "oversize" in (by_index[6].reason or "")) == ("failed", True)

    reports = clients(settings).container(settings.results_container)
    folder = f"{image_key(images[0], DIGEST)}/{instance}"
    assert json.loads(reports.download_blob(f"{folder}/report.sarif.json").readall()) == REPORT
    assert json.loads(reports.download_blob(f"{folder}/scanresult.json").readall()) == INVENTORY
    assert reports.download_blob(f"{folder}/scan.log").readall() == b"scanning app0\n" + LOG
    summary = json.loads(reports.download_blob(f"{folder}/summary.json").readall())
    assert summary["summary"]["worst_findings"][0]["cves"] == ["CVE-2014-0160"]
    assert summary["summary"]["worst_findings"][0]["packages"] == [
        {"name": "openssl", "installed_version": None, "fixed_version": None}
    ]
    assert len(json.dumps([r.model_dump(mode="json") for r in results])) < 7 * 2000  # history stays small

    again = collect_results(clients(settings), settings, request)
    assert again == results


def test_collect_distrusts_future_scanner_times_and_missing_reports(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    scanner = scanner_uploads(settings, "scan-future")
    upload(scanner, "scan-future/0/report.sarif.json", REPORT)
    upload(scanner, "scan-future/0/scan.log", LOG)
    upload(scanner, "scan-future/0/status.json", _status(NGINX, 0, finished_at="2099-01-01T00:00:00Z"))
    upload(scanner, "scan-future/1/status.json", _status(REDIS, 1))
    request = CollectRequest(
        instance_id="scan-future", images=[ImageToCheck(image=NGINX), ImageToCheck(image=REDIS)], now=NOW
    )
    nginx, redis = collect_results(clients(settings), settings, request)
    assert nginx.scanned_at == NOW
    assert (redis.status, redis.reason) == (
        "failed",
        "report not understood: the scanner uploaded no report (report.sarif.json or report.json)",
    )
    old_input = request.model_copy(update={"expect_report": False})  # accepted from older inputs, ignored
    assert collect_results(clients(settings), settings, old_input)[1].status == "failed"


def _result(image: str, status: str, scanned_at: datetime, digest: str | None = DIGEST, **extra: object) -> ImageResult:
    return ImageResult.model_validate(
        {
            "image": image,
            "digest": digest,
            "status": status,
            "vulnerabilities": {"HIGH": 2},
            "worst_severity": "HIGH",
            "report": f"https://example.invalid/{image}/report.json",
            "scanned_at": scanned_at,
            "instance_id": "scan-one",
            **extra,
        }
    )


def _store(instance: str, *results: ImageResult) -> StoreRequest:
    return StoreRequest(
        instance_id=instance,
        event={"resourceId": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.App/containerApps/a"},
        status="completed",
        started_at=NOW - timedelta(minutes=10),
        finished_at=NOW,
        results=list(results),
    )


def test_store_is_idempotent_and_readable(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    request = _store("scan-one", _result(NGINX, "completed", NOW), _result(REDIS, "failed", NOW, digest=None))
    store_results(clients(settings), settings, request)
    store_results(clients(settings), settings, request)

    record = get_scan_record(clients(settings), settings, "scan-one")
    assert record is not None
    assert record.status == "completed"
    assert [r.image for r in record.results] == [NGINX, REDIS]
    assert record.event == request.event
    assert record.finished_at == NOW
    assert get_scan_record(clients(settings), settings, "scan-unknown") is None

    latest_redis = get_latest_result(clients(settings), settings, REDIS)
    assert latest_redis is not None
    assert latest_redis.status == "failed"
    assert get_latest_result(clients(settings), settings, "docker.io/library/never:1") is None
    short_form = get_latest_result(clients(settings), settings, "redis:7")
    assert short_form == latest_redis
    with pytest.raises(ValueError):
        get_latest_result(clients(settings), settings, "Not A Ref")
    cache = clients(settings).table(settings.cache_table)
    rows = list(cache.list_entities())
    # nginx: cache rows under its digest and its reference, plus its latest result; redis (failed): latest only.
    assert len(rows) == 4


def test_store_drops_the_groups_uploads_containers_once_collected(azurite: Azurite) -> None:
    """Collect copies what is kept; store then deletes each group's uploads container, and a retry still works."""
    settings = azurite_settings(azurite)
    groups = {scanner_group_name("scan-drop"): NGINX, scanner_group_name("scan-drop:1"): REDIS}
    collected: list[ImageResult] = []
    for group, image in groups.items():
        scanner = scanner_uploads(settings, "scan-drop", group)  # same blob names: each group has its container
        upload(scanner, "scan-drop/0/report.sarif.json", REPORT)
        upload(scanner, "scan-drop/0/scan.log", LOG)
        upload(scanner, "scan-drop/0/status.json", _status(image, 0))
        request = CollectRequest(
            instance_id="scan-drop", images=[ImageToCheck(image=image)], scanner_group=group, now=NOW
        )
        collected += collect_results(clients(settings), settings, request)
    store = _store("scan-drop", *collected).model_copy(update={"scanner_groups": list(groups)})

    assert store_results(clients(settings), settings, store) == 2
    assert store_results(clients(settings), settings, store) == 0  # a retried store: already gone is done
    assert list_uploads_containers(settings) == []
    record = get_scan_record(clients(settings), settings, "scan-drop")
    assert record is not None and [(r.image, r.status) for r in record.results] == [
        (NGINX, "completed"),
        (REDIS, "completed"),
    ]
    reports = clients(settings).container(settings.results_container)
    kept = [r.report.rsplit(f"/{settings.results_container}/", 1)[1] for r in record.results if r.report]
    assert len(kept) == 2 and all(reports.get_blob_client(name).exists() for name in kept)


def test_a_late_replay_never_overwrites_a_newer_result(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    newer = _result(NGINX, "completed", NOW, instance_id="scan-new")
    older = _result(NGINX, "denied", NOW - timedelta(hours=1), instance_id="scan-old")
    store_results(clients(settings), settings, _store("scan-new", newer))
    store_results(clients(settings), settings, _store("scan-old", older))
    latest = get_latest_result(clients(settings), settings, NGINX)
    assert latest is not None
    assert latest.instance_id == "scan-new"
    hit = lookup_cache(
        clients(settings), settings, CacheLookupRequest(images=[ImageToCheck(image=NGINX)], cache_hours=24, now=NOW)
    )[0]
    assert hit.result is not None
    assert hit.result.reason == "cached result of scan scan-new (completed)"


def test_cache_freshness_follows_the_injected_clock(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    store_results(clients(settings), settings, _store("scan-one", _result(NGINX, "completed", NOW)))

    def lookup(now: datetime, hours: int = 24, digest: str | None = DIGEST) -> bool:
        request = CacheLookupRequest(images=[ImageToCheck(image=NGINX, digest=digest)], cache_hours=hours, now=now)
        return lookup_cache(clients(settings), settings, request)[0].hit

    assert lookup(NOW + timedelta(hours=23, minutes=59))
    assert not lookup(NOW + timedelta(hours=24, minutes=1))
    assert not lookup(NOW, hours=0)
    assert not lookup(NOW - timedelta(hours=1))  # a row from the future is not trusted
    assert lookup(NOW + timedelta(hours=1), digest=None)  # by reference when the digest is unknown
    assert not lookup(NOW + timedelta(hours=1), digest=OTHER_DIGEST)  # the tag moved: a new digest, a miss

    answer = lookup_cache(
        clients(settings),
        settings,
        CacheLookupRequest(images=[ImageToCheck(image=NGINX, digest=DIGEST)], cache_hours=24, now=NOW),
    )[0]
    assert answer.result is not None
    assert (answer.result.status, answer.result.instance_id, answer.result.report) == (
        "cached",
        "scan-one",
        f"https://example.invalid/{NGINX}/report.json",
    )


def test_failed_results_are_not_cached(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    store_results(clients(settings), settings, _store("scan-f", _result(NGINX, "failed", NOW)))
    request = CacheLookupRequest(images=[ImageToCheck(image=NGINX, digest=DIGEST)], cache_hours=24, now=NOW)
    assert not lookup_cache(clients(settings), settings, request)[0].hit


@pytest.fixture
def app_environment(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process environment the activities read their settings from, as in the Functions host."""
    for name, value in azurite_env(azurite).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("app_environment")
def test_activity_shells_take_and_return_json() -> None:
    request = _store("scan-json", _result(NGINX, "completed", NOW))
    stored = results_store.store_results_activity(request.model_dump(mode="json"))
    assert stored == {"stored": 1, "uploads_deleted": 0}
    payload = {"images": [{"image": NGINX, "digest": DIGEST}], "cache_hours": 24, "now": NOW.isoformat()}
    answer = results_store.lookup_cache_activity(payload)
    assert answer["images"][0]["hit"] is True
    assert answer["images"][0]["result"]["vulnerabilities"] == {"CRITICAL": 0, "HIGH": 2, "MEDIUM": 0, "LOW": 0}
    latest = results_store.read_latest_results_activity({"images": [NGINX, REDIS]})
    assert [r and r["status"] for r in latest["results"]] == ["completed", None]
    with pytest.raises(ValueError):
        results_store.lookup_cache_activity({"images": "nope"})
