"""Event Grid trigger `upload_events`: a scanner's `status.json` upload raises `scanner_upload` on its orchestration.

The storage account's system topic delivers `Microsoft.Storage.BlobCreated` (Event Grid schema) for
`{prefix}/{i}/status.json` in the scanner groups' uploads containers (infra/modules/upload_events.bicep). The host
invokes the function once per event of a delivered array. core.upload_events validates the event (the app's own
account, an uploads container, a scan prefix) and names the owning instance; the function then calls
`raise_event(instance_id, "scanner_upload", {"container", "prefix", "index"})` through the durable client it already
has (no extra role). Bad input is logged and dropped, never raised; so is an event for an instance that does not exist
or has ended (404/410). Any other failure of `raise_event` (5xx, connection) is raised after the batch, so Event Grid
redelivers it per its retry policy. Events are hints: the orchestration reads the truth from storage.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import azure.durable_functions as df
import azure.functions as func

from core.settings import get_settings
from core.upload_events import UPLOAD_EVENT_NAME, is_gone_or_unknown, parse_batch, storage_account_name

logger = logging.getLogger(__name__)

UPLOAD_EVENTS_FUNCTION = "upload_events"

bp = df.Blueprint()


class EventRaiser(Protocol):
    """The call of `df.DurableOrchestrationClient` that the function makes."""

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None: ...


class UploadEventError(RuntimeError):
    """Some events could not be raised for a transient reason; raised after the rest were, so Event Grid retries."""


@dataclass
class UploadOutcome:
    """Counts of one delivery: `received` = `raised` + `gone` + `rejected` + `duplicates` + `failed`."""

    received: int = 0
    raised: int = 0
    gone: int = 0
    rejected: int = 0
    duplicates: int = 0
    failed: int = 0


def event_as_dict(event: func.EventGridEvent) -> dict[str, Any]:
    """The Event Grid schema fields of the worker's `EventGridEvent` (as the host sent them)."""
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


async def raise_upload_events(
    client: EventRaiser, payload: object, *, account: str | None, uploads_prefix: str
) -> UploadOutcome:
    """Validate an event or an array of events and raise `scanner_upload` on each distinct owner.

    Raises UploadEventError (after trying every event) when `raise_event` failed for another reason than an unknown
    or finished instance.
    """
    outcome = UploadOutcome(received=len(payload) if isinstance(payload, list) else 1)
    if account is None:
        outcome.rejected = outcome.received
        logger.error("upload events: the app's storage account name is unknown; %d event(s) dropped", outcome.received)
        return outcome
    batch = parse_batch(payload, account=account, uploads_prefix=uploads_prefix)
    outcome.rejected, outcome.duplicates = len(batch.rejected), batch.duplicates
    for reason in batch.rejected:
        logger.warning("upload events: dropped %s", reason)
    errors: list[Exception] = []
    for event in batch.events:
        try:
            await client.raise_event(event.instance_id, UPLOAD_EVENT_NAME, event.event_data())
        except Exception as error:  # the SDK raises a plain Exception for every non-202 answer
            if is_gone_or_unknown(str(error), event.instance_id):
                outcome.gone += 1
                logger.info("upload events: %s does not exist or has ended; dropped", event.instance_id)
                continue
            outcome.failed += 1
            errors.append(error)
            logger.warning("upload events: raising on %s failed: %s", event.instance_id, type(error).__name__)
            continue
        outcome.raised += 1
    logger.info(
        "upload events received=%d raised=%d gone=%d rejected=%d duplicates=%d failed=%d",
        *asdict(outcome).values(),
        extra={"upload_events": asdict(outcome)},
    )
    if errors:
        raise UploadEventError(f"{len(errors)} upload event(s) could not be raised") from errors[0]
    return outcome


@bp.function_name(UPLOAD_EVENTS_FUNCTION)  # type: ignore[untyped-decorator]
@bp.event_grid_trigger(arg_name="event")  # type: ignore[untyped-decorator]
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def upload_events(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    """Event Grid trigger (one event per invocation): tell the owning orchestration that a status blob arrived."""
    settings = get_settings()
    storage = settings.storage
    secret = storage.connection_string.get_secret_value() if storage.connection_string else None
    account = storage_account_name(storage.account_name, secret, storage.blob_service_uri)
    await raise_upload_events(client, event_as_dict(event), account=account, uploads_prefix=settings.uploads_container)
