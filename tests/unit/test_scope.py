"""MONITORED_SUBSCRIPTIONS and SCAN_EXCLUDE: settings, defaults, and the starter's filtering of targets."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from core.exclusions import parse_exclusions
from core.options import ScanOptions
from core.scope import exclusions_of, monitored_subscriptions
from core.settings import SettingsError, load_settings
from starters.eventhub_starter import start_scans
from tests.unit.test_starter import FakeDurableClient

OWN = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"
OTHER = "11111111-2222-4333-8444-555555555555"
UNLISTED = "99999999-2222-4333-8444-555555555555"
BASE = {
    "QUALYS_POD": "US2",
    "QUALYS_ACCESS_TOKEN": "token",
    "AZURE_SUBSCRIPTION_ID": OWN.upper(),
    "SCANNER_RESOURCE_GROUP": "rg-qscanner",
    "SCANNER_LOCATION": "westeurope",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def aci(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups/{name}"


def event(resource_id: str, n: int) -> dict[str, object]:
    return {
        "id": f"e{n}",
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "subject": resource_id,
        "eventTime": "2026-10-02T08:00:00Z",
        "data": {
            "operationName": "Microsoft.ContainerInstance/containerGroups/write",
            "resourceUri": resource_id,
            "status": "Succeeded",
            "correlationId": f"c0ffee00-0000-4000-8000-00000000000{n}",
        },
    }


def test_default_is_the_apps_own_subscription() -> None:
    assert monitored_subscriptions(load_settings(BASE)) == (OWN,)


def test_list_is_validated_lower_cased_and_deduplicated() -> None:
    settings = load_settings({**BASE, "MONITORED_SUBSCRIPTIONS": f" {OTHER.upper()}, {OWN} ,{OTHER}"})
    assert monitored_subscriptions(settings) == (OTHER, OWN)


def test_bad_settings_name_the_variable_and_the_entry() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "MONITORED_SUBSCRIPTIONS": f"{OWN},not-a-guid", "SCAN_EXCLUDE": "rg:ok,team:x"})
    problems = dict(caught.value.problems)
    assert "position(s) 2" in problems["MONITORED_SUBSCRIPTIONS"]
    assert "'team:x'" in problems["SCAN_EXCLUDE"]


def test_scan_exclude_setting_parses() -> None:
    settings = load_settings({**BASE, "SCAN_EXCLUDE": "RG:Legacy-*, image:docker.io/library/nginx:*"})
    assert settings.scan_exclude == ("rg:legacy-*", "image:docker.io/library/nginx:*")
    assert exclusions_of(settings) == parse_exclusions(settings.scan_exclude)


def test_starter_skips_unmonitored_and_excluded_targets_with_reasons(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    ids = [aci(OWN, "apps", "a"), aci(OTHER, "apps", "b"), aci(UNLISTED, "apps", "c"), aci(OWN, "legacy-1", "d")]
    body = json.dumps([event(rid, n) for n, rid in enumerate(ids)])
    client = FakeDurableClient()
    outcome = asyncio.run(
        start_scans(
            client,
            [body],
            scanner_resource_group="rg-qscanner",
            scanner_subscription_id=OWN,
            options=ScanOptions().model_dump(mode="json"),
            monitored=(OWN, OTHER),
            exclusions=parse_exclusions(["rg:legacy-*"]),
        )
    )
    assert (outcome.targets, outcome.started, outcome.unmonitored, outcome.excluded) == (2, 2, 1, 1)
    started = sorted(i["input"]["event"]["resource_id"] for i in client.instances.values())
    assert started == sorted(ids[:2])
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"subscription {UNLISTED} is not in MONITORED_SUBSCRIPTIONS" in m for m in messages)
    assert any("excluded by SCAN_EXCLUDE rg:legacy-*" in m for m in messages)
    assert any(m.endswith("unmonitored=1 excluded=1") for m in messages if m.startswith("event batch"))


def test_scanner_group_exclusion_stays_with_the_apps_own_subscription() -> None:
    ids = [aci(OWN, "rg-qscanner", "qscan-1"), aci(OTHER, "rg-qscanner", "workload")]
    client = FakeDurableClient()
    outcome = asyncio.run(
        start_scans(
            client,
            [json.dumps([event(rid, n) for n, rid in enumerate(ids)])],
            scanner_resource_group="rg-qscanner",
            scanner_subscription_id=OWN,
            options=ScanOptions().model_dump(mode="json"),
            monitored=(OWN, OTHER),
        )
    )
    assert outcome.started == 1  # a group of that name in another monitored subscription is a workload
    assert [i["input"]["event"]["resource_id"] for i in client.instances.values()] == [ids[1]]


def test_an_excluded_image_ends_skipped_with_its_entry() -> None:
    from core.report import needs_notification
    from core.scan_views import ResolvedView

    view = ResolvedView.model_validate(
        {"images": [], "excluded": [{"image": "docker.io/library/nginx:1.27", "container": "web", "reason": "r"}]}
    )
    result = view.excluded[0].result("scan-1")
    assert (result.status, result.reason, result.instance_id) == ("skipped", "r", "scan-1")
    assert not needs_notification(result, "LOW")


def test_a_manual_scan_of_an_excluded_image_or_resource_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from core.settings import get_settings
    from starters.http_api import scan_input_from_body

    for name, value in {**BASE, "SCAN_EXCLUDE": "rg:legacy-*,image:docker.io/library/nginx:*"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        now = datetime(2026, 10, 2, tzinfo=UTC)
        with pytest.raises(
            ValueError, match=r"never scanned: excluded by SCAN_EXCLUDE image:docker.io/library/nginx:\*"
        ):
            scan_input_from_body(b'{"image": "nginx:1.27"}', now, "n")
        with pytest.raises(ValueError, match=r"never scanned: excluded by SCAN_EXCLUDE rg:legacy-\*"):
            scan_input_from_body(json.dumps({"resourceId": aci(OWN, "Legacy-1", "x")}).encode(), now, "n")
        assert scan_input_from_body(b'{"image": "httpd:2.4"}', now, "n")[0].startswith("rescan-")
    finally:
        get_settings.cache_clear()
