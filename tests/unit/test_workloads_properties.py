"""Inventory ordering rules: any permutation and repetition of events ends in the state of the newest one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from core.workloads import (
    Observed,
    State,
    Tombstone,
    Workload,
    WorkloadImage,
    apply_delete,
    apply_sweep_seen,
    apply_write,
    vanished,
)

RID = (
    "/subscriptions/0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a/resourceGroups/demo-apps"
    "/providers/Microsoft.App/containerApps/orders-api"
)
T0 = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
TTL = timedelta(hours=24)

# (is_delete, second offset, tiebreak, image tag)
events = st.lists(
    st.tuples(st.booleans(), st.integers(0, 20), st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2", "3"])),
    min_size=1,
    max_size=8,
)


def _apply(state: State, event: tuple[bool, int, str, str], now: datetime) -> State:
    is_delete, offset, tiebreak, tag = event
    when = T0 + timedelta(seconds=offset)
    if is_delete:
        return apply_delete(state, RID, when, tiebreak, now=now, tombstone_ttl=TTL)
    observed = Observed(
        resource_id=RID, location="westeurope", images=(WorkloadImage(image=f"docker.io/library/nginx:{tag}"),)
    )
    return apply_write(state, observed, when, tiebreak, now)


def _essence(state: State) -> object:
    if isinstance(state, Tombstone):
        return ("deleted", state.order_key)
    if isinstance(state, Workload):
        return ("present", state.order_key, state.images)
    return None


@settings(deadline=None, max_examples=300)
@given(events, st.data())
def test_any_order_and_repetition_converges_to_the_newest_event(
    history: list[tuple[bool, int, str, str]], data: st.DataObject
) -> None:
    def key(event: tuple[bool, int, str, str]) -> tuple[datetime, int, str]:
        return (T0 + timedelta(seconds=event[1]), int(event[0]), event[2])

    # one event per order key (two events of one key and different content do not happen: a key is one operation)
    unique = list({key(e): e for e in history}.values())
    newest = max(unique, key=key)
    delivered = data.draw(st.lists(st.sampled_from(unique), min_size=len(unique), max_size=3 * len(unique)))
    delivered = delivered + unique  # every event at least once
    order = data.draw(st.permutations(delivered))
    state: State = None
    for step, event in enumerate(order):
        state = _apply(state, event, NOW + timedelta(seconds=step))
    assert _essence(state) == _essence(_apply(None, newest, NOW))


def test_a_late_write_older_than_the_delete_does_not_resurrect() -> None:
    deleted = _apply(_apply(None, (False, 0, "a", "1"), NOW), (True, 10, "b", "1"), NOW)
    assert isinstance(_apply(deleted, (False, 5, "c", "2"), NOW), Tombstone)
    assert isinstance(_apply(deleted, (False, 11, "c", "2"), NOW), Workload)  # a re-creation after the delete


def test_an_expired_tombstone_no_longer_blocks() -> None:
    deleted = _apply(None, (True, 10, "b", "1"), NOW)
    assert isinstance(_apply(deleted, (False, 5, "c", "2"), NOW + TTL), Workload)


def test_sweeps_add_refresh_keep_tombstones_and_remove_vanished() -> None:
    observed = Observed(
        resource_id=RID, location="westeurope", images=(WorkloadImage(image="docker.io/library/redis:7"),)
    )
    sweep_start = NOW + timedelta(hours=1)
    added = apply_sweep_seen(None, observed, "s1", sweep_start, sweep_start)
    assert isinstance(added, Workload) and added.event_time is None and added.swept_by == "s1"
    # an event after a sweep-only entry always applies
    assert isinstance(_apply(added, (True, 0, "a", "1"), sweep_start), Tombstone)
    written = _apply(None, (False, 3, "a", "1"), NOW)
    refreshed = apply_sweep_seen(written, observed, "s1", sweep_start, sweep_start)
    assert isinstance(refreshed, Workload)
    assert refreshed.images == observed.images and refreshed.order_key == written.order_key  # type: ignore[union-attr]
    # a stale event after the refresh is still stale
    assert _apply(refreshed, (False, 1, "a", "2"), sweep_start) == refreshed
    # written during the sweep: kept as the event left it
    during = _apply(None, (False, 3, "a", "1"), sweep_start + timedelta(seconds=1))
    assert apply_sweep_seen(during, observed, "s1", sweep_start, sweep_start).images == during.images  # type: ignore[union-attr]
    deleted = _apply(None, (True, 3, "a", "1"), NOW)
    assert apply_sweep_seen(deleted, observed, "s1", sweep_start, sweep_start) == deleted
    assert vanished(written, "s2", sweep_start)
    assert not vanished(refreshed, "s1", sweep_start)
    assert not vanished(during, "s2", sweep_start)
    assert not vanished(deleted, "s2", sweep_start)
