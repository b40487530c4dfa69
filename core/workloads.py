"""The workload inventory's pure rules: one entry per container group, container app or job, kept right whatever
the order, repetition or source (events, Resource Graph sweeps) of what the app learns.

Ordering. Every event carries the ARM time of its operation (Event Grid `eventTime`, the Activity Log record's
`time`) and a tie-break (the correlation id). An entry or a tombstone remembers the order key `(time, rank, tiebreak)`
of the event it reflects (`rank` 0 for a write, 1 for a delete, so a delete wins a tie). An event whose key is not
newer than the one remembered is stale and changes nothing, so any permutation or repetition of a set of events ends
in the state of the newest one (tests/unit/test_workloads_properties.py).

Deletes leave a tombstone for `tombstone_ttl` (INVENTORY_TOMBSTONE_HOURS): a write older than the delete that
arrives late (the Activity Log route delivers in 10-15 minutes, the starter may be retried) cannot resurrect the
entry. An expired tombstone is as good as nothing.

Sweeps. A Resource Graph row reflects the resource when the sweep read it, a time on the app's clock rather than an
ARM event time, so sweeps compare by when the app recorded a state (`recorded_at`):
- a row refreshes an entry recorded before the sweep started (its event order key is kept: a later stale event is
  still recognised); an entry recorded since the sweep started (an event arrived meanwhile) is newer and kept;
- a row never resurrects a live tombstone (Resource Graph may still list a resource for a while after its delete;
  a real re-creation comes with its own write event, newer than the delete);
- a row of an unknown resource adds it (backfill), with no event order key: any later event applies;
- an entry recorded before the sweep started that the sweep did not see has vanished and is removed (no tombstone:
  a late write of it resolves through ARM to "not found" and adds nothing).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.resource_ids import DeploymentKind, parse_resource_id

MAX_IMAGES_PER_WORKLOAD = 120
"""ACI allows 60 containers (+ init containers) per group; an ACA template is bounded likewise."""
WRITE_RANK, DELETE_RANK = 0, 1

OrderKey = tuple[datetime, int, str]


class WorkloadImage(BaseModel):
    """One container's image (canonical reference) of a workload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    container: str = ""
    init: bool = False


class Observed(BaseModel):
    """What was read of a workload (through ARM after a write event, or from a Resource Graph row)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resource_id: str
    location: str | None = None
    images: tuple[WorkloadImage, ...] = Field(default=(), max_length=MAX_IMAGES_PER_WORKLOAD)


class Workload(BaseModel):
    """An inventory entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resource_id: str
    kind: DeploymentKind
    subscription_id: str
    resource_group: str
    name: str
    location: str | None = None
    images: tuple[WorkloadImage, ...] = ()
    first_seen: datetime
    last_seen: datetime
    event_time: datetime | None = None
    """The ARM time of the event this entry reflects; None when only sweeps have seen it."""
    event_rank: int = WRITE_RANK
    event_tiebreak: str = ""
    recorded_at: datetime
    swept_by: str | None = None

    @property
    def order_key(self) -> OrderKey | None:
        return None if self.event_time is None else (self.event_time, self.event_rank, self.event_tiebreak)

    def distinct_images(self) -> list[str]:
        """The canonical images, each once, in container order."""
        return list(dict.fromkeys(item.image for item in self.images))


class Tombstone(BaseModel):
    """A deleted workload, remembered until `expires_at` so that older writes cannot bring it back."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resource_id: str
    event_time: datetime
    event_tiebreak: str = ""
    recorded_at: datetime
    expires_at: datetime
    deleted: Literal[True] = True

    @property
    def order_key(self) -> OrderKey:
        return (self.event_time, DELETE_RANK, self.event_tiebreak)

    def live(self, now: datetime) -> bool:
        return now < self.expires_at


State = Workload | Tombstone | None


def _live(state: State, now: datetime) -> State:
    return None if isinstance(state, Tombstone) and not state.live(now) else state


def _entry(observed: Observed, state: State, now: datetime) -> Workload:
    parts = parse_resource_id(observed.resource_id)
    first = state.first_seen if isinstance(state, Workload) else now
    return Workload(
        resource_id=parts.resource_id,
        kind=parts.kind,
        subscription_id=parts.subscription_id,
        resource_group=parts.resource_group,
        name=parts.name,
        location=observed.location,
        images=observed.images,
        first_seen=first,
        last_seen=now,
        recorded_at=now,
    )


def is_stale(state: State, key: OrderKey, now: datetime) -> bool:
    """Whether an event with order key `key` is not newer than what `state` reflects."""
    current = _live(state, now)
    existing = current.order_key if current is not None else None
    return existing is not None and key <= existing


def apply_write(state: State, observed: Observed, event_time: datetime, tiebreak: str, now: datetime) -> State:
    """A successful write, with the workload as read after it; a stale write changes nothing."""
    key = (event_time, WRITE_RANK, tiebreak)
    if is_stale(state, key, now):
        return state
    entry = _entry(observed, _live(state, now), now)
    return entry.model_copy(update={"event_time": event_time, "event_rank": WRITE_RANK, "event_tiebreak": tiebreak})


def apply_delete(
    state: State, resource_id: str, event_time: datetime, tiebreak: str, *, now: datetime, tombstone_ttl: timedelta
) -> State:
    """A successful delete: a tombstone unless the state already reflects a newer event."""
    if is_stale(state, (event_time, DELETE_RANK, tiebreak), now):
        return state
    return Tombstone(
        resource_id=parse_resource_id(resource_id).resource_id,
        event_time=event_time,
        event_tiebreak=tiebreak,
        recorded_at=now,
        expires_at=now + tombstone_ttl,
    )


def apply_sweep_seen(state: State, observed: Observed, sweep_id: str, sweep_started: datetime, now: datetime) -> State:
    """A Resource Graph row of a sweep that started at `sweep_started` (see the module docstring)."""
    current = _live(state, now)
    if isinstance(current, Tombstone):
        return current
    if isinstance(current, Workload) and current.recorded_at >= sweep_started:
        return current.model_copy(update={"swept_by": sweep_id})
    entry = _entry(observed, current, now)
    keep = (
        {"event_time": current.event_time, "event_rank": current.event_rank, "event_tiebreak": current.event_tiebreak}
        if isinstance(current, Workload)
        else {}
    )
    return entry.model_copy(update={**keep, "swept_by": sweep_id})


def vanished(state: State, sweep_id: str, sweep_started: datetime) -> bool:
    """Whether a sweep that listed every monitored workload and did not see this entry should remove it."""
    return isinstance(state, Workload) and state.swept_by != sweep_id and state.recorded_at < sweep_started
