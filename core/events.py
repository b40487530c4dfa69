"""Deployment events: Activity Log, Event Grid and CloudEvents messages turned into scan targets."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.resource_ids import (
    DELETE_OPERATIONS,
    MAX_LOGGED_CHARS,
    TARGET_OPERATIONS,
    DeploymentKind,
    InvalidResourceId,
    ResourceParts,
    clip,
    parse_resource_id,
)

logger = logging.getLogger(__name__)

WRITE_SUCCESS_EVENT_TYPE = "microsoft.resources.resourcewritesuccess"
DELETE_SUCCESS_EVENT_TYPE = "microsoft.resources.resourcedeletesuccess"
ACTIVITY_LOG_SUCCESS = ("success", "succeeded")
ADMINISTRATIVE_CATEGORY = "administrative"
SUCCEEDED_STATUS = "succeeded"
MAX_CORRELATION_ID_CHARS = 128
_CORRELATION_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_CORRELATION_ID_CHARS}}}")


def _checked_correlation_id(value: str) -> str:
    """`value`, when it is a valid correlation id; ValueError otherwise."""
    if not _CORRELATION_ID.fullmatch(value):
        raise ValueError(
            f"correlation id must be 1-{MAX_CORRELATION_ID_CHARS} printable ASCII characters without spaces"
        )
    return value


class InvalidMessage(ValueError):
    """The Event Hub message body is not JSON (or not UTF-8)."""


class SkippedRecord(ValueError):
    """A garbled record that cannot be a scan target; the message says why (never escapes parse_*)."""


class _NotATarget(Exception):
    """A well-formed record that is not a successful container write (a start, a failure, another category)."""


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DeploymentEvent(BaseModel):
    """One scan target: a successful write of an ACI container group, ACA container app or ACA job."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DeploymentKind
    subscription_id: str
    resource_group: str
    name: str
    resource_id: str
    correlation_id: str
    event_time: datetime

    @field_validator("correlation_id")
    @classmethod
    def _printable_id(cls, value: str) -> str:
        return _checked_correlation_id(value)

    @field_validator("event_time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentEvent:
        parts = parse_resource_id(self.resource_id)
        if (parts.kind, parts.subscription_id, parts.resource_group, parts.name, parts.resource_id) != (
            self.kind,
            self.subscription_id,
            self.resource_group,
            self.name,
            self.resource_id,
        ):
            raise ValueError("kind, subscription_id, resource_group and name must match the ARM-cased resource_id")
        return self

    @classmethod
    def from_parts(cls, parts: ResourceParts, correlation_id: str, event_time: datetime) -> DeploymentEvent:
        """A target from a parsed resource id; the parts are already valid, so only the rest is checked here."""
        correlation_id = _checked_correlation_id(correlation_id.lower())
        return cls.model_construct(
            kind=parts.kind,
            subscription_id=parts.subscription_id,
            resource_group=parts.resource_group,
            name=parts.name,
            resource_id=parts.resource_id,
            correlation_id=correlation_id,
            event_time=_as_utc(event_time),
        )

    def in_resource_group(self, subscription_id: str, resource_group: str) -> bool:
        """Whether the target lives in that resource group (ARM compares both names case-insensitively)."""
        return (
            self.subscription_id.lower() == subscription_id.lower()
            and self.resource_group.casefold() == resource_group.casefold()
        )


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ActivityLogRecord(_Lenient):
    """One record of an Activity Log diagnostic export (`{"records": [...]}`); ids are often upper-cased."""

    time: datetime
    resource_id: str = Field(alias="resourceId")
    operation_name: str | dict[str, Any] = Field(alias="operationName")
    result_type: str | None = Field(default=None, alias="resultType")
    correlation_id: str = Field(alias="correlationId")
    properties: dict[str, Any] = Field(default_factory=dict)
    identity: dict[str, Any] = Field(default_factory=dict)


class EventGridData(_Lenient):
    """The `data` of a Microsoft.Resources event (Event Grid schema or CloudEvents)."""

    operation_name: str = Field(alias="operationName")
    resource_uri: str | None = Field(default=None, alias="resourceUri")
    correlation_id: str | None = Field(default=None, alias="correlationId")
    status: str | None = None


class EventGridEvent(_Lenient):
    """An Event Grid schema event from a subscription system topic."""

    id: str
    event_type: str = Field(alias="eventType")
    subject: str
    event_time: datetime = Field(alias="eventTime")
    data: EventGridData


class CloudEvent(_Lenient):
    """A CloudEvents 1.0 event as Event Grid delivers it."""

    specversion: str
    id: str
    type: str
    source: str
    subject: str | None = None
    time: datetime
    data: EventGridData


@dataclass(slots=True)
class ParseResult:
    """Targets of one message, plus counts for the starter's batch log line."""

    targets: list[DeploymentEvent] = field(default_factory=list)
    deletes: list[DeploymentEvent] = field(default_factory=list)
    """Successful deletes of the same three kinds (inventory removals; never scan targets)."""
    records: int = 0
    skipped: int = 0
    recognised: bool = True


def _operation(value: object) -> str | None:
    """The lower-case operation name; the Activity Log REST shape nests it as {"value": ...}."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, Mapping) and isinstance(value.get("value"), str):
        return str(value["value"]).lower()
    return None


def _cased_id(record: ActivityLogRecord) -> str:
    """The resource id in its original case when the record carries one (the export upper-cases resourceId)."""
    scope = record.identity.get("authorization", {}) if isinstance(record.identity, dict) else {}
    for candidate in (record.properties.get("entity"), scope.get("scope") if isinstance(scope, dict) else None):
        if isinstance(candidate, str) and candidate.lower() == record.resource_id.lower():
            return candidate
    return record.resource_id


def _from_activity_log(raw: Mapping[str, Any], operation: str) -> tuple[ResourceParts, str, datetime]:
    record = ActivityLogRecord.model_validate(raw)
    if (record.result_type or "").lower() not in ACTIVITY_LOG_SUCCESS:
        raise _NotATarget(f"resultType {clip(record.result_type)} is not Success")
    category = record.properties.get("eventCategory")
    if isinstance(category, str) and category.lower() != ADMINISTRATIVE_CATEGORY:
        raise _NotATarget(f"eventCategory {clip(category)} is not Administrative")
    status = record.properties.get("status")
    if isinstance(status, str) and status.lower() != SUCCEEDED_STATUS:
        raise _NotATarget(f"status {clip(status)} is not Succeeded")
    parts = parse_resource_id(_cased_id(record), _resource_type(operation))
    return parts, record.correlation_id, record.time


def _from_resource_event(
    subject: str | None, data: EventGridData, event_id: str, operation: str
) -> tuple[ResourceParts, str]:
    if data.status is not None and data.status.lower() != SUCCEEDED_STATUS:
        raise _NotATarget(f"status {clip(data.status)} is not Succeeded")
    resource_id = data.resource_uri or subject
    if resource_id is None:
        raise SkippedRecord("no resourceUri or subject")
    parts = parse_resource_id(resource_id, _resource_type(operation))
    return parts, data.correlation_id or event_id


def _resource_type(operation: str) -> str:
    """`microsoft.app/jobs` of `microsoft.app/jobs/write` or `.../delete`."""
    return operation.rsplit("/", 1)[0]


def _record(raw: Mapping[str, Any]) -> tuple[bool, DeploymentEvent] | None:
    """(is_delete, event) of a successful write or delete of a target kind; None when plainly neither."""
    data = raw.get("data")
    if "specversion" in raw or "eventType" in raw:
        event_type = raw.get("type") if "specversion" in raw else raw.get("eventType")
        event_type = event_type.lower() if isinstance(event_type, str) else None
        if event_type not in (WRITE_SUCCESS_EVENT_TYPE, DELETE_SUCCESS_EVENT_TYPE):
            return None
        if not isinstance(data, Mapping):
            raise SkippedRecord("no data object")
        operation = _operation(data.get("operationName"))
        if operation is None:
            raise SkippedRecord("no data.operationName")
        operations = DELETE_OPERATIONS if event_type == DELETE_SUCCESS_EVENT_TYPE else TARGET_OPERATIONS
        if operation not in operations:
            return None
        is_delete = operations is DELETE_OPERATIONS
        if "specversion" in raw:
            cloud = CloudEvent.model_validate(raw)
            parts, correlation = _from_resource_event(cloud.subject, cloud.data, cloud.id, operation)
            return is_delete, DeploymentEvent.from_parts(parts, correlation, cloud.time)
        grid = EventGridEvent.model_validate(raw)
        parts, correlation = _from_resource_event(grid.subject, grid.data, grid.id, operation)
        return is_delete, DeploymentEvent.from_parts(parts, correlation, grid.event_time)
    operation = _operation(raw.get("operationName"))
    if operation is None:
        raise SkippedRecord("no operationName")
    if operation not in TARGET_OPERATIONS and operation not in DELETE_OPERATIONS:
        return None
    parts, correlation, when = _from_activity_log(raw, operation)
    return operation in DELETE_OPERATIONS, DeploymentEvent.from_parts(parts, correlation, when)


def _items(document: object, result: ParseResult) -> Iterator[object]:
    """The records/events of a message: `{"records": [...]}`, one event, or an array of either."""
    if isinstance(document, dict):
        records = document.get("records")
        if "records" in document and not isinstance(records, list):
            result.recognised = False
            return
        yield from records if isinstance(records, list) else (document,)
    elif isinstance(document, list):
        for item in document:
            inner = item.get("records") if isinstance(item, dict) else None
            yield from inner if isinstance(inner, list) else (item,)
    else:
        result.recognised = False


def _load(body: str | bytes | bytearray | memoryview) -> object:
    try:
        if isinstance(body, memoryview | bytearray):
            body = bytes(body)
        return json.loads(body)
    except (ValueError, TypeError, RecursionError) as error:
        raise InvalidMessage(f"message body is not JSON: {type(error).__name__}") from None


def parse_message(
    body: str | bytes, *, scanner_resource_group: str, scanner_subscription_id: str | None = None
) -> ParseResult:
    """Parse one Event Hub message; raise InvalidMessage only when the body is not JSON.

    Writes in the scanner's resource group are never targets: in `scanner_subscription_id` when given, else in a
    resource group of that name in any subscription.
    """
    result = ParseResult()
    scanner_rg = scanner_resource_group.casefold()
    scanner_sub = scanner_subscription_id.lower() if scanner_subscription_id else None
    seen: set[str] = set()
    debug = logger.isEnabledFor(logging.DEBUG)
    for item in _items(_load(body), result):
        result.records += 1
        if not isinstance(item, dict):
            result.skipped += 1
            logger.info("skipped a record: not a JSON object (%s)", type(item).__name__)
            continue
        try:
            found = _record(item)
        except _NotATarget as reason:
            if debug:
                logger.debug("ignored a record: %s", reason)
            continue
        except ValueError as error:  # ValidationError, SkippedRecord, InvalidResourceId
            result.skipped += 1
            _log_skip(item, error)
            continue
        if found is None:
            if debug:
                logger.debug("ignored a record: not a container write or delete")
            continue
        is_delete, target = found
        if target.resource_group.casefold() == scanner_rg and scanner_sub in (None, target.subscription_id):
            if debug:
                logger.debug("ignored a write in the scanner's resource group: %s", clip(target.resource_id))
            continue
        if is_delete:
            result.deletes.append(target)
            continue
        key = target.resource_id.lower()
        if key not in seen:
            seen.add(key)
            result.targets.append(target)
    return result


def _log_skip(item: Mapping[str, Any], error: Exception) -> None:
    if isinstance(error, ValidationError):
        fields = ",".join(".".join(str(p) for p in e["loc"]) for e in error.errors(include_input=False)[:5])
        reason = f"missing or garbled fields: {fields}"
    else:
        reason = str(error)
    resource = item.get("resourceId") or item.get("subject") or item.get("id")
    logger.info("skipped a record (%s): %s", clip(resource), clip(reason))


def parse_deployment_events(
    body: str | bytes, *, scanner_resource_group: str, scanner_subscription_id: str | None = None
) -> list[DeploymentEvent]:
    """The scan targets of one Event Hub message, one per resource, never in the scanner's resource group."""
    return parse_message(
        body, scanner_resource_group=scanner_resource_group, scanner_subscription_id=scanner_subscription_id
    ).targets


__all__ = [
    "MAX_LOGGED_CHARS",
    "DeploymentEvent",
    "DeploymentKind",
    "InvalidMessage",
    "InvalidResourceId",
    "ParseResult",
    "ResourceParts",
    "SkippedRecord",
    "parse_deployment_events",
    "parse_message",
    "parse_resource_id",
]
