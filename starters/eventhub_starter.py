"""The Event Hub starter: deployment messages in, one idempotent `scan_deployment` orchestration per target out."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import azure.durable_functions as df
import azure.functions as func

from activities.inventory_events import InventoryBatch, batch_time
from core.events import DeploymentEvent, InvalidMessage, parse_message
from core.exclusions import ExclusionRules
from core.naming import instance_id_for
from core.scope import exclusions_of, monitored_subscriptions, scoped_targets
from core.settings import get_settings
from core.trigger_bindings import load_event_hub_binding
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT_V2

logger = logging.getLogger(__name__)

EVENTHUB_STARTER_FUNCTION = "eventhub_starter"
MAX_RETRY_COUNT = "8"
MIN_RETRY_INTERVAL = "00:00:05"
MAX_RETRY_INTERVAL = "00:05:00"

bp = df.Blueprint()
_binding = load_event_hub_binding()


class InstanceStatus(Protocol):
    """What the starter reads of `DurableOrchestrationClient.get_status`: None when the instance does not exist."""

    @property
    def runtime_status(self) -> object | None: ...


class OrchestrationClient(Protocol):
    """The two calls of `df.DurableOrchestrationClient` that the starter makes."""

    async def get_status(self, instance_id: str) -> InstanceStatus: ...

    async def start_new(
        self, orchestration_function_name: str, instance_id: str | None = None, client_input: Any | None = None
    ) -> str: ...


class ScanStartError(RuntimeError):
    """Some targets of a batch could not be started; raised after the rest were, so the retry policy redelivers."""


@dataclass
class BatchOutcome:
    """Counts of one Event Hub batch; `targets` = `started` + `duplicates` + `failed`.

    `unmonitored` (subscription not in MONITORED_SUBSCRIPTIONS) and `excluded` (SCAN_EXCLUDE) are not targets.
    """

    received: int = 0
    targets: int = 0
    started: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    failed: int = 0
    unmonitored: int = 0
    excluded: int = 0


def orchestration_input(target: DeploymentEvent, options: Mapping[str, Any]) -> dict[str, Any]:
    """The input of `scan_deployment`: the target and the non-secret scan options, all plain JSON."""
    return {"event": target.model_dump(mode="json"), "options": dict(options)}


async def _exists(client: OrchestrationClient, instance_id: str) -> bool:
    status = await client.get_status(instance_id)
    return status is not None and status.runtime_status is not None


async def _start_one(
    client: OrchestrationClient,
    instance_id: str,
    target: DeploymentEvent,
    options: Mapping[str, Any],
    outcome: BatchOutcome,
) -> Exception | None:
    """Start the target's orchestration as `instance_id` unless it exists; return the error of a failed start."""
    try:
        if await _exists(client, instance_id):
            outcome.duplicates += 1
            return None
        await client.start_new(ORCHESTRATOR_SCAN_DEPLOYMENT_V2, instance_id, orchestration_input(target, options))
    except Exception as error:  # any client failure counts as transient: the batch is redelivered
        try:
            if await _exists(client, instance_id):  # lost a race with another delivery of the same event
                outcome.duplicates += 1
                return None
        except Exception:  # noqa: S110 - the first error is the one reported
            pass
        outcome.failed += 1
        logger.warning("could not start %s for %s: %s", instance_id, target.resource_id, type(error).__name__)
        return error
    outcome.started += 1
    logger.info("started %s for %s (%s)", instance_id, target.resource_id, target.kind)
    return None


async def start_scans(
    client: OrchestrationClient,
    bodies: Iterable[str | bytes],
    *,
    scanner_resource_group: str,
    options: Mapping[str, Any],
    scanner_subscription_id: str | None = None,
    monitored: Iterable[str] | None = None,
    exclusions: ExclusionRules | None = None,
    inventory: InventoryBatch | None = None,
) -> BatchOutcome:
    """Start one `scan_deployment` per target of the batch; raise ScanStartError after the batch if any start failed.

    Delivery is at least once and instance ids are deterministic, so a redelivered batch finds the instances it
    already started (`get_status`) and counts them as duplicates: raising after trying every target loses nothing.
    Targets outside `monitored` (when given) or excluded by `exclusions` are skipped with a logged reason.
    """
    outcome = BatchOutcome()
    seen: set[str] = set()
    errors: list[Exception] = []
    for body in bodies:
        outcome.received += 1
        try:
            parsed = parse_message(
                body, scanner_resource_group=scanner_resource_group, scanner_subscription_id=scanner_subscription_id
            )
        except InvalidMessage as error:
            outcome.rejected += 1
            logger.warning("rejected message %d: %s", outcome.received, error)
            continue
        if not parsed.recognised:
            outcome.rejected += 1
            logger.warning("rejected message %d: not a deployment event message", outcome.received)
        outcome.skipped += parsed.skipped
        if inventory is not None:  # writes and deletes for the inventory (activities/inventory_events.py)
            inventory.add(parsed)
        targets = parsed.targets
        if monitored is not None or exclusions is not None:
            scoped = scoped_targets(
                targets,
                monitored if monitored is not None else {t.subscription_id for t in targets},
                exclusions or ExclusionRules(),
            )
            outcome.unmonitored += scoped.unmonitored
            outcome.excluded += scoped.excluded
            targets = scoped.kept
        for target in targets:
            outcome.targets += 1
            instance_id = instance_id_for(target.resource_id, target.correlation_id)
            if instance_id in seen:
                outcome.duplicates += 1
                continue
            seen.add(instance_id)
            failure = await _start_one(client, instance_id, target, options, outcome)
            if failure is not None:
                errors.append(failure)
    if inventory is not None:
        errors += await inventory.start(client)
    logger.info(
        "event batch received=%d targets=%d started=%d duplicates=%d rejected=%d skipped=%d failed=%d unmonitored=%d excluded=%d",  # noqa: E501 - one literal: docs/operations.md quotes it
        *asdict(outcome).values(),
        extra={"batch": asdict(outcome)},
    )
    if errors:
        raise ScanStartError(f"{len(errors)} of {outcome.targets} scan(s) could not be started") from errors[0]
    return outcome


@bp.function_name(EVENTHUB_STARTER_FUNCTION)  # type: ignore[untyped-decorator]
@bp.retry(  # type: ignore[untyped-decorator]
    strategy="exponential_backoff",
    max_retry_count=MAX_RETRY_COUNT,
    minimum_interval=MIN_RETRY_INTERVAL,
    maximum_interval=MAX_RETRY_INTERVAL,
)
@bp.event_hub_message_trigger(  # type: ignore[untyped-decorator]
    arg_name="events",
    event_hub_name=_binding.eventhub_name,
    consumer_group=_binding.eventhub_consumer_group,
    connection=_binding.eventhub_connection,
    cardinality=func.Cardinality.MANY,
)
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def eventhub_starter(events: list[func.EventHubEvent], client: df.DurableOrchestrationClient) -> None:
    """Event Hub trigger (cardinality many): start the scans of a batch of deployment messages."""
    settings = get_settings()
    options = settings.scan_options().model_dump(mode="json")
    await start_scans(
        client,
        [event.get_body() for event in events],
        scanner_resource_group=settings.scanner_resource_group,
        scanner_subscription_id=str(settings.azure_subscription_id),
        options=options,
        monitored=monitored_subscriptions(settings),
        exclusions=exclusions_of(settings),
        inventory=InventoryBatch(settings, now=batch_time(event.enqueued_time for event in events)),
    )
