"""core.scan_queue: the pure transitions of the app's scan queue (examples, then properties with hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.naming import batch_instance_id
from core.scan_queue import (
    Budget,
    EnqueueRequest,
    FinishRequest,
    QueuedImage,
    QueueState,
    ReleaseRequest,
    StatusRequest,
    TickRequest,
    WithdrawRequest,
    apply,
    batch_size,
    enqueue,
    finish_image,
    release,
    status,
    tick,
    withdraw,
)

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
BUDGET = Budget(max_groups=2, max_images_per_group=2, scan_timeout_s=1200)


def image(n: int) -> QueuedImage:
    return QueuedImage(key=f"k{n}", image=f"docker.io/library/i{n}:1")


def ask(state: QueueState, who: str, *ns: int, at: datetime = T0, budget: Budget = BUDGET, force: bool = False,
        low: bool = False):  # fmt: skip
    return enqueue(state, EnqueueRequest(instance_id=who, now=at, images=tuple(image(n) for n in ns), budget=budget,
                                         force=force, low=low))  # fmt: skip


def test_a_burst_is_granted_from_the_head_in_batches_up_to_the_budget() -> None:
    state, reply = ask(QueueState(), "a", 1, 2, 3)
    state, reply2 = ask(state, "b", 3, 4, 5, 6)
    assert [g.runner for g in reply.grants] == [
        batch_instance_id(1, "k1", "a"),
        batch_instance_id(2, "k3", "a"),
    ]
    assert [[i.key for i in g.images] for g in reply.grants] == [["k1", "k2"], ["k3"]]  # 3 over 2 groups
    assert reply2.grants == ()  # both groups in use
    assert [p.item.key for p in state.pending] == ["k4", "k5", "k6"]  # k3 is in flight: b waits for it
    answers = {a.key: a.state for a in reply2.images}
    assert answers == {"k3": "in_flight", "k4": "queued", "k5": "queued", "k6": "queued"}


def test_batch_size_spreads_a_short_queue_and_fills_groups_for_a_long_one() -> None:
    budget = Budget(max_groups=20, max_images_per_group=2)
    assert batch_size(1012, 20, budget) == 2
    assert batch_size(15, 20, budget) == 1
    assert batch_size(5, 0, budget) == 0


def test_release_grants_the_next_batch_and_finish_names_every_requester() -> None:
    state, reply = ask(QueueState(), "a", 1)
    runner = reply.grants[0].runner
    state, _ = ask(state, "b", 1)  # joins the batch in flight
    state, done = finish_image(state, FinishRequest(runner=runner, key="k1", now=T0 + timedelta(seconds=60)))
    assert done.requesters == ("a", "b")
    state, _ = ask(state, "c", 2, 3, 4, at=T0 + timedelta(seconds=61))
    state, reply = release(state, ReleaseRequest(runner=runner, now=T0 + timedelta(seconds=90), budget=BUDGET))
    assert [[i.key for i in g.images] for g in reply.grants] == [["k4"]]
    state, late = ask(state, "d", 1, at=T0 + timedelta(seconds=100))
    assert late.images[0].state == "done"  # read the stored result, no second scan
    _, forced = ask(state, "e", 1, at=T0 + timedelta(seconds=100), force=True)
    assert forced.images[0].state in ("queued", "in_flight")  # a manual scan scans a finished image again


def test_a_released_batch_gives_unfinished_images_back_at_the_head() -> None:
    state, reply = ask(QueueState(), "a", 1, 2, budget=Budget(max_groups=1, max_images_per_group=2))
    runner = reply.grants[0].runner
    state, _ = ask(state, "b", 3, budget=Budget(max_groups=1))
    state, again = release(state, ReleaseRequest(runner=runner, now=T0, budget=Budget(max_groups=1)))
    assert [i.key for i in again.grants[0].images] == ["k1", "k2"]  # k1, k2 back before k3
    assert again.grants[0].requesters == {"k1": ("a",), "k2": ("a",)}


def test_the_create_rate_names_one_retry_time_and_tick_grants_then() -> None:
    budget = Budget(max_groups=10, max_creates_per_5_minutes=2, max_images_per_group=1)
    state, first = ask(QueueState(), "a", 1, 2, 3, 4, budget=budget)
    assert len(first.grants) == 2 and first.retry_at == T0 + timedelta(minutes=5)
    state, other = ask(state, "b", 5, budget=budget, at=T0 + timedelta(seconds=10))
    assert other.retry_at is None  # one orchestration waits for that moment, not everyone
    state, later = tick(state, TickRequest(now=T0 + timedelta(minutes=5), budget=budget))
    assert [[i.key for i in g.images] for g in later.grants] == [["k3"], ["k4"]]


def test_status_and_withdraw() -> None:
    state, _ = ask(QueueState(), "a", 1, 2, budget=Budget(max_groups=1, max_images_per_group=1))
    state, _ = ask(state, "b", 2, budget=Budget(max_groups=1, max_images_per_group=1))
    _, where = status(state, StatusRequest(keys=("k1", "k2", "k9"), now=T0))
    assert [a.state for a in where.images] == ["in_flight", "queued", "unknown"]
    state, _ = withdraw(state, WithdrawRequest(instance_id="a", keys=("k2",)))
    assert state.pending[0].requesters == ("b",)
    state, _ = withdraw(state, WithdrawRequest(instance_id="b", keys=("k2",)))
    assert state.pending == ()


def test_apply_validates_and_rejects_unknown_operations() -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        apply("poll", QueueState(), {})
    with pytest.raises(ValueError):
        apply("enqueue", QueueState(), {"instance_id": "", "now": T0.isoformat(), "images": [], "budget": {}})
    _, reply = apply("status", QueueState(), {"keys": ["k1"], "now": T0.isoformat()})
    assert reply == {"images": [{"key": "k1", "state": "unknown"}]}


def test_rescans_wait_while_a_deployment_scan_is_pending_and_are_promoted_when_one_asks() -> None:
    one = Budget(max_groups=1, max_images_per_group=1)
    state, first = ask(QueueState(), "deploy-a", 1, budget=one)
    state, _ = ask(state, "rescan-x", 2, 3, budget=one, low=True)
    state, _ = ask(state, "deploy-b", 4, budget=one)
    state, _ = ask(state, "deploy-c", 3, budget=one)  # k3 was pending low: promoted behind k4
    assert [(p.item.key, p.low) for p in state.pending] == [("k2", True), ("k4", False), ("k3", False)]
    assert state.pending[2].requesters == ("rescan-x", "deploy-c")
    order = []
    runner = first.grants[0].runner
    for n in range(3):
        at = T0 + timedelta(minutes=n + 1)
        key = state.batches[runner].images[0].key
        state, _ = finish_image(state, FinishRequest(runner=runner, key=key, now=at))
        state, reply = release(state, ReleaseRequest(runner=runner, now=at, budget=one))
        (grant,) = reply.grants
        order.append(grant.images[0].key)
        runner = grant.runner
    assert order == ["k4", "k3", "k2"]  # normal first (FIFO), the rescan-only image last
    assert state.batches[runner].low == ("k2",)


def test_low_batches_keep_one_group_and_one_create_for_deployment_scans() -> None:
    budget = Budget(max_groups=3, max_images_per_group=1, max_creates_per_5_minutes=10)
    state, reply = ask(QueueState(), "rescan-x", 1, 2, 3, 4, budget=budget, low=True)
    assert len(reply.grants) == 2 and len(state.pending) == 2  # the third group stays free
    state, deploy = ask(state, "deploy-a", 9, budget=budget, at=T0 + timedelta(seconds=5))
    assert [i.key for g in deploy.grants for i in g.images] == ["k9"]
    rate = Budget(max_groups=10, max_images_per_group=1, max_creates_per_5_minutes=3)
    state, reply = ask(QueueState(), "rescan-x", 1, 2, 3, 4, budget=rate, low=True)
    assert len(reply.grants) == 2 and reply.retry_at == T0 + timedelta(minutes=5)
    state, deploy = ask(state, "deploy-a", 9, budget=rate, at=T0 + timedelta(seconds=5))
    assert len(deploy.grants) == 1  # the create kept back


def test_a_released_low_batch_goes_back_to_the_low_class_unless_a_deployment_joined() -> None:
    one = Budget(max_groups=1, max_images_per_group=2)
    state, reply = ask(QueueState(), "rescan-x", 1, 2, budget=one, low=True)
    runner = reply.grants[0].runner
    assert state.batches[runner].low == ("k1", "k2")
    state, _ = ask(state, "deploy-a", 2, budget=one)  # joins k2 in flight: no longer rescan-only
    state, _ = ask(state, "deploy-b", 5, budget=one)
    state, again = release(state, ReleaseRequest(runner=runner, now=T0 + timedelta(minutes=1), budget=one))
    assert [[i.key for i in g.images] for g in again.grants] == [["k2", "k5"]]
    assert [(p.item.key, p.low) for p in state.pending] == [("k1", True)]


def test_an_old_state_without_classes_still_loads() -> None:
    raw = {"pending": [{"item": {"key": "k1", "image": "docker.io/library/i1:1"}, "requesters": ["a"]}]}
    state, reply = apply("enqueue", QueueState.model_validate(raw), {
        "instance_id": "b", "now": T0.isoformat(), "images": [], "budget": BUDGET.model_dump(mode="json")})  # fmt: skip
    assert reply["grants"][0]["images"][0]["key"] == "k1"
    assert "low" not in state.model_dump(mode="json", exclude_defaults=True)["batches"][reply["grants"][0]["runner"]]


# ---- properties -------------------------------------------------------------------------------------------------

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("enqueue"), st.sampled_from("abcdefXY"), st.lists(st.integers(0, 12), min_size=1, max_size=4)
        ),
        st.tuples(st.just("finish"), st.integers(0, 30), st.integers(0, 3)),
        st.tuples(st.just("release"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("tick"), st.just(0), st.just(0)),
    ),
    max_size=60,
)
budgets = st.builds(
    Budget,
    max_groups=st.integers(1, 4),
    max_cores=st.sampled_from([2.0, 3.0, 100.0]),
    scanner_cpu=st.sampled_from([1.0, 1.5]),
    max_creates_per_5_minutes=st.integers(1, 6),
    max_creates_per_hour=st.integers(2, 12),
    max_images_per_group=st.integers(1, 3),
)


@settings(max_examples=300, deadline=None)
@given(steps, budgets, st.lists(st.integers(1, 200), min_size=60, max_size=60))
def test_invariants(ops: list[tuple[Any, ...]], budget: Budget, gaps: list[int]) -> None:
    """Capacity never exceeded, each image in at most one batch, FIFO grants within each class, low batches only
    when no normal image is pending and within the reserved budget, every requester answered (X, Y: rescans).
    """
    state, now = QueueState(), T0
    asked: dict[str, set[str]] = {}
    answered: dict[str, set[str]] = {}
    granted_order: list[str] = []
    for (op, a, b), gap in zip(ops, gaps, strict=False):
        now += timedelta(seconds=gap)
        before = [p.item.key for p in state.pending]
        low_before = {p.item.key for p in state.pending if p.low}
        if op == "enqueue":
            for n in b:
                asked.setdefault(f"k{n}", set()).add(a)
            state, reply = ask(state, a, *b, at=now, budget=budget, low=a in "XY")
            low_before -= {f"k{n}" for n in b} if a not in "XY" else set()  # promoted by a normal request
        elif op == "finish" and state.batches:
            batch = sorted(state.batches.values(), key=lambda x: x.runner)[a % len(state.batches)]
            if not batch.images:
                continue
            key = batch.images[b % len(batch.images)].key
            state, reply = finish_image(state, FinishRequest(runner=batch.runner, key=key, now=now))
            answered.setdefault(key, set()).update(reply.requesters)
            for who in reply.requesters:
                asked.get(key, set()).discard(who)
        elif op == "release" and state.batches:
            runner = sorted(state.batches)[a % len(state.batches)]
            before = [i.key for i in state.batches[runner].images] + before  # unfinished: back to the head
            low_before |= set(state.batches[runner].low)  # of their class
            state, reply = release(state, ReleaseRequest(runner=runner, now=now, budget=budget))
        elif op == "tick":
            state, reply = tick(state, TickRequest(now=now, budget=budget))
        else:
            continue
        taken = [i.key for grant in reply.grants for i in grant.images]
        for grant in reply.grants:
            assert len(grant.images) <= budget.max_images_per_group
        remaining = [p.item.key for p in state.pending]
        for g in (k for k in taken if k in before):  # FIFO: what was granted stood before what still waits (its class)
            same = [r for r in remaining if r in before and (r in low_before) == (g in low_before)]
            assert all(before.index(g) < before.index(r) for r in same)
        low_grants = [g for g in reply.grants if g.runner in state.batches and state.batches[g.runner].low]
        if low_grants:
            assert all(p.low for p in state.pending)  # no normal image waits while a rescan is granted
            assert len(state.batches) <= max(1, budget.max_groups - 1)
            assert reply.grants[-1].runner == low_grants[-1].runner  # normal batches first
        for batch in state.batches.values():
            assert set(batch.low) <= {i.key for i in batch.images}
            assert all(set(batch.requesters.get(k, ())) <= set("XY") for k in batch.low)  # low: only rescans asked
        granted_order += taken
        _check(state, budget, now)
    for key, waiting in asked.items():  # every requester still waiting is pending or in flight (never lost)
        if waiting and key not in state.done:
            assert any(p.item.key == key and waiting <= set(p.requesters) for p in state.pending) or any(
                waiting <= set(batch.requesters.get(key, ())) for batch in state.batches.values()
            )


def _check(state: QueueState, budget: Budget, now: datetime) -> None:
    assert len(state.batches) <= budget.max_groups
    assert sum(b.cores for b in state.batches.values()) <= budget.max_cores + 1e-9
    assert sum(1 for t in state.creates if now - t < timedelta(minutes=5)) <= budget.max_creates_per_5_minutes
    assert len(state.creates) <= budget.max_creates_per_hour
    in_batches = [i.key for b in state.batches.values() for i in b.images]
    assert len(in_batches) == len(set(in_batches))  # each image in at most one batch
    pending = [p.item.key for p in state.pending]
    assert len(pending) == len(set(pending)) and not set(pending) & set(in_batches)
