"""The scanner's upload SAS against real Azurite: create and write in its own group's container, nothing else."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

from activities.storage_clients import (
    META_INSTANCE,
    META_MANAGED,
    create_uploads_container,
    delete_container,
    list_uploads_containers,
    make_upload_sas,
    uploads_container_of,
)
from core.naming import scanner_group_name
from core.settings import Settings
from devhost.azurite import Azurite
from tests.integration.test_results_store_support import azurite_settings, clients

pytestmark = pytest.mark.azurite
NOW = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
FORBIDDEN = 403


def group_container(settings: Settings, instance_id: str) -> str:
    """The first scanner group's uploads container of `instance_id`, created as the create-group activity does."""
    return create_uploads_container(settings, scanner_group_name(instance_id), instance_id, NOW)


def scanner_view(
    settings: Settings, instance_id: str, *, now: datetime | None = None, minutes: int | None = None
) -> ContainerClient:
    """The group's container as its scanner sees it: through the SAS only."""
    target = make_upload_sas(settings, group_container(settings, instance_id), instance_id, now=now, minutes=minutes)
    return ContainerClient.from_container_url(target.sas_url.get_secret_value())


def test_sas_allows_create_and_write_only(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    container = group_container(settings, "scan-abc")
    target = make_upload_sas(settings, container, "scan-abc")
    assert target.prefix == "scan-abc"
    assert "sp=cw" in target.sas_url.get_secret_value()
    assert "**" in repr(target)  # the SAS never shows in a repr or a log line
    scanner = ContainerClient.from_container_url(target.sas_url.get_secret_value())
    assert scanner.container_name == container != settings.uploads_container

    scanner.upload_blob("scan-abc/0/status.json", b"{}")
    scanner.upload_blob("scan-abc/0/status.json", b'{"again": 1}', overwrite=True)

    with pytest.raises(HttpResponseError) as read:
        scanner.download_blob("scan-abc/0/status.json").readall()
    assert read.value.status_code == FORBIDDEN
    with pytest.raises(HttpResponseError) as listing:
        list(scanner.list_blobs())
    assert listing.value.status_code == FORBIDDEN
    with pytest.raises(HttpResponseError) as delete:
        scanner.delete_blob("scan-abc/0/status.json")
    assert delete.value.status_code == FORBIDDEN

    app_view = clients(settings).blob_service.get_container_client(container)
    assert app_view.download_blob("scan-abc/0/status.json").readall() == b'{"again": 1}'


def test_one_groups_sas_cannot_write_into_another_groups_container(azurite: Azurite) -> None:
    """The audit's finding: a subverted scanner must not forge a concurrent scan's status.json. It gets a 403."""
    settings = azurite_settings(azurite)
    attacker = scanner_view(settings, "scan-attacker")
    victim_container = group_container(settings, "scan-victim")
    victim_url = clients(settings).blob_service.get_container_client(victim_container).url
    attacker_query = urlsplit(attacker.url).query
    forged = b'{"image": "docker.io/library/app:1", "index": 0, "exit_code": 0, "result": "ok"}'

    borrowed = ContainerClient.from_container_url(f"{victim_url}?{attacker_query}")
    with pytest.raises(HttpResponseError) as refused:
        borrowed.upload_blob("scan-victim/0/status.json", forged)
    assert refused.value.status_code == FORBIDDEN
    request = urllib.request.Request(
        f"{victim_url}/scan-victim/0/status.json?{attacker_query}",
        data=forged,
        method="PUT",
        headers={"x-ms-blob-type": "BlockBlob"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused_put:  # the scanner's own route: a plain PUT, as curl
        urllib.request.urlopen(request, timeout=10)
    assert refused_put.value.code == FORBIDDEN

    # Its own container takes the same blob name; the victim's container stays empty.
    attacker.upload_blob("scan-victim/0/status.json", forged)
    victim = clients(settings).blob_service.get_container_client(victim_container)
    assert list(victim.list_blobs()) == []


def test_sas_works_for_a_plain_http_put_like_curl(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    container = group_container(settings, "scan-curl")
    url = make_upload_sas(settings, container, "scan-curl").sas_url.get_secret_value()
    parts = urlsplit(url)
    blob_url = f"{parts.scheme}://{parts.netloc}{parts.path}/scan-curl/0/scan.log?{parts.query}"
    request = urllib.request.Request(
        blob_url, data=b"log line\n", method="PUT", headers={"x-ms-blob-type": "BlockBlob"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    app_view = clients(settings).blob_service.get_container_client(container)
    assert app_view.download_blob("scan-curl/0/scan.log").readall() == b"log line\n"


def test_expired_sas_cannot_write(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    scanner = scanner_view(settings, "scan-old", now=long_ago, minutes=10)
    with pytest.raises(HttpResponseError) as write:
        scanner.upload_blob("scan-old/0/status.json", b"{}")
    assert write.value.status_code == FORBIDDEN


def test_put_without_sas_is_refused(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    container_url = clients(settings).blob_service.get_container_client(group_container(settings, "scan-x")).url
    request = urllib.request.Request(
        f"{container_url}/x/0/status.json", data=b"{}", method="PUT", headers={"x-ms-blob-type": "BlockBlob"}
    )
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(request, timeout=10)
    assert denied.value.code in (401, 403, 404)


def test_uploads_containers_are_per_group_idempotent_and_listed_for_the_janitor(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    first, second = scanner_group_name("scan-two"), scanner_group_name("scan-two:1")
    made = [create_uploads_container(settings, group, "scan-two", NOW) for group in (first, second, first)]
    assert made == [uploads_container_of(settings, first), uploads_container_of(settings, second), made[0]]
    service = clients(settings).blob_service
    service.create_container(f"{settings.uploads_container}-leases")  # shares the prefix, not made by the app
    service.create_container(f"{settings.uploads_container}-{'0' * 24}")  # right shape, no managed metadata

    listed = {info.name: info for info in list_uploads_containers(settings)}

    assert set(listed) == set(made)
    assert all(info.instance_id == "scan-two" and info.created_at == NOW for info in listed.values())
    properties = service.get_container_client(made[0]).get_container_properties()
    assert (properties.metadata[META_MANAGED], properties.metadata[META_INSTANCE]) == ("true", "scan-two")
    assert delete_container(clients(settings), made[0]) is True
    assert delete_container(clients(settings), made[0]) is False  # already gone: success too
    assert {info.name for info in list_uploads_containers(settings)} == {made[1]}
