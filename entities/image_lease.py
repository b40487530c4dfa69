"""Entity `image_lease` (key: image key): single-flight per image, so one orchestration scans it at a time."""

from __future__ import annotations

import azure.durable_functions as df

from core.leases import LeaseQuery, LeaseRequest, LeaseState, ReleaseRequest, acquire_lease, read_lease, release_lease
from entities.names import ACQUIRE_OPERATION, GET_OPERATION, IMAGE_LEASE_ENTITY, RELEASE_OPERATION

bp = df.Blueprint()


def handle_lease_operation(
    operation: str | None, state: LeaseState, operation_input: object
) -> tuple[LeaseState, object]:
    """Apply one operation; returns the new state and the JSON-able result (raises ValueError for unknown ones)."""
    if operation == ACQUIRE_OPERATION:
        new_state, reply = acquire_lease(state, LeaseRequest.model_validate(operation_input))
        return new_state, reply.model_dump(mode="json")
    if operation == RELEASE_OPERATION:
        return release_lease(state, ReleaseRequest.model_validate(operation_input)), None
    if operation == GET_OPERATION:
        return state, read_lease(state, LeaseQuery.model_validate(operation_input).now).model_dump(mode="json")
    raise ValueError(f"unknown operation {operation!r} of entity {IMAGE_LEASE_ENTITY}")


@bp.function_name(name=IMAGE_LEASE_ENTITY)  # type: ignore[untyped-decorator]
@bp.entity_trigger(context_name="context", entity_name=IMAGE_LEASE_ENTITY)  # type: ignore[untyped-decorator]
def image_lease(context: df.DurableEntityContext) -> None:
    """Ops: acquire {instance_id, now, ttl_s} -> {granted, holder}; release {instance_id}; get {now}."""
    state = LeaseState.model_validate(context.get_state(dict) or {})
    new_state, result = handle_lease_operation(context.operation_name, state, context.get_input())
    context.set_state(new_state.model_dump(mode="json"))
    context.set_result(result)
