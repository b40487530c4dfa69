"""The scan queue's capacity ledger (pure): the budget, what one more scanner group needs, and batch sizes.

core/scan_queue.py grants batches against it. A low-priority batch (rescans: `Pending.low`) is measured against
`reserved_budget`: one group, its cores and one create in each rate window stay free for the deployment scans that
may arrive while rescans run (a deployment scan then waits for a free group, never for the create rate a backlog of
rescans used up). With a budget of one group there is nothing to keep back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from core.options import ACI_CREATES_PER_5_MINUTES, ACI_CREATES_PER_HOUR, ACI_STANDARD_CORES

FIVE_MINUTES = timedelta(minutes=5)
HOUR = timedelta(hours=1)
_CORES_EPSILON = 1e-9


class Budget(BaseModel):
    """The capacity the queue may use (the app's settings under ACI's defaults) and the scan's time limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_groups: int = Field(ge=1)
    max_cores: float = Field(default=ACI_STANDARD_CORES, gt=0)
    scanner_cpu: float = Field(default=1.0, gt=0)
    max_creates_per_5_minutes: int = Field(default=ACI_CREATES_PER_5_MINUTES, ge=1)
    max_creates_per_hour: int = Field(default=ACI_CREATES_PER_HOUR, ge=1)
    max_images_per_group: int = Field(default=2, ge=1)
    scan_timeout_s: int = Field(default=1800, ge=1)


def reserved_budget(budget: Budget) -> Budget:
    """The budget of low-priority batches: one group, its cores and one create per window fewer (never below one)."""
    return budget.model_copy(
        update={
            "max_groups": max(1, budget.max_groups - 1),
            "max_cores": max(budget.scanner_cpu, budget.max_cores - budget.scanner_cpu),
            "max_creates_per_5_minutes": max(1, budget.max_creates_per_5_minutes - 1),
            "max_creates_per_hour": max(1, budget.max_creates_per_hour - 1),
        }
    )


def blocked_until(
    groups: int, cores: float, creates: Iterable[datetime], now: datetime, budget: Budget
) -> datetime | None:
    """None when one more group does not fit (groups or cores: a release grants); else when the create rate allows
    one (`now` when it fits now). `groups`, `cores`: in flight; `creates`: create times of the last hour.
    """
    if groups + 1 > budget.max_groups:
        return None
    if cores + budget.scanner_cpu > budget.max_cores + _CORES_EPSILON:
        return None
    hour = sorted(creates)
    recent = [t for t in hour if now - t < FIVE_MINUTES]
    waits: list[datetime] = []
    if len(hour) + 1 > budget.max_creates_per_hour:
        waits.append(hour[len(hour) - budget.max_creates_per_hour] + HOUR)
    if len(recent) + 1 > budget.max_creates_per_5_minutes:
        waits.append(recent[len(recent) - budget.max_creates_per_5_minutes] + FIVE_MINUTES)
    return max(waits) if waits else now


def batch_size(pending: int, free_groups: int, budget: Budget) -> int:
    """Images for the next batch: spread the queue over the groups the budget allows (ceil(pending / groups)),
    at most `max_images_per_group`: a long queue fills groups (fewer creates), a short one runs in parallel.
    """
    per_group = math.ceil(pending / max(1, budget.max_groups))
    return max(1, min(budget.max_images_per_group, per_group, pending)) if free_groups else 0
