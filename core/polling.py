"""The poll schedule of a scan: geometric backoff, clipped to the deadline, with a bounded number of polls."""

from __future__ import annotations

import functools
import math

BACKOFF_FACTOR = 2.0
MAX_POLLS_PER_SCAN = 6
"""Each poll costs about 8 history events (timer, state reads, episode markers): 6 keep a scan under 100."""
WAITER_MAX_POLLS = 24
"""A scan left waiting only for other scans' leases polls densely (cheap entity reads, no ARM), still bounded."""
_FACTOR_SEARCH_STEPS = 60


def _geometric(initial_s: int, factor: float, cap_s: float, timeout_s: int, limit: float = math.inf) -> list[int]:
    """Offsets (seconds after the start) of polls whose gaps grow by `factor` up to `cap_s`, ending at the timeout.

    Stops early once the schedule has more than `limit` polls (the caller only wants to know that it does). Once
    a gap reaches the cap every further gap is the cap, so that stretch is computed, not walked: the cost is
    logarithmic in the timeout, never linear in timeout/cap.
    """
    offsets: list[int] = []
    elapsed = 0
    gap = float(initial_s)
    while elapsed < timeout_s and len(offsets) <= limit:
        if gap >= cap_s:  # every remaining gap is ceil(cap_s) (at least 1): a plain arithmetic run to the timeout
            step = math.ceil(cap_s)
            remaining = -(-(timeout_s - elapsed) // step)
            take = int(min(remaining, max(0.0, limit + 1 - len(offsets))))
            offsets.extend(min(timeout_s, elapsed + step * k) for k in range(1, take + 1))
            break
        elapsed = min(timeout_s, max(elapsed + 1, elapsed + math.ceil(gap)))
        offsets.append(elapsed)
        gap *= factor
    return offsets


def _capped_count(initial_s: int, cap_s: int, timeout_s: int) -> int:
    """How many polls the doubling schedule capped at `cap_s` takes to reach `timeout_s` (closed form per stretch)."""
    count, elapsed, gap = 0, 0, float(initial_s)
    while elapsed < timeout_s and gap < cap_s:  # at most log2(cap_s / initial_s) + 1 doublings
        elapsed = min(timeout_s, elapsed + math.ceil(gap))
        count += 1
        gap *= BACKOFF_FACTOR
    return count + (-(-(timeout_s - elapsed) // cap_s) if elapsed < timeout_s else 0)


@functools.lru_cache(maxsize=256)
def poll_offsets(
    *, initial_s: int, max_interval_s: int, timeout_s: int, max_polls: int = MAX_POLLS_PER_SCAN
) -> tuple[int, ...]:
    """Seconds after a scan started at which to poll it; strictly increasing, the last one is `timeout_s`.

    Gaps start at `initial_s` and double up to `max_interval_s`. When that would take more than `max_polls` polls,
    the gaps grow faster instead (the smallest factor that fits), so the history of a long timeout stays bounded.
    Orchestrators call this on every replay: the cost is logarithmic in timeout/interval (the capped stretch has a
    closed form, the factor search stops counting past `max_polls`) and repeated calls are answered from a cache.
    The offsets are timers' fire times in recorded histories: they must never change for the same arguments.
    """
    if initial_s < 1 or max_interval_s < 1 or timeout_s < 1 or max_polls < 1:
        raise ValueError("poll_offsets needs positive initial_s, max_interval_s, timeout_s and max_polls")
    if _capped_count(initial_s, max_interval_s, timeout_s) <= max_polls:
        return tuple(_geometric(initial_s, BACKOFF_FACTOR, max_interval_s, timeout_s))
    if max_polls == 1:
        return (timeout_s,)
    low, high = BACKOFF_FACTOR, float(max(BACKOFF_FACTOR, timeout_s))
    for _ in range(_FACTOR_SEARCH_STEPS):
        middle = (low + high) / 2
        if len(_geometric(initial_s, middle, math.inf, timeout_s, limit=max_polls)) <= max_polls:
            high = middle
        else:
            low = middle
    return tuple(_geometric(initial_s, high, math.inf, timeout_s))


def waiter_poll_offsets(*, initial_s: int, max_interval_s: int, timeout_s: int) -> tuple[int, ...]:
    """The schedule once a scan waits only for images that other scans hold: gaps capped at `max_interval_s`.

    Waiting on the sparse schedule could finish up to half the timeout after the holder released the image; these
    polls read only entity state, so they cost history (about 8 events each, at most WAITER_MAX_POLLS) but no ARM.
    """
    return poll_offsets(
        initial_s=initial_s, max_interval_s=max_interval_s, timeout_s=timeout_s, max_polls=WAITER_MAX_POLLS
    )


def quota_wait_offsets(*, initial_s: int, max_interval_s: int, timeout_s: int) -> tuple[int, ...]:
    """When to ask again for a scanner group slot (the app's gate or ACI's own quota): gaps capped, not squeezed.

    Waiting for quota is the rare, bursty case; gaps up to `max_interval_s` pick a freed slot up promptly, and the
    count stays bounded (at most WAITER_MAX_POLLS, each a timer and one entity call or one create attempt).
    """
    return poll_offsets(
        initial_s=initial_s, max_interval_s=max_interval_s, timeout_s=timeout_s, max_polls=WAITER_MAX_POLLS
    )


def next_poll_offset(offsets: tuple[int, ...], elapsed_s: float) -> int | None:
    """The first scheduled offset after `elapsed_s`, or None once the schedule is spent."""
    for offset in offsets:
        if offset > elapsed_s:
            return offset
    return None
