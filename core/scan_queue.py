"""The app's one scan queue as pure transitions: pending images in arrival order, batches in flight, capacity.

The entity `scan_queue` (entities/scan_queue.py) is a thin shell over `apply`: each operation is a small pure
function `(state, request) -> (state, reply)` in the table `OPERATIONS`, in the spirit of durabletask-python's
scheduled transitions. Rules:
- An image (by image key) is pending once, with every instance that asked for it, in the order first asked.
- A batch takes distinct pending images from the HEAD of the queue (whoever asked), at most
  `max_images_per_group`, fewer when the queue is short against the free groups (`batch_size`), and exists only
  while the ledger allows one more group: groups (a deleting group counts until it is gone), cores
  (`scanner_cpu` each), creates in the last 5 minutes and in the last hour.
- Grants are made whenever something may have freed capacity (enqueue, release, tick): at once, never by polling.
  Entities cannot wake orchestrations, so every reply lists the batches it granted; the caller starts them. When
  only the create rate blocks, the reply names `retry_at` (once: the first caller that meets it) and that caller
  waits a durable timer until then and calls `tick`.
- A finished image is remembered for `DONE_MEMORY_S`: a late request reads the stored result, no second scan.
- Two classes: normal (deployment, manual, sweep scans) and low (`low=True`: scheduled rescans). A low batch only
  when no normal image is pending, within `reserved_budget` (core/queue_capacity.py); a normal request promotes a
  low pending image; FIFO within each class (docs/architecture.md, "Two classes").
Ties are broken by arrival order (the order of operations the entity receives), so the same inputs always make
the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.naming import batch_instance_id
from core.queue_capacity import HOUR, Budget, batch_size, reserved_budget
from core.queue_capacity import blocked_until as capacity_blocked_until

__all__ = ["Budget", "batch_size"]

DONE_MEMORY_S = 3600
"""How long the queue remembers a finished image (a later request reads the stored result, no second scan)."""
BATCH_GRACE_S = 900
"""A batch whose runner never released it frees its capacity this long after its scan deadline (a crashed runner
never blocks the queue forever); also the grace a waiter adds to its holder's deadline."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QueuedImage(_Model):
    """An image to scan: canonical reference, digest when known, and its key (the queue's identity)."""

    key: str = Field(min_length=1)
    image: str = Field(min_length=1)
    digest: str | None = None


class Pending(_Model):
    """A queued image with the instances that asked for it (first asker first)."""

    item: QueuedImage
    requesters: tuple[str, ...]
    since: datetime | None = None
    """When it was first queued (None: queued again after its batch failed, or state older than this field)."""
    low: bool = False
    """Only rescans asked for it: granted when no normal image is pending (absent in older states: normal)."""


class Batch(_Model):
    """A batch in flight: its runner orchestration, images, requesters per key, cores, grant time and deadline.

    `deadline` is the grant time plus the scan timeout plus provisioning slack: the latest a waiter should expect
    the runner's results (they add BATCH_GRACE_S). `images` shrinks as each image finishes.
    """

    runner: str
    images: tuple[QueuedImage, ...]
    requesters: dict[str, tuple[str, ...]]
    cores: float
    granted_at: datetime
    deadline: datetime
    low: tuple[str, ...] = ()
    """Keys granted at low priority that only rescans asked for (a released batch puts them back in the low class)."""


class QueueState(_Model):
    """The entity's state: pending images (arrival order), batches by runner id, create times, finished images."""

    pending: tuple[Pending, ...] = ()
    batches: dict[str, Batch] = Field(default_factory=dict)
    creates: tuple[datetime, ...] = ()
    done: dict[str, datetime] = Field(default_factory=dict)
    sequence: int = 0
    retry_at: datetime | None = None


ImageState = Literal["done", "in_flight", "queued"]
WaitCause = Literal["capacity", "create_rate"]


