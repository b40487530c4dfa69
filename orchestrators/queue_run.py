"""The steps of one `scan_deployment_v2`: resolve, cache, queue, wait for the scans, store, notify.

The scan itself runs in `scan_batch` orchestrations the app's scan queue grants (orchestrators/scan_batch.py): a
batch holds images of any deployments and wakes each one that asked (`image_done`) as soon as an image's result is
stored. Here the orchestration enqueues its images, starts the batches its enqueue granted, and waits for one
event per image. Its only timer is a sparse backstop: at its holder's scan deadline plus a grace (a batch in
flight), or at the queue limit SCAN_QUEUE_MAX_HOURS (an image still queued), or when the create rate frees a
slot (only the one orchestration the queue named). Deterministic like ScanRun, whose resolve/cache/store it reuses.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from activities import names as activity
from core.queue_payloads import (
    WAITER_BACKSTOP_S,
    WAITER_POLL_S,
    enqueue_input,
    image_done_event,
    queue_input,
    waiter_deadline,
    wake_input,
)
from core.report import ImageResult
from core.results import ImageToCheck, LatestResponse
from core.scan_payloads import describe_failure
from core.scan_plan import (
    QUEUED,
    SCANNING,
    distinct_images,
    failed_result,
    lease_key,
    scan_output,
    timed_out_result,
)
from core.scan_queue import ImageAnswer
from entities.names import ENQUEUE_OPERATION, STATUS_OPERATION, TICK_OPERATION, WITHDRAW_OPERATION
from orchestrators.calls import call, queue_entity
from orchestrators.scan_run import ScanRun

Steps = Generator[Any, Any, None]


@dataclass
class Waiting:
    """An image this orchestration waits for: who holds it (a batch runner) and until when."""

    item: ImageToCheck
    holder: str | None
    deadline: datetime


class QueueRun(ScanRun):
    """`ScanRun` with the queue instead of leases, quota and own scanner groups."""

    def run(self) -> Generator[Any, Any, dict[str, Any]]:
        """Resolve, check the cache, queue and wait; then always store and notify (no groups of its own)."""
        try:
            yield from self.resolve()
            yield from self.check_cache()
            yield from self.queue_and_wait()
        except Exception as error:  # a final activity failure: record it, then store like any other path
            self.error = describe_failure(error)
            self.log("failed: %s", self.error)
        yield from self.store_and_clean_up()
        self.status("failed" if self.error else "done")
        target = self.request.target.model_dump(mode="json")
        return scan_output(target, self.ordered_results(), note=self.note, error=self.error)

    def check_cache(self) -> Steps:
        """A rescan re-checks the image for new CVEs: never a cached answer (no lookup, the same as `force`)."""
        if self.request.rescan:
            self.leased = distinct_images(self.checks)
            return
        yield from super().check_cache()

    def notify_payload(self, target: dict[str, Any], results: list[ImageResult]) -> dict[str, Any]:
        """A rescan's alert input says so: the notify activity alerts it only when its findings changed."""
        payload = super().notify_payload(target, results)
        return {**payload, "rescan": True} if self.request.rescan else payload

    def queue_limit(self) -> datetime:
        return self.started_at + timedelta(hours=self.options.scan_queue_max_hours)

    def queue_and_wait(self) -> Steps:
        """Enqueue every image to scan, start what was granted, wait for each image's `image_done`."""
        items, self.leased = self.leased, []  # no image leases here: the queue is the single flight
        if not items:
            return
        self.status("queued")
        reply = yield self.context.call_entity(
            queue_entity(),
            ENQUEUE_OPERATION,
            enqueue_input(
                self.instance_id, items, self.now(), self.options, force=self.bypass_done(), low=self.request.rescan
            ),
        )
        waiting = {lease_key(item): Waiting(item, None, self.queue_limit()) for item in items}
        read: list[str] = []
        for answer in (ImageAnswer.model_validate(a) for a in reply.get("images", [])):
            read += self.place(waiting, answer)
        self.progress.mark([w.item.image for w in waiting.values()], QUEUED)
        retry_at = yield from self.start(reply)
        if read:
            yield from self.read_stored(waiting, read)
        yield from self.wait(waiting, retry_at)

    def bypass_done(self) -> bool:
        """`force`, or a rescan: the queue must scan again, not answer with an image it finished within the hour."""
        return self.request.force or self.request.rescan

    def place(self, waiting: dict[str, Waiting], answer: ImageAnswer) -> list[str]:
        """Apply one queue answer; the keys to read from storage (finished, or unknown to the queue)."""
        entry = waiting.get(answer.key)
        if entry is None:
            return []
        if answer.state == "in_flight" and answer.deadline is not None:
            entry.holder = answer.holder
            entry.deadline = waiter_deadline(answer.deadline)
            self.progress.mark([entry.item.image], SCANNING)
            return []
        if answer.state == "queued":
            return []
        return [answer.key]

    def start(self, reply: dict[str, Any]) -> Generator[Any, Any, datetime | None]:
        """Start the batches a queue reply granted; the time to `tick` when only the create rate blocks."""
        grants = reply.get("grants") or []
        if grants:
            yield call(self.context, activity.WAKE_ORCHESTRATIONS, wake_input(grants, self.options))
        retry_at = reply.get("retry_at")
        return datetime.fromisoformat(retry_at) if retry_at else None

    def wait(self, waiting: dict[str, Waiting], retry_at: datetime | None) -> Steps:
        """Wait for one `image_done_{key}` event per image, all at once, against one backstop timer.

        Only the orchestration the queue named waits for the create rate first (`retry_at`: timer, `tick`, start
        what it grants; events arriving meanwhile are kept). Each image's event has its own name: the SDK keeps
        one early event per name, and one wait per name never meets a second. If the backstop fires first (an
        event lost, a holder late, a very long queue), the images left are looked up in the queue and in storage
        every WAITER_POLL_S until they are done or their deadline passes (latency, never a wrong result).
        """
        while retry_at is not None:
            yield self.context.create_timer(retry_at)
            reply = yield self.context.call_entity(
                queue_entity(), TICK_OPERATION, queue_input(self.now(), self.options)
            )
            retry_at = yield from self.start(reply)
        if not waiting:
            return
        self.status("waiting")
        events = {key: self.context.wait_for_external_event(image_done_event(key)) for key in waiting}
        latest_holder = max([self.now() + timedelta(seconds=WAITER_BACKSTOP_S), *self.holder_deadlines(waiting)])
        backstop = min(max(w.deadline for w in waiting.values()), latest_holder)
        timer = self.context.create_timer(backstop)
        yield self.context.task_any([self.context.task_all(list(events.values())), timer])
        if not timer.is_completed:  # a pending timer keeps the instance Running until it fires (Durable docs)
            timer.cancel()
        for task in events.values():  # an external event task only ever succeeds
            if task.is_completed:
                self.take(waiting, task.result)
        while waiting:
            due = [key for key, w in waiting.items() if w.deadline <= self.now()]
            yield from self.recheck(waiting, list(waiting), due)
            if waiting:
                yield self.context.create_timer(self.now() + timedelta(seconds=WAITER_POLL_S))

    @staticmethod
    def holder_deadlines(waiting: dict[str, Waiting]) -> list[datetime]:
        return [w.deadline for w in waiting.values() if w.holder is not None]

    def take(self, waiting: dict[str, Waiting], data: Any) -> None:
        """An `image_done_{key}` event: the stored result of one of this orchestration's images."""
        if not isinstance(data, dict) or data.get("key") not in waiting:
            return
        entry = waiting.pop(data["key"])
        result = ImageResult.model_validate(data.get("result"))
        self.finish(result.model_copy(update={"image": entry.item.image}))

    def recheck(self, waiting: dict[str, Waiting], keys: list[str], due: list[str]) -> Steps:
        """Ask the queue where the images are; read finished ones; give up on those past their deadline."""
        reply = yield self.context.call_entity(
            queue_entity(), STATUS_OPERATION, {"keys": keys, "now": self.now().isoformat()}
        )
        read: list[str] = []
        gave_up: list[str] = []
        for answer in (ImageAnswer.model_validate(a) for a in reply.get("images", [])):
            entry = waiting[answer.key]
            if answer.state == "in_flight" and answer.deadline is not None:
                if answer.holder != entry.holder or waiter_deadline(answer.deadline) > entry.deadline:
                    entry.holder, entry.deadline = answer.holder, waiter_deadline(answer.deadline)
                elif answer.key in due:
                    read.append(answer.key)
            elif answer.state == "queued":
                entry.holder, entry.deadline = None, self.queue_limit()
                if self.now() >= self.queue_limit():
                    gave_up.append(answer.key)
            else:
                read.append(answer.key)
        if gave_up:
            limit = f"still queued after SCAN_QUEUE_MAX_HOURS ({self.options.scan_queue_max_hours} h)"
            self.finish(
                *(timed_out_result(waiting.pop(k).item.image, limit, instance_id=self.instance_id) for k in gave_up)
            )
            self.context.signal_entity(
                queue_entity(), WITHDRAW_OPERATION, {"instance_id": self.instance_id, "keys": gave_up}
            )
        if read:
            yield from self.read_stored(waiting, read)

    def read_stored(self, waiting: dict[str, Waiting], keys: list[str]) -> Steps:
        """The latest stored result of each image (the event was lost, or it finished before we asked)."""
        entries = [waiting[key] for key in keys]
        answer = yield call(self.context, activity.READ_LATEST_RESULTS, {"images": [w.item.image for w in entries]})
        latest = LatestResponse.model_validate(answer).results
        for key, entry, result in zip(keys, entries, latest, strict=False):
            waiting.pop(key, None)
            if result is not None and (entry.holder is None or result.instance_id == entry.holder):
                self.finish(result.model_copy(update={"image": entry.item.image}))
            elif entry.holder is not None:
                reason = f"no result from the scan by {entry.holder} by its deadline"
                self.finish(timed_out_result(entry.item.image, reason, instance_id=self.instance_id))
            else:
                self.finish(
                    failed_result(
                        entry.item.image, "the scan queue has no record of this image", instance_id=self.instance_id
                    )
                )
