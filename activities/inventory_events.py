"""The inventory side of the Event Hub starter: a batch's successful writes and deletes go to `inventory_events`
orchestrations (deterministic ids), whose activity applies them to the inventory with the activity retry policy.

A write is read through ARM (the same calls as `resolve_images`) so the entry holds the workload as it is; a
resource already gone adds nothing (its delete comes, or the next sweep notices). A delete leaves a tombstone
(core/workloads.py). Deletes are never scan targets. Redelivery is harmless: an event already applied is stale.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from pydantic import BaseModel, ConfigDict, Field

from activities import names
from activities.activity_registry import activity_registrar, validated
from activities.arm_resources import in_scanner_resource_group, read_workload
from activities.clients import classify
from activities.inventory_store import record_delete, record_write, table
from core.events import DeploymentEvent, ParseResult
from core.images import InvalidImageRef, parse_image_ref
from core.scope import monitored_subscriptions
from core.settings import Settings, get_settings
from core.workloads import MAX_IMAGES_PER_WORKLOAD, Observed, WorkloadImage
from orchestrators.names import ORCHESTRATOR_INVENTORY_EVENTS

logger = logging.getLogger(__name__)


def observe(event: DeploymentEvent, settings: Settings) -> Observed | None:
    """The workload as ARM shows it now; None when it no longer exists. ARM errors are classified (clients.py)."""
    try:
        location, containers = read_workload(event, settings)
    except ResourceNotFoundError:
        return None
    except HttpResponseError as error:
        raise classify(error) from error
    images: list[WorkloadImage] = []
    for name, image, init in containers:
        try:
            canonical = parse_image_ref(image or "").canonical
        except InvalidImageRef:
            continue  # resolve_images reports it on the scan; the inventory lists what it can name
        images.append(WorkloadImage(image=canonical, container=name or "", init=init))
    region = location.replace(" ", "").lower() if location else None
    return Observed(resource_id=event.resource_id, location=region, images=tuple(images[:MAX_IMAGES_PER_WORKLOAD]))


INVENTORY_INSTANCE_PREFIX = "inv-"
MAX_EVENTS_PER_UPDATE = 100
"""Events per `inventory_events` orchestration (its input stays small; a larger batch starts several)."""


class InventoryUpdate(BaseModel):
    """The input of `inventory_events` and of its activity: the batch's time and its writes and deletes."""

    model_config = ConfigDict(extra="forbid")

    now: datetime
    writes: list[DeploymentEvent] = Field(default_factory=list, max_length=MAX_EVENTS_PER_UPDATE)
    deletes: list[DeploymentEvent] = Field(default_factory=list, max_length=MAX_EVENTS_PER_UPDATE)


def update_instance_id(update: InventoryUpdate) -> str:
    """Deterministic: a redelivered batch finds the update it already started."""
    keys = sorted(
        f"{kind}|{e.resource_id.lower()}|{e.correlation_id}|{e.event_time.isoformat()}"
        for kind, events in (("w", update.writes), ("d", update.deletes))
        for e in events
    )
    return INVENTORY_INSTANCE_PREFIX + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32]


@dataclass
class InventoryBatch:
    """The writes and deletes of one Event Hub batch, handed to `inventory_events` orchestrations after the batch's
    scans were started (the starter itself needs neither ARM nor the inventory table).
    """

    settings: Settings
    now: datetime | None = None
    """The batch's time: the events' enqueued time (the host's clock; devhost's virtual one), else the wall clock."""
    writes: dict[str, DeploymentEvent] = field(default_factory=dict)
    deletes: list[DeploymentEvent] = field(default_factory=list)

    def add(self, parsed: ParseResult) -> None:
        """Keep the batch's writes and deletes in monitored subscriptions (others are skipped, as for scans)."""
        watched = set(monitored_subscriptions(self.settings))
        for target in parsed.targets:
            if target.subscription_id.lower() in watched:
                self.writes.setdefault(f"{target.resource_id.lower()}|{target.correlation_id}", target)
        self.deletes += [
            d
            for d in parsed.deletes
            if d.subscription_id.lower() in watched and not in_scanner_resource_group(d, self.settings)
        ]

    def updates(self) -> list[InventoryUpdate]:
        now = self.now or datetime.now(UTC)
        events = [(False, w) for w in self.writes.values()] + [(True, d) for d in self.deletes]
        chunks = [events[i : i + MAX_EVENTS_PER_UPDATE] for i in range(0, len(events), MAX_EVENTS_PER_UPDATE)]
        return [
            InventoryUpdate(now=now, writes=[e for d, e in chunk if not d], deletes=[e for d, e in chunk if d])
            for chunk in chunks
        ]

    async def start(self, client: Any) -> list[Exception]:
        """Start one `inventory_events` per chunk unless it exists; the errors of failed starts (batch redelivered)."""
        errors: list[Exception] = []
        for update in self.updates():
            instance_id = update_instance_id(update)
            try:
                status = await client.get_status(instance_id)
                if status is not None and getattr(status, "runtime_status", None) is not None:
                    continue
                await client.start_new(ORCHESTRATOR_INVENTORY_EVENTS, instance_id, update.model_dump(mode="json"))
            except Exception as error:  # transient like a scan start: the batch is redelivered
                logger.warning("inventory: could not start %s: %s", instance_id, type(error).__name__)
                errors.append(error)
        return errors


def apply_update(settings: Settings, update: InventoryUpdate) -> dict[str, int]:
    """Apply an update's events; raises after trying all if any failed (the activity is retried; applied events are
    stale the second time, so a retry changes nothing twice).
    """
    client = table(settings)
    ttl = timedelta(hours=settings.inventory_tombstone_hours)
    failed: list[Exception] = []
    for is_delete, event in [(False, w) for w in update.writes] + [(True, d) for d in update.deletes]:
        try:
            if is_delete:
                record_delete(client, event, update.now, ttl)
            elif not in_scanner_resource_group(event, settings):
                record_write(client, event, observe(event, settings), update.now)
        except Exception as error:  # one failure must not stop the rest
            logger.warning(
                "inventory: could not apply %s of %s: %s",
                "delete" if is_delete else "write",
                event.resource_id,
                type(error).__name__,
            )
            failed.append(error)
    if failed:
        raise failed[0]
    return {"writes": len(update.writes), "deletes": len(update.deletes)}


inventory_events_blueprint = df.Blueprint()
activity = activity_registrar(inventory_events_blueprint)


@activity(names.APPLY_INVENTORY_EVENTS)
def apply_inventory_events_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: `InventoryUpdate` -> counts."""
    return apply_update(get_settings(), validated(InventoryUpdate, payload))


def batch_time(enqueued: Iterable[datetime | None]) -> datetime | None:
    """The latest enqueued time of a batch's events (UTC), None when none carries one."""
    times = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in enqueued if isinstance(t, datetime)]
    return max(times) if times else None
