"""Activity `wake_orchestrations`: the scan queue's hand, starting batch runners and raising events with the durable
client (entities cannot start or signal orchestrations in Python; docs/architecture.md "Scan queue").

Idempotent, so its retries are harmless: a runner that already exists is left alone, an event for an instance that
has finished (or never existed) is dropped (events are hints: every receiver reads the truth from storage).
"""

from __future__ import annotations

import logging
from typing import Any

import azure.durable_functions as df
from pydantic import BaseModel, ConfigDict, Field

from activities import names, telemetry
from activities.activity_registry import ACTIVITY_INPUT_NAME, validated

LOG = logging.getLogger(__name__)
MAX_WAKES = 2000
ACTIVE_RUNTIMES = frozenset({"Running", "Pending", "ContinuedAsNew"})
"""Runtime statuses of an instance that is still going (a singleton is not started again while in one)."""


def runtime_of(status: Any) -> str | None:
    """The runtime status in the durable client's answer as text (`Running`, ...); None when it has none (the SDK's
    answer for an instance that does not exist).
    """
    runtime = getattr(status, "runtime_status", None) if status is not None else None
    return None if runtime is None else str(getattr(runtime, "value", runtime))


orchestration_client_blueprint = df.Blueprint()


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StartOrchestration(_Payload):
    name: str = Field(min_length=1, max_length=100)
    instance_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
    input: dict[str, Any]


class RaiseEvent(_Payload):
    instance_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
    name: str = Field(min_length=1, max_length=100)
    data: dict[str, Any] | None = None


class WakeRequest(_Payload):
    """Input: orchestrations to start (batch runners), then events to raise (image_done, grants)."""

    starts: list[StartOrchestration] = Field(default_factory=list, max_length=MAX_WAKES)
    events: list[RaiseEvent] = Field(default_factory=list, max_length=MAX_WAKES)


async def wake(client: df.DurableOrchestrationClient, request: WakeRequest) -> dict[str, int]:
    """Start each runner unless it exists, raise each event unless its instance is gone; counts of each."""
    started = raised = 0
    telemetry.batches_granted(s.input.get("grant") or {} for s in request.starts)
    for start in request.starts:
        try:
            await client.start_new(start.name, start.instance_id, start.input)
            started += 1
        except Exception:
            status = await client.get_status(start.instance_id)
            if status is None or getattr(status, "runtime_status", None) is None:
                raise
    for event in request.events:
        try:
            await client.raise_event(event.instance_id, event.name, event.data)
            raised += 1
        except Exception as error:
            LOG.info("event %s for %s dropped: %s", event.name, event.instance_id, str(error)[:200])
    return {"started": started, "raised": raised}


@orchestration_client_blueprint.function_name(names.WAKE_ORCHESTRATIONS)  # type: ignore[untyped-decorator]
@orchestration_client_blueprint.activity_trigger(  # type: ignore[untyped-decorator]
    input_name=ACTIVITY_INPUT_NAME, activity=names.WAKE_ORCHESTRATIONS
)
@orchestration_client_blueprint.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def wake_orchestrations_activity(payload: Any, client: df.DurableOrchestrationClient) -> dict[str, int]:
    """Start batch runners and raise events (see `wake`)."""
    return await wake(client, validated(WakeRequest, payload))
