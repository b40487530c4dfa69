"""The pure figures of summary.json's `scheduling` block (devhost.demo_scheduling)."""

from __future__ import annotations

import math

import pytest

from devhost.demo_scheduling import (
    Demand,
    Limits,
    Recorded,
    earliest_create_s,
    lower_bound_s,
    max_in_window,
    nearest_rank,
    peak,
    scheduling_block,
    wasted_waits,
)

LIMITS = Limits(
    scanner_cpu=1.0,
    max_groups=20,
    creates_per_5min=100,
    creates_per_hour=300,
    images_per_group=10,
    longest_scan_s=1490.0,
    provisioning_s=20.0,
)


def test_creates_follow_both_sliding_windows() -> None:
    assert earliest_create_s(0, 100, 300) == 0.0
    assert earliest_create_s(100, 100, 300) == 0.0
    assert earliest_create_s(101, 100, 300) == 300.0
    assert earliest_create_s(300, 100, 300) == 600.0
    assert earliest_create_s(301, 100, 300) == 3600.0  # the hour's 300 are spent: the 301st waits an hour
    assert earliest_create_s(700, 100, 300) == 2 * 3600  # 100 per 5 minutes, three times an hour
    assert earliest_create_s(1000, 100, 300) == 3 * 3600
    assert earliest_create_s(1, 0, 300) == math.inf


def test_lower_bound_is_capacity_when_many_images_share_few_cores() -> None:
    demands = [Demand(0.0, (f"img{n}",)) for n in range(100)]
    durations = {f"img{n}": 200.0 for n in range(100)}
    # (100 x 200 s + 10 groups x 20 s provisioning) x 1 core / 20 cores
    assert lower_bound_s(demands, durations, LIMITS) == pytest.approx((20_000 + 200) / 20)


def test_lower_bound_is_the_critical_path_for_a_late_arrival_with_a_long_scan() -> None:
    demands = [Demand(0.0, ("a", "shared")), Demand(900.0, ("shared", "late"))]
    durations = {"a": 60.0, "shared": 300.0, "late": 120.0}
    # the late message's own image is `late` (shared was first asked for at 0): 900 + 20 + 120
    assert lower_bound_s(demands, durations, LIMITS) == 1040.0


def test_a_hang_counts_to_the_timeout_and_the_create_rate_bounds_big_waves() -> None:
    hang = Limits(1.0, 20, 100, 300, 10, 600.0, 20.0)
    assert lower_bound_s([Demand(0.0, ("h",))], {"h": 10_000.0}, hang) == 620.0
    one_per_group = Limits(1.0, 1000, 100, 300, 1, 1800.0, 20.0)
    demands = [Demand(0.0, (f"i{n}",)) for n in range(1000)]
    durations = {f"i{n}": 60.0 for n in range(1000)}
    assert lower_bound_s(demands, durations, one_per_group) == 3 * 3600 + 20 + 60
    assert lower_bound_s([], {}, LIMITS) == 0.0


def test_windows_peaks_and_percentiles() -> None:
    assert max_in_window([0, 10, 299.9, 300, 600], 300) == 3
    assert max_in_window([], 300) == 0
    assert peak([(0, 10, 1), (10, 20, 1)]) == 1  # an end frees before a start at the same time
    assert peak([(0, 10, 2.0), (5, 20, 1.0), (6, 7, 1.0)]) == 4.0
    assert nearest_rank([], 0.95) == 0.0
    assert nearest_rank(list(range(1, 21)), 0.95) == 19
    assert nearest_rank([5.0], 0.95) == 5.0


def test_wasted_wait_is_from_the_scanner_finish_to_the_first_record_after_it() -> None:
    lives: list[tuple[float, float | None, list[tuple[str, float | None]]]] = [
        (0.0, 500.0, [("a", 170.0), ("b", 320.0), ("hung", None)]),
        (0.0, 100.0, [("cut", 400.0)]),  # deleted before its scanner finished: not counted
    ]
    recorded = [Recorded("a", 100.0), Recorded("a", 190.0), Recorded("a", 400.0), Recorded("b", 380.0)]
    assert wasted_waits(lives, recorded) == [20.0, 60.0]


def test_the_block_has_exactly_the_documented_shape() -> None:
    block = scheduling_block(
        makespan_s=812.34,
        lower_bound=640.0,
        waits=[1.0, 2.0, 30.0],
        group_intervals=[(0.0, 300.0, 1.0), (10.0, 200.0, 1.0), (300.0, 400.0, 1.0)],
        creates_s=[0.0, 10.0, 300.0],
        images_started=6,
        history_events=[40, 60],
        arm_requests_per_group=[5, 6, 7],
    )
    assert block == {
        "makespan_s": 812.3,
        "lower_bound_s": 640.0,
        "wasted_wait_s": {"median": 2.0, "p95": 30.0, "max": 30.0},
        "peak_groups": 2,
        "peak_cores": 2.0,
        "max_creates_per_5min": 2,
        "max_creates_per_hour": 3,
        "images_per_group": 2.0,
        "history_events": {"mean": 50.0, "max": 60},
        "arm_requests_per_group": {"mean": 6.0, "max": 7},
    }
