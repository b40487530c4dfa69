"""Each image's stored results keep the latest plus the previous one with a report (issue 11), on real Azurite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activities.results_store import (
    LATEST_RESULT_ROW,
    get_latest_result,
    get_result_history,
    store_results,
)
from core.naming import image_key
from core.report import ImageResult
from core.results import StoreRequest
from devhost.azurite import Azurite
from tests.integration.test_results_store_support import azurite_settings, clients

pytestmark = pytest.mark.azurite

NOW = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
NGINX = "docker.io/library/nginx:1.27"


def _result(instance: str, hours_ago: float, status: str = "completed", high: int = 2) -> ImageResult:
    return ImageResult.model_validate(
        {
            "image": NGINX,
            "status": status,
            "vulnerabilities": {"HIGH": high},
            "report": None if status == "failed" else f"https://example.invalid/{instance}/report.json",
            "scanned_at": NOW - timedelta(hours=hours_ago),
            "instance_id": instance,
        }
    )


def _store(result: ImageResult) -> StoreRequest:
    return StoreRequest(instance_id=str(result.instance_id), results=[result], finished_at=NOW)


def test_history_keeps_the_previous_result_with_a_report(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    c = clients(settings)
    assert get_result_history(c, settings, NGINX) == (None, None)
    first, second = _result("scan-a", 48), _result("scan-b", 24, high=3)
    store_results(c, settings, _store(first))
    assert get_result_history(c, settings, NGINX) == (first, None)
    store_results(c, settings, _store(second))
    store_results(c, settings, _store(second))  # the requester stores the batch's result again: no rotation
    assert get_result_history(c, settings, NGINX) == (second, first)
    failed = _result("scan-c", 12, status="failed")
    store_results(c, settings, _store(failed))
    assert get_result_history(c, settings, NGINX) == (failed, second)
    third = _result("scan-d", 1)
    store_results(c, settings, _store(third))  # the failure in between is skipped: findings compare with findings
    assert get_result_history(c, settings, NGINX) == (third, second)
    store_results(c, settings, _store(first))  # a late replay of an older scan changes nothing
    assert get_result_history(c, settings, NGINX) == (third, second)


def test_rows_written_before_the_history_still_read(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    c = clients(settings)
    old = _result("scan-old", 30)
    row = {"PartitionKey": image_key(NGINX), "RowKey": LATEST_RESULT_ROW, "result": old.model_dump_json()}
    c.table(settings.cache_table).upsert_entity(row)
    assert get_latest_result(c, settings, NGINX) == old
    assert get_result_history(c, settings, NGINX) == (old, None)
    new = _result("scan-new", 1)
    store_results(c, settings, _store(new))
    assert get_result_history(c, settings, NGINX) == (new, old)
