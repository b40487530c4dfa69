"""Entity `aci_quota` (key "scanner-groups", one region): a gate on scanner groups, their cores and the create rate."""

from __future__ import annotations

import azure.durable_functions as df

from core.leases import QuotaRequest, QuotaState, ReleaseRequest, acquire_quota, release_quota
from entities.names import ACI_QUOTA_ENTITY, ACQUIRE_OPERATION, GET_OPERATION, RELEASE_OPERATION

bp = df.Blueprint()


def handle_quota_operation(
    operation: str | None, state: QuotaState, operation_input: object
) -> tuple[QuotaState, object]:
    """Apply one operation; returns the new state and the JSON-able result (raises ValueError for unknown ones)."""
    if operation == ACQUIRE_OPERATION:
        new_state, reply = acquire_quota(state, QuotaRequest.model_validate(operation_input))
        return new_state, reply.model_dump(mode="json")
    if operation == RELEASE_OPERATION:
        return release_quota(state, ReleaseRequest.model_validate(operation_input)), None
    if operation == GET_OPERATION:
        return state, {"in_use": state.in_use(), "cores_in_use": state.cores_in_use(), "holders": sorted(state.holders)}
    raise ValueError(f"unknown operation {operation!r} of entity {ACI_QUOTA_ENTITY}")


@bp.function_name(name=ACI_QUOTA_ENTITY)  # type: ignore[untyped-decorator]
@bp.entity_trigger(context_name="context", entity_name=ACI_QUOTA_ENTITY)  # type: ignore[untyped-decorator]
def aci_quota(context: df.DurableEntityContext) -> None:
    """Ops: acquire {instance_id, groups, now, ttl_s, max_concurrent, cores_per_group, max_cores, max_creates_*}
    -> {granted, in_use, cores_in_use, reason}; release {instance_id}; get -> {in_use, cores_in_use, holders}.
    """
    state = QuotaState.model_validate(context.get_state(dict) or {})
    new_state, result = handle_quota_operation(context.operation_name, state, context.get_input())
    context.set_state(new_state.model_dump(mode="json"))
    context.set_result(result)
