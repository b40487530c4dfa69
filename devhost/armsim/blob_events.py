"""The storage account's Event Grid system topic, simulated: `Microsoft.Storage.BlobCreated` for the scanners' uploads.

When the simulated scanner uploads a blob, Azure Storage would publish `Microsoft.Storage.BlobCreated` to the account's
system topic, and the app's event subscription (infra/app/upload-events.bicep) would deliver those whose subject passes
its filter to the `upload_events` function. This module builds the same event (Event Grid schema, as on Microsoft's
"Azure Blob Storage as an Event Grid source" page, https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage:
`id`, `topic` = the account's resource id, `subject` = `/blobServices/default/containers/<c>/blobs/<name>`,
`eventType`, `eventTime`, `data` {api, clientRequestId, requestId, eTag, contentType, contentLength, blobType, url,
sequencer, storageDiagnostics}, `dataVersion` "", `metadataVersion` "1"), applies the subscription's filter and hands it
to a sink (the demo posts it to devhost's Event Grid webhook, as Event Grid does).

Timing: on a `VirtualClock` the scanner's results are uploaded at the virtual time each image finishes (a clock call,
devhost/wakeups.py) and the event is delivered at that same virtual time, in (time, blob) order; ids and request ids
are derived from the blob and the time, so the same scenario delivers the same events. On a real clock uploads stay
lazy (when the app next looks) and the event goes out at once. A failed delivery is logged and counted, never
retried: to the app that is a lost event, which must cost only latency (Event Grid would retry; being stricter is
allowed). `enabled=False` (scenario setting `ARMSIM_BLOB_EVENTS=false`) publishes nothing and schedules nothing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests

from devhost import clock as clock_mod

if TYPE_CHECKING:
    from devhost.armsim.groups import SimGroup

LOG = logging.getLogger("devhost.armsim.blob_events")
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
SUBJECT_PREFIX = "/blobServices/default/containers/"
DEFAULT_STORAGE_RESOURCE_GROUP = "rg-qscanner-app"
_NAMESPACE = uuid.UUID("6f1c2b1e-4c59-4a53-9d0b-7a2f0b1b5e11")

EventSink = Callable[[list[dict[str, Any]]], None]


def _iso7(when: datetime) -> str:
    """Event Grid's time format: seven fraction digits, `Z`."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def account_and_container(sas_url: str) -> tuple[str, str, str]:
    """(account, container, blob endpoint) of a container SAS URL, path-style (Azurite) or host-style (Azure)."""
    parts = urllib.parse.urlsplit(sas_url)
    segments = [unquoted for unquoted in (urllib.parse.unquote(s) for s in parts.path.split("/")) if unquoted]
    host = parts.hostname or ""
    if host.endswith(".blob.core.windows.net"):
        return host.split(".", 1)[0], segments[-1], f"{parts.scheme}://{parts.netloc}"
    return segments[0], segments[-1], f"{parts.scheme}://{parts.netloc}/{segments[0]}"


