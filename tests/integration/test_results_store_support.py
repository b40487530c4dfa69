"""Helpers (no tests): settings against the session's Azurite with storage names unique to one test, uploads."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from azure.storage.blob import ContainerClient

from activities.storage_clients import StorageClients, clients_for, create_uploads_container, make_upload_sas
from core.naming import scanner_group_name
from core.settings import Settings, load_settings
from devhost.armsim.testing import BASE_APP_SETTINGS
from devhost.azurite import Azurite


def azurite_env(azurite: Azurite, **extra: str) -> dict[str, str]:
    """An environment whose results storage is Azurite, with containers and tables no other test uses."""
    suffix = uuid.uuid4().hex[:10]
    return {
        **BASE_APP_SETTINGS,
        "AzureWebJobsStorage": azurite.connection_string,
        "RESULTS_CONTAINER": f"reports-{suffix}",
        "UPLOADS_CONTAINER": f"uploads-{suffix}",
        "CACHE_TABLE": f"cache{suffix}",
        "SCANS_TABLE": f"scans{suffix}",
        **extra,
    }


def azurite_settings(azurite: Azurite, **extra: str) -> Settings:
    """Settings read from `azurite_env`."""
    return load_settings(azurite_env(azurite, **extra))


def clients(settings: Settings) -> StorageClients:
    return clients_for(settings)


def scanner_uploads(settings: Settings, instance_id: str, group_name: str | None = None) -> ContainerClient:
    """A scanner group's uploads container (default: the instance's first group) as the scanner sees it.

    Created as the create-group activity does, then reached through its write-only SAS only.
    """
    group = group_name or scanner_group_name(instance_id)
    container = create_uploads_container(settings, group, instance_id, datetime.now(UTC))
    target = make_upload_sas(settings, container, instance_id)
    return ContainerClient.from_container_url(target.sas_url.get_secret_value())


def upload(container: ContainerClient, name: str, body: bytes | dict[str, Any]) -> None:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    container.upload_blob(name, data, overwrite=True)
