"""Function-based durable entities: one batch of queued operations through the SDK's entity protocol."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devhost import history as h
from devhost.actions import EXCEPTION_TYPE
from devhost.functions import FunctionEntry
from devhost.invoke import run_entity_batch

ENTITY_ERROR_TYPE = "Exception"


def scheduler_id(name: str, key: str) -> str:
    """The entity's instance id in the task hub: `@name@key`, name lower-cased (EntityId.get_scheduler_id)."""
    return f"@{name.lower()}@{key}"


def parse_scheduler_id(entity_id: str) -> tuple[str, str]:
    """(name, key) of an `@name@key` instance id."""
    name, _, key = entity_id[1:].partition("@")
    return name, key


@dataclass
class EntityOperation:
    """A queued operation: a call (answered) or a signal (fire-and-forget)."""

    row_id: int
    message: dict[str, Any]


@dataclass
class EntityReply:
    """The answer to a call: an EventRaised for the calling orchestration."""

    instance_id: str
    execution_id: str | None
    event: h.Event


@dataclass
class EntityState:
    """An entity's persisted state (JSON text) and whether it exists."""

    state_json: str | None = None
    exists: bool = False
    queue: list[EntityOperation] = field(default_factory=list)


def _reply_event(now: datetime, request_id: str, result_json: str, is_error: bool) -> h.Event:
    payload: dict[str, Any] = {"result": result_json}
    if is_error:
        payload[EXCEPTION_TYPE] = ENTITY_ERROR_TYPE
    return h.event_raised(now, request_id, json.dumps(payload))


def _replies(ops: list[EntityOperation], results: list[tuple[str, bool]], now: datetime) -> list[EntityReply]:
    replies = []
    for op, (result_json, is_error) in zip(ops, results, strict=True):
        message = op.message
        if message.get("signal") or not message.get("parent"):
            continue
        event = _reply_event(now, message["id"], result_json, is_error)
        replies.append(EntityReply(message["parent"], message.get("parentExecution"), event))
    return replies


def run_batch(
    entry: FunctionEntry | None, entity_id: str, entity: EntityState, ops: list[EntityOperation], now: datetime
) -> list[EntityReply]:
    """Run `ops` as one batch; updates `entity` in place and returns the replies to callers."""
    name, key = parse_scheduler_id(entity_id)
    if entry is None:
        error = json.dumps(f"The entity function '{name}' doesn't exist, is disabled, or is not an entity function.")
        return _replies(ops, [(error, True)] * len(ops), now)
    payload = {
        "self": {"name": name, "key": key},
        "state": entity.state_json if entity.exists else None,
        "exists": entity.exists,
        "batch": [{"name": op.message["op"], "input": json.dumps(op.message.get("input"))} for op in ops],
    }
    try:
        output = run_entity_batch(entry, payload)
    except Exception as exc:  # a framework-level failure fails every operation of the batch; state is kept
        error = json.dumps(f"Entity '{entity_id}' failed: {type(exc).__name__}: {exc}")
        return _replies(ops, [(error, True)] * len(ops), now)
    entity.exists = bool(output.get("entityExists"))
    entity.state_json = output.get("entityState") if entity.exists else None
    results = [(str(r.get("result")), bool(r.get("isError"))) for r in output.get("results") or []]
    results += [(json.dumps(None), False)] * (len(ops) - len(results))
    return _replies(ops, results, now)