def blob_created_event(
    *,
    subscription: str,
    resource_group: str,
    account: str,
    endpoint: str,
    container: str,
    blob: str,
    size: int,
    content_type: str,
    when: datetime,
) -> dict[str, Any]:
    """One `Microsoft.Storage.BlobCreated` event (Event Grid schema) for a block blob PUT at `when`."""
    seed = f"{account}/{container}/{blob}@{when.isoformat()}"
    request = uuid.uuid5(_NAMESPACE, "request:" + seed)
    digest = hashlib.sha256(seed.encode()).hexdigest()
    micros = int(when.timestamp() * 1_000_000)
    return {
        "topic": (
            f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.Storage/storageAccounts/{account}"
        ),
        "subject": f"{SUBJECT_PREFIX}{container}/blobs/{blob}",
        "eventType": BLOB_CREATED,
        "eventTime": _iso7(when),
        "id": str(uuid.uuid5(_NAMESPACE, "event:" + seed)),
        "data": {
            "api": "PutBlob",
            "clientRequestId": str(uuid.uuid5(_NAMESPACE, "client:" + seed)),
            "requestId": str(request),
            "eTag": f'"0x8D{digest[:13].upper()}"',
            "contentType": content_type,
            "contentLength": size,
            "blobType": "BlockBlob",
            "url": f"{endpoint}/{container}/{urllib.parse.quote(blob)}",
            "sequencer": f"{micros:032x}",
            "storageDiagnostics": {"batchId": str(uuid.uuid5(_NAMESPACE, "batch:" + seed))},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


@dataclass
class BlobEvents:
    """The system topic and the app's one subscription: filter (subject prefix and suffix), sink, counters."""

    enabled: bool = True
    sink: EventSink | None = None
    subject_begins_with: str = SUBJECT_PREFIX
    subject_ends_with: str = "/status.json"
    storage_resource_group: str = DEFAULT_STORAGE_RESOURCE_GROUP
    clock: clock_mod.Clock | None = None  # the simulator's clock; None: the process clock
    published: int = 0
    delivered: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def active(self) -> bool:
        return self.enabled and self.sink is not None

    def attach(self, group: SimGroup, settle: Callable[[], None]) -> None:
        """Hook a new group: its uploads publish events; on a virtual clock, results upload when each image ends."""
        if not self.active:
            return
        group.on_upload = self.blob_uploaded
        clock = self.clock or clock_mod.current()
        if not isinstance(clock, clock_mod.VirtualClock) or group.plan is None or group.capacity_failure:
            return

        def upload_due() -> None:
            if not group.deleting:  # a deleted group's container stopped: nothing more is uploaded
                settle()

        for outcome in group.plan.images:
            if outcome.finished_at is not None:
                clock.call_at(outcome.finished_at, f"upload/{group.name}/{outcome.index:05d}", upload_due)

    def subscribe(self, sink: EventSink, uploads_container_prefix: str) -> None:
        """The app's subscription: status uploads of `{UPLOADS_CONTAINER}-*` containers go to `sink`."""
        self.sink = sink
        self.subject_begins_with = f"{SUBJECT_PREFIX}{uploads_container_prefix}-"

    def blob_uploaded(self, group: SimGroup, blob: str, size: int, content_type: str, when: datetime) -> None:
        """A blob PUT succeeded at virtual time `when`: publish its event if the subscription's filter passes it."""
        if not self.active or not group.sas_url:
            return
        account, container, endpoint = account_and_container(group.sas_url)
        subject = f"{SUBJECT_PREFIX}{container}/blobs/{blob}"
        if not (subject.startswith(self.subject_begins_with) and subject.endswith(self.subject_ends_with)):
            return
        event = blob_created_event(
            subscription=group.path_id.split("/")[2],
            resource_group=self.storage_resource_group,
            account=account,
            endpoint=endpoint,
            container=container,
            blob=blob,
            size=size,
            content_type=content_type,
            when=when,
        )
        with self._lock:
            self.published += 1
        clock = self.clock or clock_mod.current()
        if isinstance(clock, clock_mod.VirtualClock):
            clock.call_at(when, f"event/{container}/{blob}", lambda: self._deliver(event))
        else:
            self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        sink = self.sink
        if sink is None or not self.enabled:
            return
        try:
            sink([event])
        except Exception as error:  # a lost event: the app's polls are the backstop
            with self._lock:
                self.failed += 1
            LOG.warning("blob event for %s not delivered: %s", event["subject"], error)
            return
        with self._lock:
            self.delivered += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"published": self.published, "delivered": self.delivered, "failed": self.failed}


def webhook_sink(base_url: str, function_name: str, timeout_s: float = 60.0) -> EventSink:
    """Deliver as Event Grid does to the Functions host: POST the array to `/runtime/webhooks/eventgrid`.

    Any answer but 2xx raises (Event Grid counts it as a failed delivery).
    """

    def post(events: list[dict[str, Any]]) -> None:
        response = requests.post(
            f"{base_url}/runtime/webhooks/eventgrid",
            params={"functionName": function_name},
            headers={"aeg-event-type": "Notification"},
            json=events,
            timeout=timeout_s,
        )
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"Event Grid webhook answered HTTP {response.status_code}")

    return post