class ImageAnswer(_Model):
    """One image's answer to `enqueue`/`status`: done recently (read the stored result), in flight, queued."""

    key: str
    state: ImageState | Literal["unknown"]
    holder: str | None = None
    deadline: datetime | None = None


class Grant(_Model):
    """A batch to start now: run it as orchestration `runner` (the id is also its uploads prefix)."""

    runner: str
    images: tuple[QueuedImage, ...]
    requesters: dict[str, tuple[str, ...]]
    deadline: datetime
    waited_s: tuple[float, ...] = ()
    """Seconds each image (with a known queue time) waited before this grant; for metrics only."""
    pending: int | None = None
    """Images left pending after this grant (the queue's depth); for metrics only."""
    waited_for: WaitCause | None = None
    """Set when the batch had waited: for groups or cores (granted by a release) or the create rate (by a tick)."""


class Reply(_Model):
    """Every operation's answer: per image, the grants made now, and when to `tick` when only the rate blocks."""

    images: tuple[ImageAnswer, ...] = ()
    grants: tuple[Grant, ...] = ()
    retry_at: datetime | None = None
    requesters: tuple[str, ...] = ()


class EnqueueRequest(_Model):
    instance_id: str = Field(min_length=1)
    now: datetime
    images: tuple[QueuedImage, ...]
    budget: Budget
    force: bool = False
    """A manual scan: an image finished recently is scanned again (one in flight is still shared)."""
    low: bool = False
    """A scheduled rescan: its new images wait in the low class (granted only when no normal image is pending)."""


class FinishRequest(_Model):
    runner: str = Field(min_length=1)
    key: str = Field(min_length=1)
    now: datetime


class ReleaseRequest(_Model):
    runner: str = Field(min_length=1)
    now: datetime
    budget: Budget


class TickRequest(_Model):
    now: datetime
    budget: Budget


class StatusRequest(_Model):
    keys: tuple[str, ...]
    now: datetime


class WithdrawRequest(_Model):
    instance_id: str = Field(min_length=1)
    keys: tuple[str, ...]


# ---- capacity ---------------------------------------------------------------------------------------------------


def prune(state: QueueState, now: datetime) -> QueueState:
    """Without creates older than an hour, finished images past their memory, abandoned batches."""
    return state.model_copy(
        update={
            "creates": tuple(t for t in state.creates if now - t < HOUR),
            "done": {k: t for k, t in state.done.items() if (now - t).total_seconds() < DONE_MEMORY_S},
            "batches": {k: b for k, b in state.batches.items() if now < b.deadline + timedelta(seconds=BATCH_GRACE_S)},
        }
    )


def blocked_until(state: QueueState, now: datetime, budget: Budget) -> datetime | None:
    """None when one more group does not fit (a release grants); else when the create rate allows one."""
    cores = sum(b.cores for b in state.batches.values())
    return capacity_blocked_until(len(state.batches), cores, state.creates, now, budget)


def next_class(state: QueueState) -> tuple[tuple[Pending, ...], bool]:
    """The pending entries the next batch takes from, in order: the normal class, or the low one when it is empty."""
    normal = tuple(p for p in state.pending if not p.low)
    return (normal, False) if normal else (tuple(p for p in state.pending if p.low), True)


