"""summary.json's `scheduling` block: how well a run used ACI's capacity (definitions in docs/demo.md).

Pure functions over what the run measured: the simulator's group lives (devhost.armsim.timeline), the times the
app recorded each result (its scan records), the virtual arrival time of each message, and the scenario (for the
lower bound). `measure` gathers those from a finished demo stack.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.events import InvalidMessage, parse_message
from core.images import InvalidImageRef, parse_image_ref
from core.scanner_spec import per_image_timeout_seconds
from core.scope import exclusions_of, monitored_subscriptions, scoped_targets
from core.settings import Settings
from devhost.armsim.scanner_run import behaviour_for, canonical_ref
from devhost.armsim.timeline import GroupLife
from devhost.demo_scenario import DemoScenario

FIVE_MINUTES_S = 300.0
HOUR_S = 3600.0
NOT_SCANNED = frozenset({"cached", "skipped"})
ACI_DEFAULTS = {  # ACI's default regional limits (docs/shared azure facts; devhost/armsim cites its source)
    "max_container_groups": 100,
    "max_cores": 100.0,
    "max_creates_per_5_minutes": 100,
    "max_creates_per_hour": 300,
}


@dataclass(frozen=True)
class Limits:
    """The capacity a run may use: the app's settings under ACI's (simulated) quotas."""

    scanner_cpu: float
    max_groups: int  # min(MAX_CONCURRENT_SCANNER_GROUPS, the group quota, the core quota / SCANNER_CPU)
    creates_per_5min: int
    creates_per_hour: int
    images_per_group: int
    longest_scan_s: float  # the scanner's per-image limit for an image alone in its group
    provisioning_s: float

    @property
    def cores(self) -> float:
        return self.max_groups * self.scanner_cpu


@dataclass(frozen=True)
class Demand:
    """One delivered message: when it arrived (seconds since the start) and the images it asks to scan."""

    at_s: float
    images: tuple[str, ...]


@dataclass(frozen=True)
class Recorded:
    """One stored result of a scan: the image and when the app recorded it (seconds since the start)."""

    image: str
    at_s: float


# ---- pure figures ---------------------------------------------------------------------------------------------------


def earliest_create_s(count: int, per_5min: int, per_hour: int) -> float:
    """The earliest time (from 0) the `count`-th create can happen under both sliding windows (greedy: optimal)."""
    if count <= 0:
        return 0.0
    if per_5min <= 0 or per_hour <= 0:
        return math.inf
    times: list[float] = []
    for k in range(count):
        at = 0.0
        if k >= per_5min:
            at = max(at, times[k - per_5min] + FIVE_MINUTES_S)
        if k >= per_hour:
            at = max(at, times[k - per_hour] + HOUR_S)
        times.append(at)
    return times[-1]


def lower_bound_s(demands: Sequence[Demand], durations: Mapping[str, float], limits: Limits) -> float:
    """The physical limit of a scenario: the largest of three bounds (each scan's time capped at `longest_scan_s`).

    - capacity: (scan seconds of every distinct image + one provisioning per group needed) x SCANNER_CPU, divided by
      the cores available;
    - creates: the earliest the last group needed (ceil(images / MAX_IMAGES_PER_SCANNER_GROUP)) can be created under
      the create rates, plus provisioning and the shortest scan;
    - critical path: per message, its arrival plus provisioning plus the longest scan among the images it is the
      first to ask for; the latest of those.
    """
    seen: set[str] = set()
    critical = 0.0
    for demand in sorted(demands, key=lambda d: d.at_s):  # stable: ties keep delivery order
        own = [image for image in dict.fromkeys(demand.images) if image not in seen]
        seen.update(own)
        if own:
            longest = max(min(durations[image], limits.longest_scan_s) for image in own)
            critical = max(critical, demand.at_s + limits.provisioning_s + longest)
    if not seen:
        return 0.0
    scan_s = [min(durations[image], limits.longest_scan_s) for image in seen]
    groups_needed = math.ceil(len(seen) / max(1, limits.images_per_group))
    core_s = (sum(scan_s) + groups_needed * limits.provisioning_s) * limits.scanner_cpu
    capacity = core_s / limits.cores if limits.cores > 0 else math.inf
    last_create = earliest_create_s(groups_needed, limits.creates_per_5min, limits.creates_per_hour)
    creates = last_create + limits.provisioning_s + min(scan_s)
    return max(capacity, creates, critical)


def max_in_window(times: Iterable[float], width: float) -> int:
    """The most events in any half-open window [t, t + width)."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - width:
            start += 1
        best = max(best, end - start + 1)
    return best


def peak(intervals: Iterable[tuple[float, float, float]]) -> float:
    """The largest total weight alive at once over half-open intervals [start, end) (an end frees before a start)."""
    points: list[tuple[float, int, float]] = []
    for start, end, weight in intervals:
        points.append((start, 1, weight))
        points.append((end, 0, -weight))
    best = level = 0.0
    for _, _, delta in sorted(points):
        level += delta
        best = max(best, level)
    return best


def nearest_rank(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in (0, 1]); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def wasted_waits(
    lives: Sequence[tuple[float, float | None, Sequence[tuple[str, float | None]]]], recorded: Sequence[Recorded]
) -> list[float]:
    """Per image a scanner finished: when its result was first recorded at or after that, minus the finish time.

    `lives`: (created, deleted or None, [(image, scanner finish time or None)]) per group, in seconds since the start.
    An image whose scan never finished while its group lived (hung, or deleted at the timeout) is not counted, nor is
    one whose result was never recorded.
    """
    by_image: dict[str, list[float]] = {}
    for item in recorded:
        by_image.setdefault(item.image, []).append(item.at_s)
    for times in by_image.values():
        times.sort()
    waits: list[float] = []
    for _, deleted, images in lives:
        for image, finished in images:
            if finished is None or (deleted is not None and finished > deleted):
                continue
            after = [at for at in by_image.get(image, []) if at >= finished]
            if after:
                waits.append(after[0] - finished)
    return waits


def _spread(values: Sequence[int]) -> dict[str, float | int]:
    return {"mean": round(statistics.fmean(values), 1) if values else 0.0, "max": max(values, default=0)}


def scheduling_block(
    *,
    makespan_s: float,
    lower_bound: float,
    waits: Sequence[float],
    group_intervals: Sequence[tuple[float, float, float]],
    creates_s: Sequence[float],
    images_started: int,
    history_events: Sequence[int],
    arm_requests_per_group: Sequence[int],
) -> dict[str, Any]:
    """The block, exactly in the documented shape; seconds rounded to 0.1."""
    groups = len(creates_s)
    return {
        "makespan_s": round(makespan_s, 1),
        "lower_bound_s": round(lower_bound, 1),
        "wasted_wait_s": {
            "median": round(statistics.median(waits), 1) if waits else 0.0,
            "p95": round(nearest_rank(waits, 0.95), 1),
            "max": round(max(waits, default=0.0), 1),
        },
        "peak_groups": int(peak((start, end, 1.0) for start, end, _ in group_intervals)),
        "peak_cores": round(peak(group_intervals), 2),
        "max_creates_per_5min": max_in_window(creates_s, FIVE_MINUTES_S),
        "max_creates_per_hour": max_in_window(creates_s, HOUR_S),
        "images_per_group": round(images_started / groups, 2) if groups else 0.0,
        "history_events": _spread(history_events),
        "arm_requests_per_group": _spread(arm_requests_per_group),
    }


# ---- gathering from a run -------------------------------------------------------------------------------------------


def limits_of(settings: Settings, sim: Any) -> Limits:
    """The run's capacity from the app's settings and the simulator's knobs (`SimSettings`; ACI defaults if absent)."""

    def knob(name: str) -> float:
        return float(getattr(sim, name, ACI_DEFAULTS[name]))

    cpu = settings.scanner_cpu
    by_cores = int(knob("max_cores") // cpu)
    max_groups = min(settings.max_concurrent_scanner_groups, int(knob("max_container_groups")), by_cores)
    return Limits(
        scanner_cpu=cpu,
        max_groups=max_groups,
        creates_per_5min=int(knob("max_creates_per_5_minutes")),
        creates_per_hour=int(knob("max_creates_per_hour")),
        images_per_group=settings.max_images_per_scanner_group,
        longest_scan_s=float(per_image_timeout_seconds(settings.scan_timeout, 1)),
        provisioning_s=float(getattr(sim, "provisioning_delay_s", 0.0)),
    )


def _canonical(ref: str) -> str | None:
    try:
        return parse_image_ref(ref.strip()).canonical
    except InvalidImageRef:
        return None


def demands_of(
    scenario: DemoScenario, settings: Settings, arrivals: Mapping[int, float]
) -> tuple[list[Demand], dict[str, float]]:
    """Per delivered message, its arrival and the images it asks to scan (cache seeds still fresh left out), parsed
    with the app's own parser and the scenario's resources; and each such image's scan time (a hang: the scanner's
    per-image limit for an image alone in its group, the longest any image is allowed to run).
    """
    resources: dict[str, list[str]] = {}
    for resource in scenario.sim.resources:
        refs = [_canonical(ref) for ref in [*resource.images, *resource.init_images]]
        resources[resource.id.lower()] = [ref for ref in refs if ref]
    fresh = {
        canonical
        for seed in scenario.cache
        if seed.age_hours < settings.scan_cache_hours and (canonical := _canonical(seed.image))
    }
    demands: list[Demand] = []
    durations: dict[str, float] = {}
    rules = exclusions_of(settings)  # as the starter and resolve_images apply MONITORED_SUBSCRIPTIONS and SCAN_EXCLUDE
    for delivery in scenario.deliveries:
        if delivery.index not in arrivals:
            continue
        try:
            targets = parse_message(
                delivery.body,
                scanner_resource_group=settings.scanner_resource_group,
                scanner_subscription_id=str(settings.azure_subscription_id),
            ).targets
        except InvalidMessage:
            continue
        kept = scoped_targets(targets, monitored_subscriptions(settings), rules, log=False).kept
        images = [
            i
            for t in kept
            for i in resources.get(t.resource_id.lower(), [])
            if i not in fresh and rules.for_image(i) is None
        ]
        for image in images:
            behaviour = behaviour_for(scenario.sim, image)
            hang = behaviour.result == "hang"
            durations[image] = (
                float(per_image_timeout_seconds(settings.scan_timeout, 1)) if hang else behaviour.duration_s
            )
        demands.append(Demand(arrivals[delivery.index], tuple(images)))
    return demands, durations


def seconds_since(start: datetime, when: datetime) -> float:
    return (when - start) / timedelta(seconds=1)


def measure(
    *,
    start: datetime,
    end: datetime,
    lives: Sequence[GroupLife],
    recorded: Sequence[tuple[str, datetime]],
    makespan_end: datetime,
    lower_bound: float,
    images_started: int,
    history_events: Sequence[int],
    by_group: Mapping[str, int],
) -> dict[str, Any]:
    """The block from the measured times, in seconds since `start` (a group still alive at `end` ends there)."""
    intervals = [
        (seconds_since(start, life.created_at), seconds_since(start, life.deleted_at or end), life.cores)
        for life in lives
    ]
    life_images = [
        (
            seconds_since(start, life.created_at),
            None if life.deleted_at is None else seconds_since(start, life.deleted_at),
            [
                (canonical_ref(p.image), None if p.finished_at is None else seconds_since(start, p.finished_at))
                for p in life.images
            ],
        )
        for life in lives
    ]
    stored = [Recorded(canonical_ref(image), seconds_since(start, at)) for image, at in recorded]
    return scheduling_block(
        makespan_s=max(0.0, seconds_since(start, makespan_end)),
        lower_bound=lower_bound,
        waits=wasted_waits(life_images, stored),
        group_intervals=intervals,
        creates_s=[start_s for start_s, _, _ in intervals],
        images_started=images_started,
        history_events=history_events,
        arm_requests_per_group=[int(by_group.get(life.name, 0)) for life in lives],
    )
