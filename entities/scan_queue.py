"""Entity `scan_queue` (one per app, key QUEUE_ENTITY_KEY): the fair scan queue, a thin shell over core.scan_queue."""

from __future__ import annotations

import azure.durable_functions as df

from core.scan_queue import QueueState, apply
from entities.names import SCAN_QUEUE_ENTITY

bp = df.Blueprint()


@bp.function_name(name=SCAN_QUEUE_ENTITY)  # type: ignore[untyped-decorator]
@bp.entity_trigger(context_name="context", entity_name=SCAN_QUEUE_ENTITY)  # type: ignore[untyped-decorator]
def scan_queue(context: df.DurableEntityContext) -> None:
    """Ops (core.scan_queue.OPERATIONS): enqueue, finish_image, release, tick, status, withdraw."""
    state = QueueState.model_validate(context.get_state(dict) or {})
    new_state, result = apply(context.operation_name, state, context.get_input())
    context.set_state(new_state.model_dump(mode="json", exclude_defaults=True))
    context.set_result(result)