def grant(
    state: QueueState, now: datetime, budget: Budget, waited_for: WaitCause | None = None
) -> tuple[QueueState, tuple[Grant, ...], datetime | None]:
    """Grant batches from the head of the queue while the ledger allows; the new state, the grants, `retry_at`.

    `waited_for`: what the batches granted now had waited for (a release: capacity; a tick: the create rate).
    """
    grants: list[Grant] = []
    while state.pending:
        queue, low = next_class(state)
        limit = reserved_budget(budget) if low else budget
        when = blocked_until(state, now, limit)
        if when is None:
            return state, tuple(grants), None
        if when > now:
            if state.retry_at is not None and now < state.retry_at and state.retry_at <= when:
                return state, tuple(grants), None  # someone already waits for that moment (or an earlier one)
            return state.model_copy(update={"retry_at": when}), tuple(grants), when
        size = batch_size(len(queue), budget.max_groups - len(state.batches), budget)
        taken = queue[:size]
        keys = {p.item.key for p in taken}
        rest = tuple(p for p in state.pending if p.item.key not in keys)
        head = taken[0]
        runner = batch_instance_id(state.sequence + 1, head.item.key, head.requesters[0] if head.requesters else "")
        deadline = now + timedelta(seconds=budget.scan_timeout_s + BATCH_GRACE_S // 3)
        batch = Batch(
            runner=runner,
            images=tuple(p.item for p in taken),
            requesters={p.item.key: p.requesters for p in taken},
            cores=budget.scanner_cpu,
            granted_at=now,
            deadline=deadline,
            low=tuple(p.item.key for p in taken) if low else (),
        )
        waited = tuple(round((now - p.since).total_seconds(), 3) for p in taken if p.since is not None)
        grants.append(
            Grant(
                runner=runner,
                images=batch.images,
                requesters=batch.requesters,
                deadline=deadline,
                waited_s=waited,
                pending=len(rest),
                waited_for=waited_for,
            )
        )
        state = state.model_copy(
            update={
                "pending": rest,
                "batches": {**state.batches, runner: batch},
                "creates": (*state.creates, now),
                "sequence": state.sequence + 1,
                "retry_at": None,
            }
        )
    return state, tuple(grants), None


# ---- operations -------------------------------------------------------------------------------------------------


def _where(state: QueueState, key: str, force: bool = False) -> tuple[ImageState | None, Batch | None]:
    for batch in state.batches.values():
        if any(item.key == key for item in batch.images):
            return "in_flight", batch
    if key in state.done and not force:
        return "done", None
    if any(p.item.key == key for p in state.pending):
        return "queued", None
    return None, None


def _answer(state: QueueState, key: str, force: bool = False) -> ImageAnswer:
    where, batch = _where(state, key, force)
    if batch is not None:
        return ImageAnswer(key=key, state="in_flight", holder=batch.runner, deadline=batch.deadline)
    return ImageAnswer(key=key, state=where or "unknown")


def enqueue(state: QueueState, request: EnqueueRequest) -> tuple[QueueState, Reply]:
    """Ask for images: each is done, joins a batch in flight as a waiter, joins a pending entry, or is appended."""
    state = prune(state, request.now)
    pending = list(state.pending)
    batches = dict(state.batches)
    for item in dict((i.key, i) for i in request.images).values():
        where, batch = _where(state, item.key, request.force)
        if batch is not None:
            asked = batch.requesters.get(item.key, ())
            if request.instance_id not in asked:
                requesters = {**batch.requesters, item.key: (*asked, request.instance_id)}
                low_keys = batch.low if request.low else tuple(k for k in batch.low if k != item.key)
                batches[batch.runner] = batch.model_copy(update={"requesters": requesters, "low": low_keys})
                state = state.model_copy(update={"batches": batches})
        elif where == "done" and not request.force:
            continue
        else:
            index = next((n for n, p in enumerate(pending) if p.item.key == item.key), None)
            if index is None:
                pending.append(
                    Pending(item=item, requesters=(request.instance_id,), since=request.now, low=request.low)
                )
            elif pending[index].low and not request.low:  # promoted: to the tail of the normal class
                entry = pending.pop(index)
                asked = (
                    entry.requesters
                    if request.instance_id in entry.requesters
                    else (*entry.requesters, request.instance_id)
                )
                pending.append(entry.model_copy(update={"requesters": asked, "low": False}))
            elif request.instance_id not in pending[index].requesters:
                entry = pending[index]
                pending[index] = entry.model_copy(update={"requesters": (*entry.requesters, request.instance_id)})
    state = state.model_copy(update={"pending": tuple(pending), "batches": batches})
    state, grants, retry_at = grant(state, request.now, request.budget)
    answers = tuple(_answer(state, item.key, request.force) for item in request.images)
    return state, Reply(images=answers, grants=grants, retry_at=retry_at)


def finish_image(state: QueueState, request: FinishRequest) -> tuple[QueueState, Reply]:
    """The runner stored an image's result: it leaves the batch (capacity stays held), who asked is answered."""
    batch = state.batches.get(request.runner)
    if batch is None or all(item.key != request.key for item in batch.images):
        return state, Reply()
    requesters = batch.requesters.get(request.key, ())
    rest = batch.model_copy(
        update={
            "images": tuple(i for i in batch.images if i.key != request.key),
            "requesters": {k: v for k, v in batch.requesters.items() if k != request.key},
            "low": tuple(k for k in batch.low if k != request.key),
        }
    )
    state = state.model_copy(
        update={"batches": {**state.batches, request.runner: rest}, "done": {**state.done, request.key: request.now}}
    )
    return state, Reply(requesters=requesters)


def release(state: QueueState, request: ReleaseRequest) -> tuple[QueueState, Reply]:
    """The runner's group is gone: its capacity goes to the next batches at once (they are in the reply).

    Images the batch did not finish (its runner failed before storing them) go back to the head of the queue
    with their requesters; `requesters` of the reply lists them (nothing is lost, nobody waits for nothing).
    """
    state = prune(state, request.now)
    batch = state.batches.get(request.runner)
    if batch is not None:
        back = tuple(
            Pending(item=i, requesters=batch.requesters.get(i.key, ()), low=i.key in batch.low) for i in batch.images
        )
        state = state.model_copy(
            update={
                "batches": {k: v for k, v in state.batches.items() if k != request.runner},
                "pending": back + state.pending,
            }
        )
    state, grants, retry_at = grant(state, request.now, request.budget, "capacity")
    return state, Reply(grants=grants, retry_at=retry_at)


def tick(state: QueueState, request: TickRequest) -> tuple[QueueState, Reply]:
    """The create rate's wait is over: grant what now fits."""
    state = prune(state, request.now).model_copy(update={"retry_at": None})
    state, grants, retry_at = grant(state, request.now, request.budget, "create_rate")
    return state, Reply(grants=grants, retry_at=retry_at)


def status(state: QueueState, request: StatusRequest) -> tuple[QueueState, Reply]:
    """Where each image is (read-only)."""
    current = prune(state, request.now)
    return state, Reply(images=tuple(_answer(current, key) for key in request.keys))


def withdraw(state: QueueState, request: WithdrawRequest) -> tuple[QueueState, Reply]:
    """An instance stops waiting for `keys` (its queue limit passed): pending images nobody else wants leave."""
    pending: list[Pending] = []
    for entry in state.pending:
        kept = entry
        if entry.item.key in request.keys:
            kept = entry.model_copy(
                update={"requesters": tuple(r for r in entry.requesters if r != request.instance_id)}
            )
            if not kept.requesters:
                continue
        pending.append(kept)
    return state.model_copy(update={"pending": tuple(pending)}), Reply()


Transition = Callable[[QueueState, Any], tuple[QueueState, Reply]]
OPERATIONS: dict[str, tuple[type[BaseModel], Transition]] = {
    "enqueue": (EnqueueRequest, enqueue),
    "finish_image": (FinishRequest, finish_image),
    "release": (ReleaseRequest, release),
    "tick": (TickRequest, tick),
    "status": (StatusRequest, status),
    "withdraw": (WithdrawRequest, withdraw),
}


def apply(operation: str | None, state: QueueState, payload: object) -> tuple[QueueState, dict[str, Any]]:
    """Validate the input of `operation`, run its transition; ValueError for an unknown operation."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r} of the scan queue")
    model, transition = OPERATIONS[operation]
    new_state, reply = transition(state, model.model_validate(payload))
    return new_state, reply.model_dump(mode="json", exclude_defaults=True)
