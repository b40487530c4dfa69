"""Scanner upload events: a `Microsoft.Storage.BlobCreated` event for `{prefix}/{i}/status.json`, validated strictly.

Azure Event Grid delivers the storage account's BlobCreated events (Event Grid schema, as documented on Microsoft's
"Azure Blob Storage as an Event Grid source" page, https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage)
to the `upload_events` function. This module decides, without I/O, whether one event names a status blob of a scanner
group's uploads container in the app's own storage account, and which orchestration it belongs to:

- `topic` is `/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.Storage/storageAccounts/<account>` and
  `<account>` is the app's (account names are globally unique);
- `eventType` is `Microsoft.Storage.BlobCreated`; `id` a non-empty string; `data` an object whose `url`, when
  present, names the same container and blob;
- `subject` is `/blobServices/default/containers/<container>/blobs/<prefix>/<i>/status.json` with `<container>` =
  `{UPLOADS_CONTAINER}-<24 hex>` (core.naming.uploads_container_name), `<i>` a decimal index without leading zeros and
  `<prefix>`'s first segment `{instance_id}` or `{instance_id}-g<n>` (core.scan_plan.group_prefix), `instance_id`
  being `scan-<32 hex>` or `rescan-<32 hex>` (core.naming). A few further segments are allowed after the first.

Anything else is an `InvalidUploadEvent` with the reason; callers log and drop it. An event is only a hint that the
orchestration should look at storage now: a forged or repeated event costs latency, never correctness.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from core.naming import EVENT_INSTANCE_PREFIX, RESCAN_INSTANCE_PREFIX, UPLOADS_CONTAINER_HASH_CHARS

UPLOAD_EVENT_NAME = "scanner_upload"
"""The external event raised on the owning orchestration: data {"container": str, "prefix": str, "index": int}."""
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
STATUS_BLOB = "status.json"
MAX_INDEX = 9999
MAX_GROUP_NUMBER = 9999
MAX_EXTRA_PREFIX_SEGMENTS = 4

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_RESOURCE_GROUP = r"[-\w._()]{1,90}"
_TOPIC = re.compile(
    rf"/subscriptions/{_GUID}/resourceGroups/{_RESOURCE_GROUP}"
    r"/providers/Microsoft\.Storage/storageAccounts/(?P<account>[a-z0-9]{3,24})",
    re.IGNORECASE,
)
_SUBJECT = re.compile(r"/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<blob>.+)")
_INSTANCE = rf"(?:{re.escape(EVENT_INSTANCE_PREFIX)}|{re.escape(RESCAN_INSTANCE_PREFIX)})[0-9a-f]{{32}}"
_OWNER_SEGMENT = re.compile(rf"(?P<instance>{_INSTANCE})(?:-g(?P<group>[1-9][0-9]{{0,3}}))?")
_EXTRA_SEGMENT = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62})")
_INDEX = re.compile(r"0|[1-9][0-9]{0,3}")
_CONNECTION_ACCOUNT = re.compile(r"(?:^|;)\s*AccountName\s*=\s*([a-z0-9]{3,24})\s*(?:;|$)", re.IGNORECASE)


class InvalidUploadEvent(ValueError):
    """The event is not a status upload of one of this app's scanner groups (the message says why)."""


@dataclass(frozen=True)
class UploadEvent:
    """A valid status upload: which orchestration to tell, and what it should look at."""

    event_id: str
    instance_id: str
    container: str
    prefix: str
    index: int

    def event_data(self) -> dict[str, Any]:
        """The data of the `scanner_upload` external event."""
        return {"container": self.container, "prefix": self.prefix, "index": self.index}

    @property
    def key(self) -> tuple[str, str, str, int]:
        """Two events with the same key say the same thing (at-least-once delivery repeats them)."""
        return (self.instance_id, self.container, self.prefix, self.index)


