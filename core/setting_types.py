"""Validated value types for the settings: names, URLs, lists and the storage connection."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr

from core.naming import MAX_UPLOADS_CONTAINER_PREFIX_CHARS

Problem = tuple[str, str]
"""(VARIABLE, reason) of one missing or invalid setting; the reason never echoes the value."""

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*"
)
_STORAGE_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
_NCRONTAB_FIELD = re.compile(r"[0-9A-Za-z*/,\-]+")


def _strip_lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def strip_upper(value: object) -> object:
    """Case-insensitive enumerations are stored upper-case."""
    return value.strip().upper() if isinstance(value, str) else value


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def matching(pattern: str, what: str) -> AfterValidator:
    """A validator that accepts only a full match of `pattern`."""
    compiled = re.compile(pattern)

    def validate(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"is not a valid {what}")
        return value

    return AfterValidator(validate)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IP addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: str, *, allow_loopback_http: bool = True) -> str:
    """An absolute https URL (or http to a loopback host when allowed); errors never echo the URL."""
    if CONTROL_CHARS.search(value) or " " in value:
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(value)
    host = parts.hostname or ""
    if not host:
        raise ValueError("must be an absolute URL with a host")
    if parts.scheme == "https" or (allow_loopback_http and parts.scheme == "http" and is_loopback(host)):
        return value.rstrip("/")
    raise ValueError("must use https (http is accepted only for a loopback host)")


def _check_secret_url(value: SecretStr) -> SecretStr:
    check_url(value.get_secret_value())
    return value


def _check_printable(value: str) -> str:
    if CONTROL_CHARS.search(value):
        raise ValueError("must not contain control characters")
    return value


def _guids(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [str(i + 1) for i, item in enumerate(value) if not GUID.fullmatch(item)]
    if bad:
        raise ValueError(f"not a GUID at position(s) {', '.join(bad[:5])}; expected comma-separated subscription ids")
    return tuple(dict.fromkeys(value))


def _check_emails(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [address for address in value if not _EMAIL.fullmatch(address)]
    if bad:
        raise ValueError(f"has {len(bad)} invalid address(es); expected comma-separated e-mail addresses")
    return value


def _check_ncrontab(value: str) -> str:
    fields = value.split()
    if len(fields) != 6 or not all(_NCRONTAB_FIELD.fullmatch(field) for field in fields):
        raise ValueError("must be an NCRONTAB expression with six fields: {second} {minute} {hour} {day} {month} {dow}")
    return " ".join(fields)


Guid = Annotated[str, BeforeValidator(_strip_lower), matching(GUID.pattern, "GUID")]
LowerStr = Annotated[str, BeforeValidator(_strip_lower)]
GuidList = Annotated[tuple[str, ...], BeforeValidator(lambda v: _comma_list(_strip_lower(v))), AfterValidator(_guids)]
"""Comma-separated GUIDs, lower-cased; each once (in order)."""
CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]
EmailList = Annotated[tuple[str, ...], BeforeValidator(_comma_list), AfterValidator(_check_emails)]
EmailAddress = Annotated[str, matching(_EMAIL.pattern, "e-mail address")]
Printable = Annotated[str, AfterValidator(_check_printable)]
Url = Annotated[str, AfterValidator(check_url)]
HttpsOnlyUrl = Annotated[str, AfterValidator(lambda value: check_url(value, allow_loopback_http=False))]
SecretUrl = Annotated[SecretStr, AfterValidator(_check_secret_url)]
Ncrontab = Annotated[str, AfterValidator(_check_ncrontab)]
ResourceGroupName = Annotated[
    str, matching(r"[-\w.()]{0,89}[-\w()]", "resource group name (1-90 letters, digits, . _ - ( ); no final .)")
]
SettingName = Annotated[str, matching(SETTING_NAME.pattern, "app setting name (letters, digits, _)")]
HostName = Annotated[str, matching(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", "host name")]
BlobContainerName = Annotated[
    str, matching(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", "blob container name (3-63 a-z, 0-9, single -)")
]
UploadsContainerPrefix = Annotated[
    str,
    matching(
        rf"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){{2,{MAX_UPLOADS_CONTAINER_PREFIX_CHARS - 1}}}",
        f"uploads container prefix (3-{MAX_UPLOADS_CONTAINER_PREFIX_CHARS} a-z, 0-9, single -; "
        "each scanner group uploads into <prefix>-<24 hex>)",
    ),
]
TableName = Annotated[str, matching(r"[A-Za-z][A-Za-z0-9]{2,62}", "table name (3-63 letters/digits, letter first)")]
TaskHubName = Annotated[str, matching(r"[A-Za-z][A-Za-z0-9]{2,44}", "task hub name (3-45 letters/digits)")]
EventHubEntity = Annotated[str, matching(r"[^\x00-\x20\x7f]{1,256}", "Event Hub name (1-256 printable characters)")]
UserIdentityId = Annotated[
    str,
    matching(
        r"(?i)/subscriptions/[0-9a-f-]{36}/resourcegroups/[-\w.()]{1,90}/providers/"
        r"microsoft\.managedidentity/userassignedidentities/[A-Za-z0-9][-\w]{2,127}",
        "user-assigned managed identity resource id",
    ),
]


class StorageConnection(BaseModel):
    """How the app reaches its storage account: managed identity (Azure) or a connection string (Azurite)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    setting: str
    mode: Literal["identity", "connection_string"]
    connection_string: SecretStr | None = None
    blob_service_uri: str | None = None
    table_service_uri: str | None = None
    account_name: str | None = None
    client_id: str | None = None

    @property
    def uses_identity(self) -> bool:
        """True when the app must authenticate with its managed identity."""
        return self.mode == "identity"


