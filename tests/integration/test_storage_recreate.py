"""Tables and the reports container vanish under a running process (storage restored or recreated): the next
store recreates them instead of failing on every retry, because creation is remembered per process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ResourceNotFoundError

from activities.results_store import get_latest_result, get_scan_record, store_results
from activities.storage_clients import clients_for
from core.report import ImageResult
from core.results import StoreRequest
from devhost.azurite import Azurite
from tests.integration.test_results_store_support import azurite_settings

pytestmark = pytest.mark.azurite

NOW = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
NGINX = "docker.io/library/nginx:1.27"


def _request(instance: str) -> StoreRequest:
    result = ImageResult.model_validate(
        {"image": NGINX, "status": "completed", "vulnerabilities": {"HIGH": 1}, "scanned_at": NOW}
    )
    return StoreRequest(instance_id=instance, started_at=NOW - timedelta(minutes=5), finished_at=NOW, results=[result])


def test_store_recreates_tables_deleted_between_two_stores_in_one_process(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    clients = clients_for(settings)
    store_results(clients, settings, _request("scan-before"))
    for name in (settings.cache_table, settings.scans_table):
        clients.table_service.delete_table(name)
    with pytest.raises(ResourceNotFoundError):  # really gone: the same process's client now hits a missing table
        list(clients.table(settings.scans_table).query_entities("PartitionKey eq 'scan-before'"))

    store_results(clients, settings, _request("scan-after"))

    record = get_scan_record(clients, settings, "scan-after")
    assert record is not None and [r.status for r in record.results] == ["completed"]
    latest = get_latest_result(clients, settings, NGINX)
    assert latest is not None and latest.status == "completed"


def test_a_vanished_reports_container_is_recreated_by_the_next_upload(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    clients = clients_for(settings)
    reports = clients.container(settings.results_container)
    reports.upload_blob("a/report.json", b"{}")
    clients.blob_service.delete_container(settings.results_container)

    clients.container(settings.results_container).upload_blob("b/report.json", b"{}")

    assert [b.name for b in reports.list_blobs()] == ["b/report.json"]


def test_other_errors_are_not_taken_for_a_missing_table(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    table = clients_for(settings).table(settings.cache_table)
    row = {"PartitionKey": "p", "RowKey": "r"}
    table.create_entity(row)
    with pytest.raises(ResourceNotFoundError):  # the entity, not the table, is missing: nothing is recreated
        table.update_entity({"PartitionKey": "p", "RowKey": "gone"})


def test_reads_of_vanished_tables_answer_not_found(azurite: Azurite) -> None:
    """Held-out review: the HTTP API's scan-record read answered a vanished scans table with an error (a 500)."""
    settings = azurite_settings(azurite)
    clients = clients_for(settings)
    store_results(clients, settings, _request("scan-read"))
    for name in (settings.cache_table, settings.scans_table):
        clients.table_service.delete_table(name)
    assert get_scan_record(clients, settings, "scan-read") is None
    assert get_latest_result(clients, settings, NGINX) is None
