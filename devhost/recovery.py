"""Rebuild a DurableEngine's in-memory state from its SQLite store, so a killed devhost resumes where it stopped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devhost import history as h
from devhost.entities import EntityOperation, EntityState
from devhost.orchestration import InboxItem, Instance, ParentRef
from devhost.store import InstanceRow, Snapshot

if TYPE_CHECKING:
    from devhost.core import ActivityKey, EngineCore


def instance_row(inst: Instance) -> InstanceRow:
    """The persisted form of an instance."""
    parent = None
    if inst.parent is not None:
        parent = {
            "instance_id": inst.parent.instance_id,
            "execution_id": inst.parent.execution_id,
            "task_id": inst.parent.task_id,
        }
    return InstanceRow(
        inst.instance_id,
        inst.name,
        inst.execution_id,
        inst.status,
        inst.input_json,
        inst.output_json,
        inst.custom_status_json,
        h.format_timestamp(inst.created),
        h.format_timestamp(inst.updated),
        parent,
    )


def _instance(row: InstanceRow, events: list[h.Event]) -> Instance:
    parent = ParentRef(**row.parent) if row.parent else None
    inst = Instance(
        row.instance_id,
        row.name,
        row.execution_id,
        row.status,
        row.input,
        h.parse_timestamp(row.created),
        h.parse_timestamp(row.updated),
        parent,
        row.output,
        row.custom_status,
    )
    inst.history.commit(events)
    return inst


def restore(engine: EngineCore, snapshot: Snapshot) -> list[ActivityKey]:
    """Load instances, queued messages, timers and entities; return the activities to re-dispatch."""
    for row in snapshot.instances:
        engine._instances[row.instance_id] = _instance(row, snapshot.history.get(row.instance_id, []))
    for row_id, instance_id, execution_id, event in snapshot.inbox:
        inst = engine._instances.get(instance_id)
        if inst is not None:
            inst.inbox.append(InboxItem(row_id, execution_id, event))
            engine._mark_ready("orchestration", instance_id)
    launches: list[ActivityKey] = []
    for instance_id, execution_id, task_id, name, input_text in snapshot.activities:
        if engine._timer_live(instance_id, execution_id):
            key = (instance_id, execution_id, task_id)
            engine._inflight[key] = (name, input_text)
            launches.append(key)
    for instance_id, execution_id, timer_id, fire_at in snapshot.timers:
        engine._push_timer(instance_id, execution_id, timer_id, fire_at)
    for entity_id, (state_json, present) in snapshot.entities.items():
        engine._entities[entity_id] = EntityState(state_json, present)
    for row_id, entity_id, message in snapshot.entity_queue:
        engine._entities.setdefault(entity_id, EntityState()).queue.append(EntityOperation(row_id, message))
        engine._mark_ready("entity", entity_id)
    return launches
