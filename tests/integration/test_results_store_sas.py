"""The scanner's upload SAS against real Azurite: it can create and write blobs, and nothing else."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

from activities.storage_clients import make_upload_sas
from devhost.azurite import Azurite
from tests.integration.test_results_store_support import azurite_settings, clients

pytestmark = pytest.mark.azurite


def test_sas_allows_create_and_write_only(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    target = make_upload_sas(settings, "scan-abc")
    assert target.prefix == "scan-abc"
    assert "sp=cw" in target.sas_url.get_secret_value()
    assert "**" in repr(target)  # the SAS never shows in a repr or a log line
    scanner = ContainerClient.from_container_url(target.sas_url.get_secret_value())

    scanner.upload_blob("scan-abc/0/status.json", b"{}")
    scanner.upload_blob("scan-abc/0/status.json", b'{"again": 1}', overwrite=True)

    with pytest.raises(HttpResponseError) as read:
        scanner.download_blob("scan-abc/0/status.json").readall()
    assert read.value.status_code == 403
    with pytest.raises(HttpResponseError) as listing:
        list(scanner.list_blobs())
    assert listing.value.status_code == 403
    with pytest.raises(HttpResponseError) as delete:
        scanner.delete_blob("scan-abc/0/status.json")
    assert delete.value.status_code == 403

    app_view = clients(settings).container(settings.uploads_container)
    assert app_view.download_blob("scan-abc/0/status.json").readall() == b'{"again": 1}'


def test_sas_works_for_a_plain_http_put_like_curl(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    url = make_upload_sas(settings, "scan-curl").sas_url.get_secret_value()
    parts = urlsplit(url)
    blob_url = f"{parts.scheme}://{parts.netloc}{parts.path}/scan-curl/0/scan.log?{parts.query}"
    request = urllib.request.Request(
        blob_url, data=b"log line\n", method="PUT", headers={"x-ms-blob-type": "BlockBlob"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    app_view = clients(settings).container(settings.uploads_container)
    assert app_view.download_blob("scan-curl/0/scan.log").readall() == b"log line\n"


def test_expired_sas_cannot_write(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    target = make_upload_sas(settings, "scan-old", now=long_ago, minutes=10)
    scanner = ContainerClient.from_container_url(target.sas_url.get_secret_value())
    with pytest.raises(HttpResponseError) as write:
        scanner.upload_blob("scan-old/0/status.json", b"{}")
    assert write.value.status_code == 403


def test_put_without_sas_is_refused(azurite: Azurite) -> None:
    settings = azurite_settings(azurite)
    container_url = clients(settings).container(settings.uploads_container).url
    request = urllib.request.Request(
        f"{container_url}/x/0/status.json", data=b"{}", method="PUT", headers={"x-ms-blob-type": "BlockBlob"}
    )
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(request, timeout=10)
    assert denied.value.code in (401, 403, 404)
