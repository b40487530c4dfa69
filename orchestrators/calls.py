"""How the orchestrations call out: one retry policy for every activity, and entity ids (no I/O here).

The durable retry options of Python cannot tell errors apart, so an ARM activity answers an error that retrying
cannot fix (401/403, 404 that is not an answer, 400 that is not quota) instead of raising it: `checked` turns that
answer into `NonRetryableActivityError` in the orchestrator, which then takes the same failure path as for a final
activity failure, after one attempt instead of ACTIVITY_MAX_ATTEMPTS. The scheduled actions do not change: the same
CallActivityWithRetry, only its outcome (a result instead of a failure) is new.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities.names import NON_RETRYABLE_ERROR_KEY
from entities.names import ACI_QUOTA_ENTITY, IMAGE_LEASE_ENTITY, SCAN_QUEUE_ENTITY

ACTIVITY_FIRST_RETRY_MS = 15_000
ACTIVITY_MAX_ATTEMPTS = 5
"""Five attempts 15 s apart ride out ARM throttling (Retry-After is usually well under a minute) and 5xx blips."""
ACTIVITY_RETRY = df.RetryOptions(
    first_retry_interval_in_milliseconds=ACTIVITY_FIRST_RETRY_MS, max_number_of_attempts=ACTIVITY_MAX_ATTEMPTS
)
QUOTA_ENTITY_KEY = "scanner-groups"
"""One gate for the app: it creates every scanner group in one resource group and region (SCANNER_LOCATION)."""


def call(context: df.DurableOrchestrationContext, activity: str, payload: Any) -> Any:
    """Schedule `activity` with the app's retry policy; returns the task to yield."""
    return context.call_activity_with_retry(activity, ACTIVITY_RETRY, payload)


class NonRetryableActivityError(RuntimeError):
    """An activity answered an error that retrying cannot fix; the message is the activity's classified error."""


def checked(activity: str, answer: Any) -> Any:
    """`answer`, unless it is an activity's non-retryable error answer: then raise `NonRetryableActivityError`."""
    if isinstance(answer, dict) and NON_RETRYABLE_ERROR_KEY in answer:
        detail = answer[NON_RETRYABLE_ERROR_KEY]
        message = detail.get("message") if isinstance(detail, dict) else None
        raise NonRetryableActivityError(f"{activity} failed (not retried): {message or detail}")
    return answer


def lease_entity(key: str) -> df.EntityId:
    """The single-flight lease of one image key."""
    return df.EntityId(IMAGE_LEASE_ENTITY, key)


def quota_entity() -> df.EntityId:
    """The ACI quota gate."""
    return df.EntityId(ACI_QUOTA_ENTITY, QUOTA_ENTITY_KEY)


QUEUE_ENTITY_KEY = "app"
"""One scan queue for the app (all scanner groups live in one resource group and region)."""


def queue_entity() -> df.EntityId:
    """The app's scan queue (core.scan_queue)."""
    return df.EntityId(SCAN_QUEUE_ENTITY, QUEUE_ENTITY_KEY)
