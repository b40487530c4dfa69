"""Storage clients, bounded blob reads, and the per-scanner-group uploads containers with their write-only SAS.

Tables and the reports container are created on first use and remembered per process. Storage can lose them
afterwards (an account restored or recreated, a table deleted by hand), so the clients handed out recreate what is
missing: a write that answers 404 `TableNotFound` / `ContainerNotFound` creates the table or container and is sent
once more. Reads of a missing table answer "not found", which is the truth until the next write recreates it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient
from azure.identity import DefaultAzureCredential
from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    ContentSettings,
    generate_container_sas,
)
from pydantic import SecretStr

from core.janitor import ScannerGroupInfo
from core.naming import UPLOADS_CONTAINER_HASH_CHARS, uploads_container_name
from core.setting_types import StorageConnection
from core.settings import Settings

SAS_CLOCK_SKEW = timedelta(minutes=5)
JSON_CONTENT = ContentSettings(content_type="application/json")
TEXT_CONTENT = ContentSettings(content_type="text/plain; charset=utf-8")
_ACCOUNT_NAME_KEY = "accountname"
RANGE_NOT_SATISFIABLE = 416  # a ranged GET of an empty blob (the SDK retries without a range only when none was asked)
_ACCOUNT_KEY_KEY = "accountkey"
# Metadata of an uploads container (Azure returns metadata names in lower case): how the janitor knows its own.
META_MANAGED = "qscan_managed"
META_INSTANCE = "qscan_instance"
META_CREATED = "qscan_created"
# x-ms-error-code of a write to a table or container that does not exist (Azure Storage error codes).
TABLE_NOT_FOUND = "TableNotFound"
CONTAINER_NOT_FOUND = "ContainerNotFound"
NOT_FOUND = 404
_T = TypeVar("_T")
_Client = TypeVar("_Client")


class BlobTooLarge(ValueError):
    """A blob is larger than the caller is willing to read."""


def _connection_parts(connection_string: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in connection_string.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    return parts


def is_missing(error: HttpResponseError, code: str) -> bool:
    """True when `error` is a 404 whose storage error code (the SDK's, or the `x-ms-error-code` header) is `code`."""
    if error.status_code != NOT_FOUND:
        return False
    found = getattr(error, "error_code", None)
    headers = getattr(error.response, "headers", None) or {}
    header = headers.get("x-ms-error-code")
    return code in (str(getattr(found, "value", found)), header)


def _recreating(call: Callable[[], _T], code: str, recreate: Callable[[], None]) -> _T:
    """Run `call`; when it fails because its table or container (`code`) is gone, recreate it and run it once more."""
    try:
        return call()
    except HttpResponseError as error:
        if not is_missing(error, code):
            raise
    recreate()
    return call()


class RecreatingTableClient(TableClient):
    """A TableClient whose writes recreate the table when it has vanished (see the module docstring)."""

    def __init__(self, endpoint: str, table_name: str, *, recreate: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(endpoint, table_name, **kwargs)
        self._recreate = recreate

    def create_entity(self, entity: Any, **kwargs: Any) -> dict[str, Any]:
        return _recreating(lambda: TableClient.create_entity(self, entity, **kwargs), TABLE_NOT_FOUND, self._recreate)

    def update_entity(self, entity: Any, mode: Any = None, **kwargs: Any) -> dict[str, Any]:
        args = (entity,) if mode is None else (entity, mode)
        return _recreating(lambda: TableClient.update_entity(self, *args, **kwargs), TABLE_NOT_FOUND, self._recreate)

    def upsert_entity(self, entity: Any, mode: Any = None, **kwargs: Any) -> dict[str, Any]:
        args = (entity,) if mode is None else (entity, mode)
        return _recreating(lambda: TableClient.upsert_entity(self, *args, **kwargs), TABLE_NOT_FOUND, self._recreate)

    def submit_transaction(self, operations: Iterable[Any], **kwargs: Any) -> list[Any]:
        batch = list(operations)  # sent twice at most: an iterator would be empty the second time
        return _recreating(
            lambda: TableClient.submit_transaction(self, batch, **kwargs), TABLE_NOT_FOUND, self._recreate
        )


class RecreatingContainerClient(ContainerClient):
    """A ContainerClient whose `upload_blob` recreates the container when it has vanished."""

    def __init__(self, account_url: str, container_name: str, *, recreate: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(account_url, container_name, **kwargs)
        self._recreate = recreate

    def upload_blob(self, name: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        call = lambda: ContainerClient.upload_blob(self, name, data, *args, **kwargs)  # noqa: E731
        return _recreating(call, CONTAINER_NOT_FOUND, self._recreate)


@dataclass
class StorageClients:
    """The service clients of one storage account; containers and tables are created on first use.

    Creation is remembered per process, and what storage loses later is recreated by the clients' writes.
    """

    blob_service: BlobServiceClient
    table_service: TableServiceClient
    account_name: str
    account_key: SecretStr | None = None
    _ready: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tables: dict[str, RecreatingTableClient] = field(default_factory=dict)
    _containers: dict[str, RecreatingContainerClient] = field(default_factory=dict)

    def container(self, name: str) -> ContainerClient:
        """The client of container `name`, created if missing (once per process, again when it vanished)."""
        service = self.blob_service
        return self._cached_client(
            self._containers, f"blob:{name}", self._create_container(name),
            lambda recreate: RecreatingContainerClient(
                service.url, name, credential=service.credential, api_version=service.api_version, recreate=recreate
            ),
        )  # fmt: skip

    def table(self, name: str) -> TableClient:
        """The client of table `name`, created if missing (once per process, again when it vanished)."""
        service = self.table_service
        return self._cached_client(
            self._tables, f"table:{name}", self._create_table(name),
            lambda recreate: RecreatingTableClient(
                service.url, name, credential=service.credential, api_version=service.api_version, recreate=recreate
            ),
        )  # fmt: skip

    def _cached_client(
        self,
        cache: dict[str, _Client],
        key: str,
        create: Callable[[], object],
        build: Callable[[Callable[[], None]], _Client],
    ) -> _Client:
        """The cached client for `key` (built once, with a `recreate` that makes its resource again), its resource
        created if missing.
        """
        with self._lock:
            client = cache.get(key)
            if client is None:
                client = cache[key] = build(lambda: self._create(key, create))
        self._ensure(key, create)
        return client

    def _create_container(self, name: str) -> Callable[[], object]:
        return lambda: self.blob_service.create_container(name)

    def _create_table(self, name: str) -> Callable[[], object]:
        return lambda: self.table_service.create_table(name)

    def _ensure(self, key: str, create: Callable[[], object]) -> None:
        if key in self._ready:
            return
        self._create(key, create)

    def _create(self, key: str, create: Callable[[], object]) -> None:
        with self._lock:
            with contextlib.suppress(ResourceExistsError):
                create()
            self._ready.add(key)


def _credential(connection: StorageConnection) -> TokenCredential:
    if connection.client_id:
        return DefaultAzureCredential(managed_identity_client_id=connection.client_id)
    return DefaultAzureCredential()


def build_clients(connection: StorageConnection) -> StorageClients:
    """Clients for `connection`: a connection string (Azurite, local) or the app's identity (Azure)."""
    if connection.connection_string is not None:
        text = connection.connection_string.get_secret_value()
        blob = BlobServiceClient.from_connection_string(text)
        table = TableServiceClient.from_connection_string(text)
        parts = _connection_parts(text)
        key = parts.get(_ACCOUNT_KEY_KEY)
        account = parts.get(_ACCOUNT_NAME_KEY) or blob.account_name or ""
        return StorageClients(blob, table, account, SecretStr(key) if key else None)
    if not connection.blob_service_uri or not connection.table_service_uri:
        raise ValueError(f"storage connection {connection.setting} has no service URIs")
    credential = _credential(connection)
    blob = BlobServiceClient(account_url=connection.blob_service_uri, credential=credential)
    table = TableServiceClient(endpoint=connection.table_service_uri, credential=credential)
    return StorageClients(blob, table, connection.account_name or blob.account_name or "")


_clients: dict[str, StorageClients] = {}
_clients_lock = threading.Lock()


def _cache_key(connection: StorageConnection) -> str:
    secret = connection.connection_string.get_secret_value() if connection.connection_string else ""
    basis = "\x1f".join(
        [connection.setting, connection.mode, secret, *(str(v) for v in connection.model_dump().values())]
    )
    return hashlib.sha256(basis.encode()).hexdigest()


def clients_for(settings: Settings) -> StorageClients:
    """The process-wide clients for the settings' results storage (one set per connection)."""
    key = _cache_key(settings.storage)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = build_clients(settings.storage)
        return _clients[key]


def read_blob(container: ContainerClient, name: str, limit: int) -> bytes | None:
    """The blob's bytes, None when it does not exist; `BlobTooLarge` when it has more than `limit` bytes."""
    try:
        downloader = container.download_blob(name, offset=0, length=limit + 1, max_concurrency=1)
        data = downloader.readall()
    except ResourceNotFoundError:
        return None
    except HttpResponseError as error:
        if error.status_code != RANGE_NOT_SATISFIABLE:
            raise
        return b""  # an empty blob: the caller decides whether empty is acceptable
    if len(data) > limit:
        raise BlobTooLarge(f"{name} is larger than {limit} bytes")
    return data


def _total_size(content_range: str | None, fallback: int) -> int:
    """The whole blob's size from a ranged answer's `bytes 0-99/12345` (`properties.size` is the range's size)."""
    total = (content_range or "").rpartition("/")[2]
    return int(total) if total.isdigit() else fallback


def read_blob_tail(container: ContainerClient, name: str, limit: int) -> tuple[bytes | None, bool]:
    """At most the last `limit` bytes of a blob (None when missing) and whether the start was cut off."""
    try:
        downloader = container.download_blob(name, offset=0, length=limit, max_concurrency=1)
        size = _total_size(downloader.properties.content_range, downloader.properties.size)
        if size <= limit:
            return downloader.readall(), False
        tail = container.download_blob(name, offset=size - limit, length=limit, max_concurrency=1)
        return tail.readall(), True
    except ResourceNotFoundError:
        return None, False
    except HttpResponseError as error:
        if error.status_code != RANGE_NOT_SATISFIABLE:
            raise
        return b"", False


def uploads_container_of(settings: Settings, group_name: str) -> str:
    """The uploads container of scanner group `group_name` (UPLOADS_CONTAINER is the prefix of its name)."""
    return uploads_container_name(settings.uploads_container, group_name)


def create_uploads_container(settings: Settings, group_name: str, instance_id: str, created_at: datetime) -> str:
    """Create the group's own uploads container (an existing one is kept: a retried create reuses it); its name.

    The metadata names the owning orchestration and the creation time, so the janitor can tell a leftover.
    Not cached like `StorageClients.container`: the container is deleted again when its scan is stored.
    """
    name = uploads_container_of(settings, group_name)
    metadata = {META_MANAGED: "true", META_INSTANCE: instance_id, META_CREATED: created_at.astimezone(UTC).isoformat()}
    with contextlib.suppress(ResourceExistsError):
        clients_for(settings).blob_service.create_container(name, metadata=metadata)
    return name


def delete_container(clients: StorageClients, name: str) -> bool:
    """Delete container `name`; True when it was there, False when it was already gone (success too)."""
    try:
        clients.blob_service.delete_container(name)
    except ResourceNotFoundError:
        return False
    return True


def _metadata_time(text: str | None) -> datetime | None:
    try:
        when = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return when if when is None or when.tzinfo else when.replace(tzinfo=UTC)


def list_uploads_containers(settings: Settings) -> list[ScannerGroupInfo]:
    """The app's per-group uploads containers, in the janitor's terms: `{prefix}-{24 hex}` with its metadata only.

    Anything else that merely shares the prefix (a task hub's `-leases` container, a hand-made one) is never listed.
    """
    pattern = re.compile(rf"{re.escape(settings.uploads_container)}-[0-9a-f]{{{UPLOADS_CONTAINER_HASH_CHARS}}}")
    listing = clients_for(settings).blob_service.list_containers(
        name_starts_with=f"{settings.uploads_container}-", include_metadata=True
    )
    found: list[ScannerGroupInfo] = []
    for item in listing:
        metadata = item.metadata or {}
        if not pattern.fullmatch(str(item.name)) or metadata.get(META_MANAGED) != "true":
            continue
        created = _metadata_time(metadata.get(META_CREATED)) or item.last_modified
        found.append(ScannerGroupInfo(name=item.name, instance_id=metadata.get(META_INSTANCE), created_at=created))
    return found


@dataclass(frozen=True)
class UploadTarget:
    """Where a scanner group uploads: a write-only SAS URL of its own container (secret) and its blob prefix."""

    sas_url: SecretStr
    prefix: str
    expires_at: datetime


def _sas_protocol(url: str) -> str | None:
    """https only, except an http emulator on loopback (Azurite), which cannot serve https SAS requests."""
    parsed = urlsplit(url)
    loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    return None if parsed.scheme == "http" and loopback else "https"


def make_upload_sas(
    settings: Settings, container_name: str, prefix: str, *, now: datetime | None = None, minutes: int | None = None
) -> UploadTarget:
    """A create+write-only SAS for container `container_name` alone, valid `minutes` (default UPLOAD_SAS_MINUTES).

    Not an activity: the SAS is a secret and must never travel through orchestration history. The activity that
    creates the scanner group creates the group's own uploads container (`create_uploads_container`), calls this
    in-process and passes `sas_url` to the container as a `secure_value`. `prefix` is the group's RESULTS_PREFIX.
    With an account key (Azurite, local) it is a service SAS; with the app's identity a user delegation SAS.
    A container SAS cannot be narrowed to a prefix, which is why every group has a container of its own: the SAS
    cannot read, list or delete, and it cannot touch another group's uploads.
    """
    clients = clients_for(settings)
    container = clients.blob_service.get_container_client(container_name)
    start = (now or datetime.now(UTC)) - SAS_CLOCK_SKEW
    expiry = start + SAS_CLOCK_SKEW + timedelta(minutes=minutes or settings.upload_sas_minutes)
    permission = ContainerSasPermissions(create=True, write=True)
    if clients.account_key is not None:
        token = generate_container_sas(
            clients.account_name,
            container_name,
            account_key=clients.account_key.get_secret_value(),
            permission=permission,
            start=start,
            expiry=expiry,
            protocol=_sas_protocol(container.url),
        )
    else:
        delegation_key = clients.blob_service.get_user_delegation_key(key_start_time=start, key_expiry_time=expiry)
        token = generate_container_sas(
            clients.account_name,
            container_name,
            user_delegation_key=delegation_key,
            permission=permission,
            start=start,
            expiry=expiry,
            protocol="https",
        )
    return UploadTarget(SecretStr(f"{container.url}?{token}"), prefix, expiry)
