"""The workload inventory in Table storage (INVENTORY_TABLE): a thin shell around core/workloads.py's rules.

Rows: PartitionKey = subscription id (lower case), RowKey = `w-<40 hex>` of the lower-cased resource id; property
`state` holds the entry or tombstone as JSON (`core.workloads.Workload` / `Tombstone`), with `kind`,
`resource_group` (lower case), `deleted` and `resource_id` beside it for queries. Every change is a read, the pure
rule, and a conditional write on the row's ETag (retried when another writer got there first), so concurrent
deliveries and sweeps never lose an update. Completed sweeps are rows of partition `sweeps` (RowKey = sweep id).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from pydantic import ValidationError

from activities.storage_clients import clients_for
from core.events import DeploymentEvent
from core.exclusions import ExclusionRules, is_excluded
from core.naming import image_key
from core.resource_ids import parse_resource_id
from core.settings import Settings
from core.workloads import (
    Observed,
    State,
    Tombstone,
    Workload,
    apply_delete,
    apply_sweep_seen,
    apply_write,
    vanished,
)

ROW_PREFIX = "w-"
INDEX_PREFIX = "i-"
INDEX_ROW_PREFIX = "r-"
SWEEPS_PARTITION = "sweeps"
STATE_PROPERTY = "state"
MAX_STATE_CHARS = 32_000
"""A Table string property holds 64 KiB (32K UTF-16 characters)."""
_ATTEMPTS = 6


class InventoryConflict(RuntimeError):
    """A row kept changing under concurrent writers; the caller retries (the batch is redelivered)."""


def row_key(resource_id: str) -> str:
    return ROW_PREFIX + hashlib.sha256(resource_id.lower().encode()).hexdigest()[:40]


def partition_of(resource_id: str) -> str:
    return parse_resource_id(resource_id).subscription_id


def table(settings: Settings) -> TableClient:
    return clients_for(settings).table(settings.inventory_table)


def state_of(entity: dict[str, Any] | None) -> State:
    """The entry or tombstone a row holds; None for no row (or a row the app cannot read, logged by callers)."""
    if entity is None:
        return None
    raw = str(entity.get(STATE_PROPERTY, ""))
    try:
        document = json.loads(raw)
        if isinstance(document, dict) and document.get("deleted") is True:
            return Tombstone.model_validate(document)
        return Workload.model_validate(document)
    except (ValueError, ValidationError):
        return None


def _entity(state: Workload | Tombstone) -> dict[str, Any]:
    text = state.model_dump_json()
    if len(text) > MAX_STATE_CHARS:
        raise ValueError(f"inventory entry of {state.resource_id} is {len(text)} characters, over {MAX_STATE_CHARS}")
    parts = parse_resource_id(state.resource_id)
    return {
        "PartitionKey": parts.subscription_id,
        "RowKey": row_key(state.resource_id),
        STATE_PROPERTY: text,
        "resource_id": parts.resource_id,
        "kind": parts.kind,
        "resource_group": parts.resource_group.lower(),
        "deleted": isinstance(state, Tombstone),
    }


def change(client: TableClient, resource_id: str, rule: Callable[[State], State]) -> tuple[State, State]:
    """Apply `rule` to the row of `resource_id` with optimistic concurrency; returns (before, after)."""
    partition, row = partition_of(resource_id), row_key(resource_id)
    for _ in range(_ATTEMPTS):
        try:
            current = client.get_entity(partition, row)
        except ResourceNotFoundError:
            current = None
        before = state_of(dict(current) if current is not None else None)
        after = rule(before)
        if after == before:
            return before, after
        try:
            if after is None:
                if current is not None:
                    client.delete_entity(
                        partition, row, etag=current.metadata["etag"], match_condition=MatchConditions.IfNotModified
                    )
            elif current is None:
                client.create_entity(_entity(after))
            else:
                client.update_entity(
                    _entity(after),
                    mode=UpdateMode.REPLACE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            continue
        _index(client, resource_id, before, after)
        return before, after
    raise InventoryConflict(f"inventory row of {resource_id} kept changing; gave up after {_ATTEMPTS} attempts")


def _images(state: State) -> set[str]:
    return set(state.distinct_images()) if isinstance(state, Workload) else set()


def _index(client: TableClient, resource_id: str, before: State, after: State) -> None:
    """Keep the image -> workloads index (partition `i-<image key>`) in step with a change (verified on read)."""
    row = INDEX_ROW_PREFIX + row_key(resource_id)[len(ROW_PREFIX) :]
    for image in _images(before) - _images(after):
        with contextlib.suppress(ResourceNotFoundError):
            client.delete_entity(INDEX_PREFIX + image_key(image), row)
    for image in _images(after) - _images(before):
        client.upsert_entity(
            {"PartitionKey": INDEX_PREFIX + image_key(image), "RowKey": row, "resource_id": resource_id}
        )


def workloads_running(client: TableClient, image: str, limit: int) -> tuple[list[Workload], bool]:
    """Up to `limit` workloads running `image` (canonical), and whether there are more (from the index, checked)."""
    found: list[Workload] = []
    rows = client.query_entities("PartitionKey eq @pk", parameters={"pk": INDEX_PREFIX + image_key(image)})
    for entry in rows:
        resource_id = str(entry.get("resource_id", ""))
        try:
            current = client.get_entity(partition_of(resource_id), row_key(resource_id))
        except (ResourceNotFoundError, ValueError):
            continue
        state = state_of(dict(current))
        if isinstance(state, Workload) and image in state.distinct_images():
            if len(found) >= limit:
                return found, True
            found.append(state)
    return found, False


# --- events ---------------------------------------------------------------------------------------------------


def record_write(client: TableClient, event: DeploymentEvent, observed: Observed | None, now: datetime) -> State:
    """A write event, with the workload as ARM shows it now (None: gone since, nothing to add)."""
    if observed is None:
        return None
    return change(
        client, event.resource_id, lambda s: apply_write(s, observed, event.event_time, event.correlation_id, now)
    )[1]


def record_delete(client: TableClient, event: DeploymentEvent, now: datetime, ttl: timedelta) -> State:
    """A delete event: a tombstone unless the entry reflects a newer event."""

    def rule(state: State) -> State:
        return apply_delete(
            state, event.resource_id, event.event_time, event.correlation_id, now=now, tombstone_ttl=ttl
        )

    return change(client, event.resource_id, rule)[1]


# --- sweeps ---------------------------------------------------------------------------------------------------


def record_sweep_rows(
    client: TableClient, rows: Iterable[Observed], sweep_id: str, sweep_started: datetime, now: datetime
) -> int:
    """Apply one page of a sweep; returns how many entries it added."""
    added = 0
    for observed in rows:

        def rule(state: State, seen: Observed = observed) -> State:
            return apply_sweep_seen(state, seen, sweep_id, sweep_started, now)

        before, after = change(client, observed.resource_id, rule)
        added += int(not isinstance(before, Workload) and isinstance(after, Workload))
    return added


def entries(client: TableClient, subscription: str | None = None) -> Iterable[tuple[dict[str, Any], State]]:
    """Every workload/tombstone row (of one subscription when given), with its state."""
    if subscription is not None:
        query = client.query_entities("PartitionKey eq @pk", parameters={"pk": subscription.lower()})
    else:
        query = client.query_entities(
            "PartitionKey ne @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": SWEEPS_PARTITION, "lo": ROW_PREFIX, "hi": ROW_PREFIX[:-1] + chr(ord(ROW_PREFIX[-1]) + 1)},
        )
    for entity in query:
        if str(entity.get("RowKey", "")).startswith(ROW_PREFIX):
            yield dict(entity), state_of(dict(entity))


def remove_vanished(
    client: TableClient, subscriptions: Iterable[str], sweep_id: str, sweep_started: datetime, now: datetime
) -> int:
    """Remove the entries the sweep did not see (recorded before it started) and expired tombstones."""
    removed = 0
    for subscription in subscriptions:
        for entity, state in list(entries(client, subscription)):
            if isinstance(state, Tombstone) and not state.live(now):
                _delete_row(client, entity)
            elif vanished(state, sweep_id, sweep_started):
                _, after = change(
                    client,
                    str(entity["resource_id"]),
                    lambda s: None if vanished(s, sweep_id, sweep_started) else s,
                )
                removed += int(after is None)
    return removed


def _delete_row(client: TableClient, entity: dict[str, Any]) -> None:
    with contextlib.suppress(ResourceNotFoundError):
        client.delete_entity(entity["PartitionKey"], entity["RowKey"])


def images_of(client: TableClient, subscriptions: Iterable[str], exclusions: ExclusionRules | None = None) -> list[str]:
    """The distinct images of the live entries of `subscriptions`, sorted; with `exclusions` (SCAN_EXCLUDE), only
    those that may be scanned: none of an excluded workload (`rg:`, `resource:`), no excluded image (`image:`).
    """
    rules = exclusions or ExclusionRules()
    images: set[str] = set()
    for subscription in subscriptions:
        for _, state in entries(client, subscription):
            if isinstance(state, Workload) and not is_excluded(rules, resource_id=state.resource_id):
                images.update(image for image in state.distinct_images() if not is_excluded(rules, image=image))
    return sorted(images)


def record_sweep_run(client: TableClient, summary: dict[str, Any]) -> None:
    """Remember a finished sweep (its counts), for operators and the demo."""
    client.upsert_entity(
        {"PartitionKey": SWEEPS_PARTITION, "RowKey": str(summary["sweep_id"]), "summary": json.dumps(summary)},
        mode=UpdateMode.REPLACE,
    )


def sweep_runs(client: TableClient) -> list[dict[str, Any]]:
    """Every recorded sweep, oldest first (sweep ids sort by start time)."""
    rows = client.query_entities("PartitionKey eq @pk", parameters={"pk": SWEEPS_PARTITION})
    runs = [json.loads(str(row.get("summary", "{}"))) for row in rows]
    return sorted(runs, key=lambda run: str(run.get("sweep_id", "")))
