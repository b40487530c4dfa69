"""Which scanner groups (and uploads containers) the janitor deletes: old enough, no live orchestration (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

LIVE_RUNTIME_STATUSES = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
# Only these (or a definite "no such instance") let the janitor delete; any other answer keeps the group.
TERMINAL_RUNTIME_STATUSES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
# The status API did not give a definite answer (a 5xx, a body that is not a status, a connection error).
STATUS_UNREADABLE = "Unreadable"


class ScannerGroupInfo(BaseModel):
    """A scanner group (or its uploads container) as listed: name, owning orchestration, when it was created."""

    model_config = ConfigDict(frozen=True)

    name: str
    instance_id: str | None = None
    created_at: datetime | None = None


class JanitorDecision(BaseModel):
    """One group's fate and why (for the janitor's log line)."""

    model_config = ConfigDict(frozen=True)

    name: str
    delete: bool
    reason: str


def minimum_age(scan_timeout_s: int, grace_minutes: int) -> timedelta:
    """A group younger than SCAN_TIMEOUT + JANITOR_GRACE_MINUTES may still be scanning: never touched."""
    return timedelta(seconds=scan_timeout_s, minutes=grace_minutes)


def decide(
    groups: Iterable[ScannerGroupInfo],
    runtime_status: Mapping[str, str | None],
    *,
    now: datetime,
    scan_timeout_s: int,
    grace_minutes: int,
) -> list[JanitorDecision]:
    """Delete a group when it is older than the minimum age and its orchestration is not live.

    `runtime_status` maps instance ids to their runtime status (None: the status API said the instance does not
    exist, e.g. purged; STATUS_UNREADABLE: it gave no definite answer). Only None or a terminal status lets an old
    group go: a live, unreadable, unrecognised or missing status keeps it for a later run. A group without a creation
    time is kept (its age cannot be told); one without an instance tag is judged by age.
    """
    oldest_allowed = now - minimum_age(scan_timeout_s, grace_minutes)
    decisions: list[JanitorDecision] = []
    for group in groups:
        if group.created_at is None:
            decisions.append(JanitorDecision(name=group.name, delete=False, reason="creation time unknown"))
            continue
        if group.created_at > oldest_allowed:
            decisions.append(JanitorDecision(name=group.name, delete=False, reason="younger than the minimum age"))
            continue
        if group.instance_id and group.instance_id not in runtime_status:
            decisions.append(JanitorDecision(name=group.name, delete=False, reason="orchestration status not asked"))
            continue
        status = runtime_status.get(group.instance_id) if group.instance_id else None
        if status == STATUS_UNREADABLE:
            reason = "orchestration status unreadable"
            decisions.append(JanitorDecision(name=group.name, delete=False, reason=reason))
            continue
        if status is not None and status not in TERMINAL_RUNTIME_STATUSES:
            decisions.append(JanitorDecision(name=group.name, delete=False, reason=f"orchestration is {status}"))
            continue
        owner = f"orchestration {status}" if status else "no live orchestration"
        decisions.append(JanitorDecision(name=group.name, delete=True, reason=f"old and {owner}"))
    return decisions