@dataclass
class ParsedBatch:
    """A batch of events: the distinct valid ones in arrival order, and a reason per rejected one."""

    events: list[UploadEvent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    duplicates: int = 0


def uploads_container_pattern(uploads_prefix: str) -> re.Pattern[str]:
    """`{UPLOADS_CONTAINER}-<24 hex>`: the only containers whose status blobs mean anything."""
    return re.compile(rf"{re.escape(uploads_prefix)}-[0-9a-f]{{{UPLOADS_CONTAINER_HASH_CHARS}}}")


def owner_of_prefix(prefix: str) -> str:
    """The orchestration instance id of an uploads prefix (its first segment); InvalidUploadEvent if malformed."""
    first, *rest = prefix.split("/")
    match = _OWNER_SEGMENT.fullmatch(first)
    if match is None:
        raise InvalidUploadEvent(f"prefix {prefix[:120]!r} does not start with a scan instance id")
    if len(rest) > MAX_EXTRA_PREFIX_SEGMENTS or not all(_EXTRA_SEGMENT.fullmatch(part) for part in rest):
        raise InvalidUploadEvent(f"prefix {prefix[:120]!r} has unexpected segments")
    return match.group("instance")


def storage_account_name(
    account_name: str | None, connection_string: str | None = None, blob_service_uri: str | None = None
) -> str | None:
    """The app's storage account name from its connection setting: the name, a connection string, or the blob URI."""
    if account_name:
        return account_name.lower()
    if connection_string:
        found = _CONNECTION_ACCOUNT.search(connection_string)
        if found:
            return found.group(1).lower()
    if blob_service_uri:
        labels = (urlsplit(blob_service_uri).hostname or "").lower().split(".")
        # https://<account>.blob.<cloud suffix>/ (core.windows.net, core.chinacloudapi.cn, ...)
        if len(labels) > 3 and labels[1] == "blob" and re.fullmatch(r"[a-z0-9]{3,24}", labels[0]):
            return labels[0]
    return None


def _text(event: Mapping[str, Any], name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidUploadEvent(f"{name} missing or not a non-empty string")
    return value


def parse_upload_event(event: object, *, account: str, uploads_prefix: str) -> UploadEvent:
    """One Event Grid event (a JSON object) as an UploadEvent, or InvalidUploadEvent saying why not."""
    if not isinstance(event, Mapping):
        raise InvalidUploadEvent("event is not a JSON object")
    if "specversion" in event:
        raise InvalidUploadEvent("CloudEvents schema; the subscription must use the Event Grid schema")
    event_id = _text(event, "id")
    event_type = _text(event, "eventType")
    if event_type != BLOB_CREATED:
        raise InvalidUploadEvent(f"event type {event_type[:80]!r} is not {BLOB_CREATED}")
    topic = _TOPIC.fullmatch(_text(event, "topic"))
    if topic is None:
        raise InvalidUploadEvent("topic is not a storage account resource id")
    if topic.group("account").lower() != account.lower():
        raise InvalidUploadEvent(f"storage account {topic.group('account')!r} is not the app's")
    subject = _SUBJECT.fullmatch(_text(event, "subject"))
    if subject is None:
        raise InvalidUploadEvent("subject is not a blob subject")
    container, blob = subject.group("container"), subject.group("blob")
    if not uploads_container_pattern(uploads_prefix).fullmatch(container):
        raise InvalidUploadEvent(f"container {container[:80]!r} is not a scanner uploads container")
    parts = blob.split("/")
    if len(parts) < 3 or parts[-1] != STATUS_BLOB or not _INDEX.fullmatch(parts[-2]):
        raise InvalidUploadEvent(f"blob {blob[:120]!r} is not <prefix>/<index>/{STATUS_BLOB}")
    prefix, index_text = "/".join(parts[:-2]), parts[-2]
    instance_id = owner_of_prefix(prefix)
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise InvalidUploadEvent("data is not a JSON object")
    url = data.get("url")
    named = isinstance(url, str) and unquote(urlsplit(url).path).endswith(f"/{container}/{blob}")
    if url is not None and not named:
        raise InvalidUploadEvent("data.url does not name the subject's blob")
    return UploadEvent(event_id, instance_id, container, prefix, int(index_text))


def parse_batch(payload: object, *, account: str, uploads_prefix: str) -> ParsedBatch:
    """An event or a JSON array of events (Event Grid posts arrays); duplicates of a valid event are counted once."""
    items: Iterable[object] = payload if isinstance(payload, list) else [payload]
    batch = ParsedBatch()
    seen: set[tuple[str, str, str, int]] = set()
    for position, item in enumerate(items):
        try:
            parsed = parse_upload_event(item, account=account, uploads_prefix=uploads_prefix)
        except InvalidUploadEvent as error:
            batch.rejected.append(f"event {position}: {error}")
            continue
        if parsed.key in seen:
            batch.duplicates += 1
            continue
        seen.add(parsed.key)
        batch.events.append(parsed)
    return batch


def is_gone_or_unknown(message: str, instance_id: str) -> bool:
    """True when `raise_event` failed because the instance does not exist (404) or has ended (410).

    azure-functions-durable's `DurableOrchestrationClient.raise_event` raises a plain Exception whose message is
    exactly one of these two for those answers; anything else (5xx, connection errors) is transient.
    """
    return message in (
        f"No instance with ID {instance_id} found.",
        f"Instance with ID {instance_id} is gone: either completed or failed",
    )
