"""Orchestration `scan_batch`: one scanner group for a batch the scan queue granted (images of any deployments).

Steps: create the group (GET + PUT), wait for each image's `scanner_upload` event (or a sparse backstop: one GET at
half the timeout and at the timeout), collect and store each image as it finishes, tell the queue and wake every
instance that asked for it (`image_done`), then delete the group, read it until it is gone, release its capacity
to the queue and start the batches that the release granted. SCAN_TIMEOUT counts from the group's create.
Deterministic: durable timers, activity and entity calls, pure decisions of core only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df

from activities import names as activity
from core.naming import scanner_group_name
from core.queue_payloads import (
    DELETE_CONFIRM_DELAYS_S,
    QUOTA_RETRY_DELAYS_S,
    SCAN_BATCH_ORCHESTRATOR,
    SCANNER_UPLOAD_EVENT,
    BatchInput,
    backstops,
    image_done_input,
    queue_input,
    wake_input,
)
from core.report import ImageResult
from core.results import ImageToCheck
from core.scan_payloads import collect_input, create_group_input, describe_failure, store_input
from core.scan_plan import GroupPlan, failed_result, overall_status
from core.scan_views import GroupVerdict, group_verdict
from entities.names import FINISH_IMAGE_OPERATION, QUEUE_RELEASE_OPERATION, TICK_OPERATION
from orchestrators.calls import call, checked, queue_entity

logger = logging.getLogger(__name__)
bp = df.Blueprint()
Steps = Generator[Any, Any, None]


class BatchRun:
    """One batch's state between steps."""

    def __init__(self, context: df.DurableOrchestrationContext, batch: BatchInput) -> None:
        self.context = context
        self.grant = batch.grant
        self.options = batch.options
        self.runner: str = context.instance_id
        self.items = [ImageToCheck(image=i.image, digest=i.digest) for i in self.grant.images]
        self.keys = [i.key for i in self.grant.images]
        self.group = GroupPlan(name=scanner_group_name(self.runner), prefix=self.runner, images=tuple(self.items))
        self.results: dict[int, ImageResult] = {}
        self.created = False
        self.started: datetime | None = None
        self.recorded: dict[str, str] = {}  # image -> when its result was stored (the output reports it)
        self.error: str | None = None

    def now(self) -> datetime:
        current: datetime = self.context.current_utc_datetime
        return current if current.tzinfo else current.replace(tzinfo=UTC)

    def status(self, phase: str) -> None:
        self.context.set_custom_status(
            {"phase": phase, "group": self.group.name, "images": len(self.items), "done": len(self.results)}
        )

    def run(self) -> Generator[Any, Any, dict[str, Any]]:
        """Create, wait and collect image by image, then delete, release and start the next batches."""
        try:
            yield from self.create()
            yield from self.scan()
        except Exception as error:  # a final activity failure: the images left fail with it
            self.error = describe_failure(error)
            if not self.context.is_replaying:
                logger.info("%s: failed: %s", self.runner, self.error)
        left = [n for n in range(len(self.items)) if n not in self.results]
        if left:
            reason = f"scan did not finish: {self.error or 'no result was produced'}"
            failed = [failed_result(self.items[n].image, reason, instance_id=self.runner) for n in left]
            yield from self.done(dict(zip(left, failed, strict=True)), last=True)
        yield from self.delete_and_release()
        self.status("done")
        return {
            "runner": self.runner,
            "group": self.group.name,
            "images": [self.results[n].model_dump(mode="json", exclude_none=True) for n in sorted(self.results)],
            "recorded": self.recorded,
        }

    def create(self) -> Steps:
        """One create (GET + PUT; idempotent by name); ACI's own quota refusal waits and creates again."""
        self.status("creating")
        for delay in (0, *QUOTA_RETRY_DELAYS_S):
            if delay:
                yield self.context.create_timer(self.now() + timedelta(seconds=delay))
            try:
                answer = yield call(
                    self.context, activity.CREATE_SCANNER_GROUP, create_group_input(self.runner, self.group, self.now())
                )
            except Exception as error:
                if activity.ACI_QUOTA_ERROR_MARKER not in str(error) or delay == QUOTA_RETRY_DELAYS_S[-1]:
                    raise
                continue
            checked(activity.CREATE_SCANNER_GROUP, answer)
            self.created = True
            return

    def scan(self) -> Steps:
        """Wait for upload events (one backstop timer at a time, kept across events); collect each image."""
        self.status("scanning")
        started = self.now()
        self.started = started
        looks = backstops(started, self.options.scan_timeout_seconds)
        look = 0
        while len(self.results) < len(self.items):
            # A new timer with each wait (a task_any must not reuse a pending timer; the unused one fires unheard)
            upload = self.context.wait_for_external_event(SCANNER_UPLOAD_EVENT)
            timer = self.context.create_timer(looks[look])
            winner = yield self.context.task_any([upload, timer])
            if winner is upload:
                timer.cancel()  # a pending timer keeps the instance Running until it fires (Durable docs)
                index = _index_of(upload.result, self.runner)
                if index is not None and 0 <= index < len(self.items) and index not in self.results:
                    # Every image left, not only this one: the SDK keeps one early event per name, so an upload
                    # event that came while this batch was busy may be gone; its status.json is not.
                    left = [n for n in range(len(self.items)) if n not in self.results]
                    yield from self.collect(left, verdict=None, timed_out=False, skip_missing=True)
                continue
            answer = yield call(self.context, activity.GET_SCANNER_STATE, {"group_name": self.group.name})
            verdict = group_verdict(checked(activity.GET_SCANNER_STATE, answer))
            final = look == len(looks) - 1
            left = [n for n in range(len(self.items)) if n not in self.results]
            if verdict.terminal or final:
                yield from self.collect(left, verdict=verdict, timed_out=not verdict.terminal, skip_missing=False)
                return
            yield from self.collect(left, verdict=None, timed_out=False, skip_missing=True)  # events lost?
            look += 1

    def collect(
        self, indexes: list[int], *, verdict: GroupVerdict | None, timed_out: bool, skip_missing: bool
    ) -> Steps:
        """Collect these images (those without a status.json yet are left out with `skip_missing`), then store."""
        request = collect_input(
            self.runner,
            self.group,
            verdict,
            None,
            timed_out=timed_out,
            timeout_s=self.options.scan_timeout_seconds,
            now=self.now(),
            mode=self.options.qscanner_mode,
        )
        request = {**request, "only": indexes, "skip_missing": skip_missing}
        answer = yield call(self.context, activity.COLLECT_RESULTS, request)
        found: dict[int, ImageResult] = {}
        for result in (ImageResult.model_validate(r) for r in answer["results"]):
            index = next((n for n in indexes if self.items[n].image == result.image and n not in found), None)
            if index is not None:
                found[index] = result
        if found:
            yield from self.done(found, last=len(self.results) + len(found) == len(self.items))

    def done(self, found: dict[int, ImageResult], *, last: bool) -> Steps:
        """Store the results so far (the uploads go with the last), tell the queue, wake who asked."""
        self.results.update(found)
        results = [self.results[n] for n in sorted(self.results)]
        record = store_input(
            self.runner,
            {"batch": self.runner, "images": [i.image for i in self.items]},
            results,
            status=overall_status(results),
            started_at=self.started or self.now(),
            finished_at=self.now(),
            scanner_groups=[self.group.name] if last and self.created else [],
        )
        tasks = [call(self.context, activity.STORE_RESULTS, record)]
        finish = {"runner": self.runner, "now": self.now().isoformat()}
        tasks += [
            self.context.call_entity(queue_entity(), FINISH_IMAGE_OPERATION, {**finish, "key": self.keys[n]})
            for n in sorted(found)
        ]
        answers = yield self.context.task_all(tasks)
        for n in found:
            self.recorded[self.items[n].image] = self.now().isoformat()
        events: list[dict[str, Any]] = []
        for n, reply in zip(sorted(found), answers[1:], strict=True):
            asked = list(dict.fromkeys([*self.grant.requesters.get(self.keys[n], ()), *reply.get("requesters", [])]))
            events += image_done_input(asked, self.keys[n], self.runner, found[n])["events"]
        if events:
            yield call(self.context, activity.WAKE_ORCHESTRATIONS, {"starts": [], "events": events})

    def delete_and_release(self) -> Steps:
        """Delete the group, read it until it is gone, give its capacity back, start what the queue grants."""
        if self.created:
            self.status("deleting")
            try:
                checked(
                    activity.DELETE_SCANNER_GROUP,
                    (yield call(self.context, activity.DELETE_SCANNER_GROUP, {"group_name": self.group.name})),
                )
                for delay in DELETE_CONFIRM_DELAYS_S:
                    yield self.context.create_timer(self.now() + timedelta(seconds=delay))
                    answer = yield call(self.context, activity.GET_SCANNER_STATE, {"group_name": self.group.name})
                    if not checked(activity.GET_SCANNER_STATE, answer).get("exists", True):
                        break
            except Exception as error:  # the janitor deletes what is left; the capacity is given back anyway
                self.error = self.error or describe_failure(error)
        self.status("releasing")
        reply = yield self.context.call_entity(
            queue_entity(), QUEUE_RELEASE_OPERATION, queue_input(self.now(), self.options, runner=self.runner)
        )
        yield from start_grants(self.context, reply, self.options)