def storage_connection_from_env(
    name: str, environ: Mapping[str, str]
) -> tuple[StorageConnection | None, list[Problem]]:
    """Read `<name>` (a connection string) or `<name>__accountName|__blobServiceUri|__tableServiceUri|__clientId`."""
    get: Callable[[str], str | None] = lambda suffix: (environ.get(name + suffix) or "").strip() or None  # noqa: E731
    connection_string = get("")
    if connection_string is not None:
        parts = [part for part in connection_string.split(";") if part.strip()]
        if not parts or not all("=" in part for part in parts):
            return None, [(name, "is not a storage connection string (Key=Value;...)")]
        secret = SecretStr(connection_string)
        return StorageConnection(setting=name, mode="connection_string", connection_string=secret), []
    account, client_id = get("__accountName"), get("__clientId")
    given = {"blob": get("__blobServiceUri") or get("__serviceUri"), "table": get("__tableServiceUri")}
    if account is None and not any(given.values()):
        return None, [(name, f"required: set {name}__accountName (managed identity) or {name} (local only)")]
    problems: list[Problem] = []
    if account is not None and not _STORAGE_ACCOUNT.fullmatch(account):
        problems.append((f"{name}__accountName", "is not a storage account name (3-24 lower-case letters, digits)"))
    if client_id is not None and not GUID.fullmatch(client_id.lower()):
        problems.append((f"{name}__clientId", "is not a GUID"))
    uris: dict[str, str] = {}
    for service, uri in given.items():
        variable = f"{name}__{service}ServiceUri"
        if uri is None and account is None:
            problems.append((variable, f"required unless {name}__accountName is set"))
            continue
        try:
            uris[service] = check_url(uri or f"https://{account}.{service}.core.windows.net")
        except ValueError as error:
            problems.append((variable, str(error)))
    if problems:
        return None, problems
    return StorageConnection(
        setting=name,
        mode="identity",
        blob_service_uri=uris["blob"],
        table_service_uri=uris["table"],
        account_name=account,
        client_id=client_id.lower() if client_id else None,
    ), []
