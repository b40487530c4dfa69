"""What the simulator saw of each scanner group's life, for the demo's scheduling figures (devhost.demo_scheduling).

A group's life runs from its accepted PUT (create) until its DELETE completes (ACI counts it until then); its
cores are the CPU its containers request (what ACI counts against the StandardCores quota); its images carry the
time the fake scanner finishes each one in the group's plan (None: the scan hangs).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devhost.armsim import limits, scanner_run


@dataclass(frozen=True)
class PlannedImage:
    """One image of a group's scan plan: canonical reference, the scanner's finish time and its result."""

    image: str
    finished_at: datetime | None
    result: str


@dataclass
class GroupLife:
    """One created scanner group (or any group PUT through the simulator)."""

    name: str
    created_at: datetime
    cores: float
    images: list[PlannedImage] = field(default_factory=list)
    deleted_at: datetime | None = None


class GroupTimeline:
    """Creates and deletes in the order the simulator accepted them (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lives: list[GroupLife] = []
        self._alive: dict[str, GroupLife] = {}

    def created(self, name: str, created_at: datetime, body: dict[str, Any], plan: Any) -> None:
        """A new group `name` accepted at `created_at`; `plan` is its `scanner_run.ScanPlan` (None: no scanner)."""
        images: list[PlannedImage] = []
        if isinstance(plan, scanner_run.ScanPlan):
            images = [PlannedImage(scanner_run.canonical_ref(o.image), o.finished_at, o.result) for o in plan.images]
        life = GroupLife(name.lower(), created_at, limits.group_cores(body), images)
        with self._lock:
            self._lives.append(life)
            self._alive[life.name] = life

    def deleted(self, name: str, deleted_at: datetime) -> None:
        """The DELETE of a live group `name` was accepted; the group is gone at `deleted_at`."""
        with self._lock:
            life = self._alive.pop(name.lower(), None)
            if life is not None and life.deleted_at is None:
                life.deleted_at = deleted_at

    def lives(self) -> list[GroupLife]:
        with self._lock:
            return list(self._lives)