def start_grants(context: df.DurableOrchestrationContext, reply: dict[str, Any], options: Any) -> Steps:
    """Start the batches a queue reply granted; when only the create rate blocks, wait until then and `tick`."""
    while True:
        grants = reply.get("grants") or []
        if grants:
            yield call(context, activity.WAKE_ORCHESTRATIONS, wake_input(grants, options))
        retry_at = reply.get("retry_at")
        if not retry_at:
            return
        yield context.create_timer(datetime.fromisoformat(retry_at))
        current: datetime = context.current_utc_datetime
        now = current if current.tzinfo else current.replace(tzinfo=UTC)
        reply = yield context.call_entity(queue_entity(), TICK_OPERATION, queue_input(now, options))


def _index_of(data: Any, runner: str) -> int | None:
    """The upload index of a `scanner_upload` event for this runner's prefix, or None for anything else.

    The data is a JSON object, or the text of one (upload_events raises it as text; both are accepted).
    """
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    prefix, index = data.get("prefix"), data.get("index")
    if prefix not in (None, runner) or isinstance(index, bool) or not isinstance(index, int):
        return None
    return index


@bp.function_name(SCAN_BATCH_ORCHESTRATOR)  # type: ignore[untyped-decorator]
@bp.orchestration_trigger(context_name="context", orchestration=SCAN_BATCH_ORCHESTRATOR)  # type: ignore[untyped-decorator]
def scan_batch(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Input: core.queue_payloads.BatchInput. Output: runner, group and the batch's per-image results."""
    return (yield from BatchRun(context, BatchInput.model_validate(context.get_input())).run())
