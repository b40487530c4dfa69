"""Image leases are single-flight and lapse; the quota gate bounds concurrent groups, cores and the create rate."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.leases import (
    LeaseRequest,
    LeaseState,
    QuotaRequest,
    QuotaState,
    ReleaseRequest,
    acquire_lease,
    acquire_quota,
    read_lease,
    release_lease,
    release_quota,
)

T0 = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)


def lease(instance_id: str, at: datetime = T0, ttl_s: int = 600) -> LeaseRequest:
    return LeaseRequest(instance_id=instance_id, now=at, ttl_s=ttl_s)


def test_first_caller_gets_the_lease_and_the_second_learns_the_holder() -> None:
    state, reply = acquire_lease(LeaseState(), lease("a"))
    assert reply.granted and reply.holder == "a"
    same, refused = acquire_lease(state, lease("b"))
    assert not refused.granted and refused.holder == "a"
    assert same == state


def test_reacquire_by_the_holder_is_granted() -> None:
    state, _ = acquire_lease(LeaseState(), lease("a"))
    _, again = acquire_lease(state, lease("a", T0 + timedelta(seconds=5)))
    assert again.granted


def test_a_lapsed_lease_goes_to_the_next_caller() -> None:
    state, _ = acquire_lease(LeaseState(), lease("a", ttl_s=60))
    assert read_lease(state, T0 + timedelta(seconds=59)).holder == "a"
    assert read_lease(state, T0 + timedelta(seconds=60)).holder is None
    _, reply = acquire_lease(state, lease("b", T0 + timedelta(seconds=61)))
    assert reply.granted and reply.holder == "b"


def test_only_the_holder_releases() -> None:
    state, _ = acquire_lease(LeaseState(), lease("a"))
    assert release_lease(state, ReleaseRequest(instance_id="b")) == state
    assert release_lease(state, ReleaseRequest(instance_id="a")) == LeaseState()
    assert not read_lease(LeaseState(), T0).granted


def quota(instance_id: str, groups: int = 1, at: datetime = T0, **limits: int) -> QuotaRequest:
    return QuotaRequest(
        instance_id=instance_id,
        groups=groups,
        now=at,
        ttl_s=3600,
        max_concurrent=limits.pop("max_concurrent", 2),
        **limits,
    )


def test_quota_grants_up_to_the_concurrency_limit_all_or_nothing() -> None:
    state, first = acquire_quota(QuotaState(), quota("a"))
    assert first.granted and first.in_use == 1
    state, refused = acquire_quota(state, quota("b", groups=2))
    assert not refused.granted and refused.reason == "concurrent scanner groups at the limit"
    state, second = acquire_quota(state, quota("b"))
    assert second.granted and second.in_use == 2


def test_quota_acquire_is_idempotent_for_a_holder() -> None:
    state, _ = acquire_quota(QuotaState(), quota("a"))
    again, reply = acquire_quota(state, quota("a"))
    assert reply.granted and again.in_use() == 1 and len(again.creates) == 1


def test_release_frees_slots_but_creates_stay_counted() -> None:
    state, _ = acquire_quota(QuotaState(), quota("a", groups=2))
    state = release_quota(state, ReleaseRequest(instance_id="a"))
    assert state.in_use() == 0 and len(state.creates) == 2


def test_create_rate_limits_apply_per_hour_and_per_five_minutes() -> None:
    state = QuotaState()
    for n in range(3):
        state, reply = acquire_quota(state, quota(f"i{n}", max_concurrent=10, max_creates_per_5_minutes=3))
        assert reply.granted
        state = release_quota(state, ReleaseRequest(instance_id=f"i{n}"))
    state, refused = acquire_quota(state, quota("x", max_concurrent=10, max_creates_per_5_minutes=3))
    assert refused.reason == "scanner group creates per 5 minutes at the limit"
    later = T0 + timedelta(minutes=5)
    _, hourly = acquire_quota(state, quota("x", at=later, max_concurrent=10, max_creates_per_hour=3))
    assert hourly.reason == "scanner group creates per hour at the limit"
    _, next_hour = acquire_quota(
        state, quota("x", at=T0 + timedelta(hours=1), max_concurrent=10, max_creates_per_hour=3)
    )
    assert next_hour.granted


def test_lapsed_holds_free_their_slots() -> None:
    state, _ = acquire_quota(QuotaState(), quota("a", groups=2))
    _, reply = acquire_quota(state, quota("b", at=T0 + timedelta(hours=1, seconds=1)))
    assert reply.granted and reply.in_use == 1


def cores(instance_id: str, groups: int, per_group: float, max_cores: float, at: datetime = T0) -> QuotaRequest:
    return QuotaRequest(
        instance_id=instance_id,
        groups=groups,
        now=at,
        ttl_s=3600,
        max_concurrent=100,
        cores_per_group=per_group,
        max_cores=max_cores,
    )


def test_quota_budgets_cores_all_or_nothing() -> None:
    state, first = acquire_quota(QuotaState(), cores("a", groups=2, per_group=2.0, max_cores=5))
    assert first.granted and first.cores_in_use == 4.0
    state, refused = acquire_quota(state, cores("b", groups=1, per_group=2.0, max_cores=5))
    assert not refused.granted and refused.reason == "scanner cores at the limit" and refused.cores_in_use == 4.0
    state, fits = acquire_quota(state, cores("c", groups=1, per_group=1.0, max_cores=5))
    assert fits.granted and state.cores_in_use() == 5.0
    state = release_quota(state, ReleaseRequest(instance_id="a"))
    _, after = acquire_quota(state, cores("b", groups=1, per_group=2.0, max_cores=5))
    assert after.granted and after.cores_in_use == 3.0


def test_tenth_cores_add_up_exactly_to_the_budget() -> None:
    state = QuotaState()
    for n in range(10):
        state, reply = acquire_quota(state, cores(f"i{n}", groups=1, per_group=0.1, max_cores=1.0))
        assert reply.granted, n
    _, refused = acquire_quota(state, cores("x", groups=1, per_group=0.1, max_cores=1.0))
    assert refused.reason == "scanner cores at the limit"


def test_a_request_and_a_state_from_before_core_budgets_still_validate() -> None:
    old_state = QuotaState.model_validate(
        {"holders": {"a": {"groups": 1, "expires_at": "2026-10-02T09:00:00+00:00"}}, "creates": []}
    )
    old_request = QuotaRequest.model_validate(
        {"instance_id": "b", "groups": 1, "now": T0.isoformat(), "ttl_s": 60, "max_concurrent": 5}
    )
    state, reply = acquire_quota(old_state, old_request)
    assert reply.granted and state.cores_in_use() == 0.0 and old_request.max_cores == 100


@given(
    requests=st.lists(
        st.tuples(st.integers(1, 5), st.sampled_from([0.1, 0.5, 1.0, 1.5, 2.0, 4.0])), min_size=1, max_size=30
    ),
    max_cores=st.sampled_from([1.0, 4.0, 10.0, 100.0]),
)
def test_granted_cores_never_exceed_the_budget(requests: list[tuple[int, float]], max_cores: float) -> None:
    state = QuotaState()
    for index, (groups, per_group) in enumerate(requests):
        state, _ = acquire_quota(state, cores(f"i{index}", groups, per_group, max_cores))
        assert state.cores_in_use() <= max_cores + 1e-6
