"""How the orchestrations call out: one retry policy for every activity, and entity ids (no I/O here)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from entities.names import ACI_QUOTA_ENTITY, IMAGE_LEASE_ENTITY

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


def lease_entity(key: str) -> df.EntityId:
    """The single-flight lease of one image key."""
    return df.EntityId(IMAGE_LEASE_ENTITY, key)


def quota_entity() -> df.EntityId:
    """The ACI quota gate."""
    return df.EntityId(ACI_QUOTA_ENTITY, QUOTA_ENTITY_KEY)
