"""Pure state transitions of the single-flight image lease and the ACI quota gate (the entities stay thin)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from core.options import ACI_CREATES_PER_5_MINUTES, ACI_CREATES_PER_HOUR, ACI_STANDARD_CORES

_HOUR = timedelta(hours=1)
_FIVE_MINUTES = timedelta(minutes=5)


class LeaseRequest(BaseModel):
    """`acquire` input of an image lease: who asks, the orchestration's current time and how long the lease lasts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_id: str = Field(min_length=1)
    now: datetime
    ttl_s: int = Field(ge=1)


class LeaseQuery(BaseModel):
    """`get` input of an image lease: the orchestration's current time (a lapsed lease has no holder)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    now: datetime


class ReleaseRequest(BaseModel):
    """`release` input of a lease or quota hold: only the holder can release."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_id: str = Field(min_length=1)


class LeaseState(BaseModel):
    """The state of one image's lease: the holding orchestration and when the lease lapses on its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holder: str | None = None
    expires_at: datetime | None = None

    def live_holder(self, now: datetime) -> str | None:
        """The holder, unless the lease has lapsed (a crashed holder never blocks an image forever)."""
        if self.holder is None or self.expires_at is None or self.expires_at <= now:
            return None
        return self.holder


class LeaseReply(BaseModel):
    """Answer to `acquire` and `get`: whether the caller holds the lease, and who does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    granted: bool
    holder: str | None


def acquire_lease(state: LeaseState, request: LeaseRequest) -> tuple[LeaseState, LeaseReply]:
    """Grant the lease when it is free, lapsed or already the caller's (idempotent on replay); else name the holder."""
    holder = state.live_holder(request.now)
    if holder not in (None, request.instance_id):
        return state, LeaseReply(granted=False, holder=holder)
    granted = LeaseState(holder=request.instance_id, expires_at=request.now + timedelta(seconds=request.ttl_s))
    return granted, LeaseReply(granted=True, holder=request.instance_id)


def release_lease(state: LeaseState, request: ReleaseRequest) -> LeaseState:
    """Free the lease if the caller holds it; a release by anyone else changes nothing."""
    return LeaseState() if state.holder == request.instance_id else state


def read_lease(state: LeaseState, now: datetime) -> LeaseReply:
    """Who holds the lease at `now` (`granted` is whether anyone does)."""
    holder = state.live_holder(now)
    return LeaseReply(granted=holder is not None, holder=holder)


class QuotaRequest(BaseModel):
    """`acquire` input of the quota gate: groups (and their cores) wanted, the budgets in force, the hold's lifetime.

    Every budget but `max_concurrent` has ACI's default as its default, so an input written before it existed
    still validates (`cores_per_group` 0: such a request budgets no cores).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_id: str = Field(min_length=1)
    groups: int = Field(ge=1)
    now: datetime
    ttl_s: int = Field(ge=1)
    max_concurrent: int = Field(ge=1)
    max_creates_per_hour: int = Field(default=ACI_CREATES_PER_HOUR, ge=1)
    max_creates_per_5_minutes: int = Field(default=ACI_CREATES_PER_5_MINUTES, ge=1)
    cores_per_group: float = Field(default=0.0, ge=0)
    max_cores: float = Field(default=ACI_STANDARD_CORES, gt=0)

    @property
    def cores(self) -> float:
        """The cores this request's groups use (ACI counts each group's requested CPU against StandardCores)."""
        return self.groups * self.cores_per_group


class QuotaHold(BaseModel):
    """Groups (and their cores) held by one orchestration, until it releases them or the hold lapses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: int
    expires_at: datetime
    cores: float = 0.0


class QuotaState(BaseModel):
    """The gate of one region: current holds and the times of recent creates (a rolling hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holders: dict[str, QuotaHold] = Field(default_factory=dict)
    creates: tuple[datetime, ...] = ()

    def pruned(self, now: datetime) -> QuotaState:
        """Without lapsed holds and creates older than an hour."""
        return QuotaState(
            holders={k: v for k, v in self.holders.items() if v.expires_at > now},
            creates=tuple(t for t in self.creates if now - t < _HOUR),
        )

    def in_use(self) -> int:
        """Slots held right now."""
        return sum(hold.groups for hold in self.holders.values())

    def cores_in_use(self) -> float:
        """Cores held right now."""
        return sum(hold.cores for hold in self.holders.values())


class QuotaReply(BaseModel):
    """Answer to a quota `acquire`: granted or not, with the slots in use and the reason for a refusal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    granted: bool
    in_use: int
    reason: str | None = None
    cores_in_use: float = 0.0


_CORES_EPSILON = 1e-9  # 0.1-core steps summed in floating point


def acquire_quota(state: QuotaState, request: QuotaRequest) -> tuple[QuotaState, QuotaReply]:
    """Grant `groups` slots if the group, core and create-rate budgets allow all of them (all or nothing)."""
    current = state.pruned(request.now)
    if request.instance_id in current.holders:
        return current, QuotaReply(granted=True, in_use=current.in_use(), cores_in_use=current.cores_in_use())
    reason = None
    recent = sum(1 for t in current.creates if request.now - t < _FIVE_MINUTES)
    if current.in_use() + request.groups > request.max_concurrent:
        reason = "concurrent scanner groups at the limit"
    elif current.cores_in_use() + request.cores > request.max_cores + _CORES_EPSILON:
        reason = "scanner cores at the limit"
    elif len(current.creates) + request.groups > request.max_creates_per_hour:
        reason = "scanner group creates per hour at the limit"
    elif recent + request.groups > request.max_creates_per_5_minutes:
        reason = "scanner group creates per 5 minutes at the limit"
    if reason is not None:
        return current, QuotaReply(
            granted=False, in_use=current.in_use(), reason=reason, cores_in_use=current.cores_in_use()
        )
    hold = QuotaHold(
        groups=request.groups, expires_at=request.now + timedelta(seconds=request.ttl_s), cores=request.cores
    )
    granted = QuotaState(
        holders={**current.holders, request.instance_id: hold},
        creates=current.creates + (request.now,) * request.groups,
    )
    return granted, QuotaReply(granted=True, in_use=granted.in_use(), cores_in_use=granted.cores_in_use())


def release_quota(state: QuotaState, request: ReleaseRequest) -> QuotaState:
    """Return the caller's slots (creates stay counted for their hour)."""
    return QuotaState(
        holders={k: v for k, v in state.holders.items() if k != request.instance_id}, creates=state.creates
    )
