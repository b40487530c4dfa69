"""The poll schedule backs off geometrically, ends at the deadline and never exceeds its poll budget."""

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.polling import MAX_POLLS_PER_SCAN, next_poll_offset, poll_offsets


def test_short_timeout_doubles_up_to_the_cap_and_ends_at_the_deadline() -> None:
    assert poll_offsets(initial_s=20, max_interval_s=120, timeout_s=300) == (20, 60, 140, 260, 300)


def test_long_timeout_grows_faster_to_stay_within_the_poll_budget() -> None:
    offsets = poll_offsets(initial_s=20, max_interval_s=120, timeout_s=1800)
    assert len(offsets) == MAX_POLLS_PER_SCAN
    assert offsets[0] == 20
    assert offsets[-1] == 1800


def test_initial_gap_longer_than_the_timeout_polls_once_at_the_deadline() -> None:
    assert poll_offsets(initial_s=600, max_interval_s=600, timeout_s=60) == (60,)


def test_single_poll_budget_polls_at_the_deadline() -> None:
    assert poll_offsets(initial_s=20, max_interval_s=120, timeout_s=1800, max_polls=1) == (1800,)


@pytest.mark.parametrize("bad", [{"initial_s": 0}, {"timeout_s": 0}, {"max_interval_s": 0}, {"max_polls": 0}])
def test_non_positive_arguments_are_rejected(bad: dict[str, int]) -> None:
    arguments = {"initial_s": 20, "max_interval_s": 120, "timeout_s": 300, "max_polls": 6} | bad
    with pytest.raises(ValueError, match="positive"):
        poll_offsets(**arguments)


@given(
    initial=st.integers(1, 3600),
    cap=st.integers(1, 3600),
    timeout=st.integers(1, 86_400),
    budget=st.integers(1, 20),
)
def test_schedule_invariants(initial: int, cap: int, timeout: int, budget: int) -> None:
    offsets = poll_offsets(initial_s=initial, max_interval_s=cap, timeout_s=timeout, max_polls=budget)
    assert 1 <= len(offsets) <= budget
    assert offsets[-1] == timeout
    assert all(a < b for a, b in itertools.pairwise(offsets))
    assert offsets[0] <= min(initial, timeout) or budget == 1
    assert offsets == poll_offsets(initial_s=initial, max_interval_s=cap, timeout_s=timeout, max_polls=budget)


def test_next_poll_offset_walks_the_schedule() -> None:
    offsets = (20, 60, 140)
    assert next_poll_offset(offsets, 0) == 20
    assert next_poll_offset(offsets, 20) == 60
    assert next_poll_offset(offsets, 100.5) == 140
    assert next_poll_offset(offsets, 140) is None


def test_a_scan_waiting_only_on_others_polls_with_capped_gaps_and_a_bounded_count() -> None:
    from core.polling import WAITER_MAX_POLLS, waiter_poll_offsets

    offsets = waiter_poll_offsets(initial_s=20, max_interval_s=120, timeout_s=1800)
    gaps = [b - a for a, b in zip((0, *offsets), offsets, strict=False)]
    assert offsets[-1] == 1800
    assert max(gaps) <= 120
    assert len(offsets) <= WAITER_MAX_POLLS


def test_quota_waits_keep_their_gaps_capped_instead_of_squeezing_them_into_six_polls() -> None:
    from core.polling import WAITER_MAX_POLLS, quota_wait_offsets

    offsets = quota_wait_offsets(initial_s=30, max_interval_s=300, timeout_s=1800)
    gaps = [b - a for a, b in zip((0, *offsets), offsets, strict=False)]
    assert offsets[-1] == 1800 and max(gaps) <= 300 and len(offsets) <= WAITER_MAX_POLLS


def test_every_test_runs_with_the_ci_hypothesis_profile_without_a_deadline() -> None:
    """tests/conftest.py loads it: a slow example under load must not fail `make test` (issue #9)."""
    assert settings().deadline is None


@pytest.mark.timeout(10)
def test_the_schedule_is_cheap_however_long_the_timeout_is_against_the_interval() -> None:
    """One-second gaps over a century used to walk every gap (linear in timeout/interval) on every replay."""
    century = 100 * 365 * 86_400
    offsets = poll_offsets(initial_s=1, max_interval_s=1, timeout_s=century, max_polls=20)
    assert len(offsets) == 20 and offsets[-1] == century
    assert poll_offsets(initial_s=1, max_interval_s=3600, timeout_s=century, max_polls=10**6)[-1] == century


def _reference_offsets(initial: int, cap: int, timeout: int, budget: int) -> tuple[int, ...]:
    """The schedule as first written (walks every gap): the offsets are timers in recorded histories, so the cheap
    version must return exactly these for every argument, or in-flight scans would fail replay."""

    def walk(factor: float, cap_s: float) -> list[int]:
        offsets, elapsed, gap = [], 0, float(initial)
        while elapsed < timeout:
            elapsed = min(timeout, max(elapsed + 1, elapsed + math.ceil(min(gap, cap_s))))
            offsets.append(elapsed)
            gap *= factor
        return offsets

    capped = walk(2.0, cap)
    if len(capped) <= budget:
        return tuple(capped)
    if budget == 1:
        return (timeout,)
    low, high = 2.0, float(max(2.0, timeout))
    for _ in range(60):
        middle = (low + high) / 2
        if len(walk(middle, math.inf)) <= budget:
            high = middle
        else:
            low = middle
    return tuple(walk(high, math.inf))


@given(
    initial=st.integers(1, 3600),
    cap=st.integers(1, 3600),
    timeout=st.integers(1, 86_400),
    budget=st.integers(1, 30),
)
def test_the_cheap_schedule_equals_the_walked_one(initial: int, cap: int, timeout: int, budget: int) -> None:
    if timeout // cap > 5_000:  # the reference walks every gap; keep it quick (the cheap one is checked above)
        cap = timeout // 5_000 + 1
    expected = _reference_offsets(initial, cap, timeout, budget)
    assert poll_offsets(initial_s=initial, max_interval_s=cap, timeout_s=timeout, max_polls=budget) == expected
