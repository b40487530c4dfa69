"""The inventory side of the Event Hub starter: successful writes and deletes of a batch applied to the inventory.

A write is read through ARM (the same calls as `resolve_images`) so the entry holds the workload as it is; a
resource already gone adds nothing (its delete comes, or the next sweep notices). A delete leaves a tombstone
(core/workloads.py). Deletes are never scan targets. Redelivery is harmless: an event already applied is stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from activities.arm_resources import in_scanner_resource_group, read_workload
from activities.clients import classify
from activities.inventory_store import record_delete, record_write, table
from core.events import DeploymentEvent, ParseResult
from core.images import InvalidImageRef, parse_image_ref
from core.settings import Settings
from core.workloads import MAX_IMAGES_PER_WORKLOAD, Observed, WorkloadImage

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


@dataclass
class InventoryBatch:
    """The writes and deletes of one Event Hub batch, applied after the batch's scans were started."""

    settings: Settings
    now: datetime | None = None
    """The batch's time: the events' enqueued time (the host's clock; devhost's virtual one), else the wall clock."""
    writes: dict[str, DeploymentEvent] = field(default_factory=dict)
    deletes: list[DeploymentEvent] = field(default_factory=list)

    def add(self, parsed: ParseResult) -> None:
        for target in parsed.targets:
            key = f"{target.resource_id.lower()}|{target.correlation_id}"
            self.writes.setdefault(key, target)
        self.deletes += [d for d in parsed.deletes if not in_scanner_resource_group(d, self.settings)]

    async def apply(self, now: datetime | None = None) -> list[Exception]:
        """Apply every event; the errors of those that failed (the caller raises so the batch is redelivered)."""
        return await asyncio.to_thread(self._apply_all, now or self.now or datetime.now(UTC))

    def _apply_all(self, now: datetime) -> list[Exception]:
        client = table(self.settings)
        ttl = timedelta(hours=self.settings.inventory_tombstone_hours)
        errors: list[Exception] = []
        events: Iterable[tuple[bool, DeploymentEvent]] = [(False, w) for w in self.writes.values()] + [
            (True, d) for d in self.deletes
        ]
        for is_delete, event in events:
            try:
                if is_delete:
                    record_delete(client, event, now, ttl)
                elif not in_scanner_resource_group(event, self.settings):
                    record_write(client, event, observe(event, self.settings), now)
            except Exception as error:  # one failure must not stop the rest; the batch is redelivered
                logger.warning(
                    "inventory: could not apply %s of %s: %s",
                    "delete" if is_delete else "write",
                    event.resource_id,
                    type(error).__name__,
                )
                errors.append(error)
        if self.writes or self.deletes:
            logger.info(
                "inventory: batch writes=%d deletes=%d failed=%d", len(self.writes), len(self.deletes), len(errors)
            )
        return errors


def batch_time(enqueued: Iterable[datetime | None]) -> datetime | None:
    """The latest enqueued time of a batch's events (UTC), None when none carries one."""
    times = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in enqueued if isinstance(t, datetime)]
    return max(times) if times else None
