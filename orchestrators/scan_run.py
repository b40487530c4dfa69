"""The steps of one `scan_deployment`: a deterministic sequence of activities, entity calls and durable timers.

No I/O, clock, environment or randomness here: time is `context.current_utc_datetime`, every decision is a pure
function of `core` (scan_plan, scan_views, polling), and each step generator yields durable tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df

from activities import names as activity
from core.polling import next_poll_offset, poll_offsets, quota_wait_offsets, waiter_poll_offsets
from core.report import ImageResult
from core.results import CacheLookupRequest, CacheLookupResponse, ImageToCheck, LatestResponse
from core.scan_input import DeploymentTarget, ScanInput
from core.scan_payloads import (
    collect_input,
    describe_failure,
    final_results,
    lease_acquire_input,
    notify_input,
    quota_acquire_input,
    store_input,
)
from core.scan_plan import (
    QUEUED,
    QUOTA_RETRY_INITIAL_SECONDS,
    QUOTA_RETRY_MAX_SECONDS,
    QUOTA_WAIT_SECONDS,
    SCANNING,
    WAITING,
    GroupPlan,
    Phase,
    Progress,
    distinct_images,
    failed_result,
    lease_key,
    lease_ttl_seconds,
    plan_groups,
    scan_output,
    shared_result,
    timed_out_result,
)
from core.scan_views import DigestsView, GroupVerdict, ResolvedView, group_verdict
from entities.names import ACQUIRE_OPERATION, GET_OPERATION, RELEASE_OPERATION
from orchestrators.calls import call, checked, lease_entity, quota_entity
from orchestrators.scan_groups import create_again_for_capacity, create_groups_waiting_for_quota

logger = logging.getLogger(__name__)
Steps = Generator[Any, Any, None]


@dataclass
class WaitedImage:
    """An image whose lease another orchestration holds: wait for it, then reuse its result."""

    item: ImageToCheck
    holders: list[str] = field(default_factory=list)
    freed: bool = False


class ScanRun:
    """One orchestration's state between steps; `run()` yields durable tasks and returns the output."""

    def __init__(self, context: df.DurableOrchestrationContext, request: ScanInput) -> None:
        self.context = context
        self.request = request
        self.options = request.options
        self.instance_id: str = context.instance_id
        self.started_at = self.now()
        self.progress = Progress(request.target.label)
        self.results: dict[str, ImageResult] = {}
        self.checks: list[ImageToCheck] = []
        self.leased: list[ImageToCheck] = []
        self.waited: dict[str, WaitedImage] = {}
        self.groups: list[GroupPlan] = []
        self.verdicts: dict[str, GroupVerdict] = {}
        self.timed_out: set[str] = set()
        self.quota_held = False
        self.replaced: list[str] = []  # groups deleted and created again under a new name (capacity failures)
        self.capacity_attempts: dict[int, int] = {}  # group index -> creates again so far
        self.scan_started: datetime | None = None
        self.note: str | None = None
        self.error: str | None = None

    # --- helpers ------------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The orchestration's deterministic current time, timezone-aware."""
        current: datetime = self.context.current_utc_datetime
        return current if current.tzinfo else current.replace(tzinfo=UTC)

    def status(self, phase: Phase | None = None) -> None:
        """Publish the custom status (phase, per-image progress, groups, polls)."""
        if phase is not None:
            self.progress.phase = phase
        self.progress.note = self.error or self.note
        self.context.set_custom_status(self.progress.as_status())

    def finish(self, *results: ImageResult) -> None:
        """Record final results (the first result for an image wins)."""
        for result in results:
            self.results.setdefault(result.image, result)
        self.progress.record(results)

    def log(self, message: str, *args: object) -> None:
        """Log once, not on every replay."""
        if not self.context.is_replaying:
            logger.info("%s: " + message, self.instance_id, *args)

    # --- the sequence -------------------------------------------------------------------------------------------

    def run(self) -> Generator[Any, Any, dict[str, Any]]:
        """Resolve, check the cache, lease, scan, collect; then always store, notify, delete and release."""
        try:
            yield from self.resolve()
            yield from self.check_cache()
            yield from self.acquire()
            yield from self.create_groups()
            yield from self.poll()
            yield from self.collect()
        except Exception as error:  # a final activity failure: record it, then clean up like any other path
            self.error = describe_failure(error)
            self.log("failed: %s", self.error)
        yield from self.store_and_clean_up()
        self.status("failed" if self.error else "done")
        target = self.request.target.model_dump(mode="json")
        return scan_output(target, self.ordered_results(), note=self.note, error=self.error)

    def resolve(self) -> Steps:
        """The images of the target (ARM for a deployment) and, when enabled, their digests."""
        self.status("resolving")
        target = self.request.target
        images: list[str]
        if isinstance(target, DeploymentTarget):
            answer = yield call(self.context, activity.RESOLVE_IMAGES, target.event.model_dump(mode="json"))
            resolved = ResolvedView.model_validate(checked(activity.RESOLVE_IMAGES, answer))
            self.note = resolved.note
            images = resolved.distinct_images()
            self.progress.add_images(images)
            for rejected in resolved.rejected:
                reason = f"invalid image reference in container {rejected.container!r}: {rejected.reason}"
                self.finish(failed_result(rejected.shown_image(), reason, instance_id=self.instance_id))
            for excluded in resolved.excluded:  # SCAN_EXCLUDE image: patterns: `skipped`, never scanned or alerted
                self.finish(excluded.result(self.instance_id))
        else:
            images = [target.image]
            self.progress.add_images(images)
        digests: dict[str, str | None] = {}
        if images and self.options.resolve_digests:
            digests = DigestsView.model_validate(
                (yield call(self.context, activity.RESOLVE_DIGESTS, {"images": images}))
            ).by_image()
        self.checks = [ImageToCheck(image=image, digest=digests.get(image)) for image in images]
        self.log("%d image(s) to check", len(self.checks))

    def check_cache(self) -> Steps:
        """Fresh cached results end their images here (unless `force`)."""
        misses = self.checks
        if self.checks and not self.request.force and self.options.scan_cache_hours > 0:
            self.status("checking_cache")
            request = CacheLookupRequest(images=self.checks, cache_hours=self.options.scan_cache_hours, now=self.now())
            answer = CacheLookupResponse.model_validate(
                (yield call(self.context, activity.LOOKUP_CACHE, request.model_dump(mode="json")))
            )
            self.finish(*(lookup.result for lookup in answer.images if lookup.hit and lookup.result is not None))
            missed = {lookup.image for lookup in answer.images if not lookup.hit or lookup.result is None}
            misses = [item for item in self.checks if item.image in missed]
        self.leased = distinct_images(misses)

    def quota_input(self) -> dict[str, Any]:
        """Input of the quota gate's `acquire`: one slot per planned scanner group."""
        return quota_acquire_input(
            self.instance_id,
            len(self.plan()),
            self.now(),
            ttl_s=lease_ttl_seconds(self.options.scan_timeout_seconds),
            options=self.options,
        )

    def plan(self) -> list[GroupPlan]:
        """The scanner groups for the images this orchestration holds leases for."""
        return plan_groups(
            self.instance_id,
            self.leased,
            max_per_group=self.options.max_images_per_scanner_group,
            max_groups=self.options.max_scanner_groups(),
        )

    def acquire(self) -> Steps:
        """Lease every image to scan and a quota slot per group in one fan-out; wait (bounded) for quota."""
        candidates = self.leased
        if not candidates:
            return
        self.status("leasing")
        lease_input = lease_acquire_input(
            self.instance_id, self.now(), lease_ttl_seconds(self.options.scan_timeout_seconds)
        )
        tasks = [
            self.context.call_entity(lease_entity(lease_key(i)), ACQUIRE_OPERATION, lease_input) for i in candidates
        ]
        tasks.append(self.context.call_entity(quota_entity(), ACQUIRE_OPERATION, self.quota_input()))
        replies = yield self.context.task_all(tasks)
        self.leased = [item for item, reply in zip(candidates, replies, strict=False) if reply["granted"]]
        for item, reply in zip(candidates, replies, strict=False):
            if not reply["granted"]:
                self.waited[lease_key(item)] = WaitedImage(item=item, holders=[reply["holder"]])
        self.quota_held = bool(replies[-1]["granted"])
        self.progress.mark([i.image for i in self.leased], QUEUED)
        self.progress.mark([w.item.image for w in self.waited.values()], WAITING)
        if not self.leased:
            return
        if not self.quota_held:
            yield from self.wait_for_quota()

    def wait_for_quota(self) -> Steps:
        """Ask the quota gate again with backoff; after QUOTA_WAIT_SECONDS the leased images fail."""
        self.status("waiting_for_quota")
        start = self.now()
        for offset in self.quota_offsets():
            yield self.context.create_timer(start + timedelta(seconds=offset))
            reply = yield self.context.call_entity(quota_entity(), ACQUIRE_OPERATION, self.quota_input())
            if reply["granted"]:
                self.quota_held = True
                return
        reason = f"no scanner group slot within {QUOTA_WAIT_SECONDS} s (MAX_CONCURRENT_SCANNER_GROUPS)"
        self.finish(*(failed_result(i.image, reason, instance_id=self.instance_id) for i in self.leased))

    @staticmethod
    def quota_offsets() -> tuple[int, ...]:
        """The waits for a scanner group slot, the app's gate or ACI's quota (see core.polling)."""
        return quota_wait_offsets(
            initial_s=QUOTA_RETRY_INITIAL_SECONDS, max_interval_s=QUOTA_RETRY_MAX_SECONDS, timeout_s=QUOTA_WAIT_SECONDS
        )

    def create_groups(self) -> Steps:
        """Create the scanner groups (names derive from the instance id: a retried create never makes a second)."""
        if not self.leased or not self.quota_held:
            return
        self.groups = self.plan()
        for group in self.groups:
            self.progress.groups[group.name] = "Creating"
        self.progress.mark([i.image for i in self.leased], SCANNING)
        self.status("scanning")
        yield from create_groups_waiting_for_quota(self, self.groups)
        self.scan_started = self.now()
        self.log("created %d scanner group(s)", len(self.groups))

    def poll(self) -> Steps:
        """Durable timers on the poll schedule: read each running group's state and each waited image's lease."""
        if not self.groups and not self.waited:
            return
        start = self.scan_started or self.now()
        active = [group.name for group in self.groups]
        timing = {
            "initial_s": self.options.poll_initial_seconds,
            "max_interval_s": self.options.poll_max_seconds,
            "timeout_s": self.options.scan_timeout_seconds,
        }
        scanning, waiting = poll_offsets(**timing), waiter_poll_offsets(**timing)
        elapsed = 0
        while (offset := next_poll_offset(scanning if active else waiting, elapsed)) is not None:
            elapsed = offset
            yield self.context.create_timer(start + timedelta(seconds=offset))
            self.progress.polls += 1
            keys = [key for key, waited in self.waited.items() if not waited.freed]
            lease_query = {"now": self.now().isoformat()}
            tasks = [call(self.context, activity.GET_SCANNER_STATE, {"group_name": name}) for name in active]
            tasks += [self.context.call_entity(lease_entity(key), GET_OPERATION, lease_query) for key in keys]
            answers = yield self.context.task_all(tasks)
            for name, answer in zip(active, answers, strict=False):
                self.verdicts[name] = group_verdict(checked(activity.GET_SCANNER_STATE, answer))
                self.progress.groups[name] = self.verdicts[name].state
            for key, reply in zip(keys, answers[len(active) :], strict=False):
                waited = self.waited[key]
                if reply["holder"] is None:
                    waited.freed = True
                elif reply["holder"] not in waited.holders:
                    waited.holders.append(reply["holder"])
            if any(self.verdicts[name].capacity_failure for name in active):  # only on this (newer) answer
                active = yield from create_again_for_capacity(self, active)
                elapsed = max(elapsed, int((self.now() - start).total_seconds()))
            active = [name for name in active if not self.verdicts[name].terminal]
            self.status("scanning")
            if not active and all(waited.freed for waited in self.waited.values()):
                return
        self.timed_out = set(active)

    def collect(self) -> Steps:
        """Each group's uploads (with the container log when it ended badly) and the waited images' results."""
        if not self.groups and not self.waited:
            return
        self.status("collecting")
        troubled = [g.name for g in self.groups if g.name in self.timed_out or not self.verdicts[g.name].clean]
        logs: dict[str, str | None] = {}
        if troubled:
            answers = yield self.context.task_all(
                [call(self.context, activity.GET_SCANNER_LOGS, {"group_name": name}) for name in troubled]
            )
            logs = {
                name: (checked(activity.GET_SCANNER_LOGS, answer) or {}).get("log")
                for name, answer in zip(troubled, answers, strict=False)
            }
        freed = [waited for waited in self.waited.values() if waited.freed]
        tasks = [call(self.context, activity.COLLECT_RESULTS, self.collect_input(g, logs)) for g in self.groups]
        if freed:
            tasks.append(call(self.context, activity.READ_LATEST_RESULTS, {"images": [w.item.image for w in freed]}))
        # Nothing to fan out when this run only waited and nothing was freed: the SDK answers an empty task_all with
        # None (and schedules no action), so skip it; the waited images time out below.
        answers = (yield self.context.task_all(tasks)) if tasks else []
        for answer in answers[: len(self.groups)]:
            self.finish(*(ImageResult.model_validate(r) for r in answer["results"]))
        if freed:
            latest = LatestResponse.model_validate(answers[-1]).results
            for waited, result in zip(freed, latest, strict=False):
                self.finish(shared_result(waited.item, result, waited.holders, instance_id=self.instance_id))
        for waited in self.waited.values():
            if not waited.freed:
                reason = f"waited {self.options.scan_timeout_seconds} s for the scan by {', '.join(waited.holders)}"
                self.finish(timed_out_result(waited.item.image, reason, instance_id=self.instance_id))

    def collect_input(self, group: GroupPlan, logs: dict[str, str | None]) -> dict[str, Any]:
        """Input of `collect_results` for one group, with the group's verdict and log for images without a status."""
        return collect_input(
            self.instance_id,
            group,
            self.verdicts.get(group.name),
            logs.get(group.name),
            timed_out=group.name in self.timed_out,
            timeout_s=self.options.scan_timeout_seconds,
            now=self.now(),
            mode=self.options.qscanner_mode,
        )

    def ordered_results(self) -> list[ImageResult]:
        """A result per image, first seen first (see core.scan_payloads.final_results)."""
        return final_results(
            self.progress.images, self.checks, self.results, instance_id=self.instance_id, error=self.error
        )

    def notify_payload(self, target: dict[str, Any], results: list[ImageResult]) -> dict[str, Any]:
        """Input of `send_notifications` (QueueRun marks a rescan's)."""
        return notify_input(self.instance_id, target, results, self.options.notify_severity_threshold)

    def store_and_clean_up(self) -> Steps:
        """Store (and drop the uploads), notify and delete every group in one fan-out; then release leases, quota."""
        results = self.ordered_results()
        self.finish(*results)
        self.status("storing")
        target = self.request.target.model_dump(mode="json")
        status = scan_output(target, results, error=self.error)["status"]
        record = store_input(
            self.instance_id,
            target,
            results,
            status=status,
            started_at=self.started_at,
            finished_at=self.now(),
            scanner_groups=[g.name for g in self.groups] + self.replaced,
            rescan=self.request.rescan,
        )
        store = call(self.context, activity.STORE_RESULTS, record)
        notify = call(self.context, activity.SEND_NOTIFICATIONS, self.notify_payload(target, results))
        deletes = [call(self.context, activity.DELETE_SCANNER_GROUP, {"group_name": g.name}) for g in self.groups]
        tasks = {"store": store, "notify": notify} | {
            f"delete {g.name}": t for g, t in zip(self.groups, deletes, strict=False)
        }
        failed: dict[str, str] = {}
        try:
            answers = yield self.context.task_all(list(tasks.values()))
            outcomes = dict(zip(tasks, answers, strict=False))
        except Exception:  # find out which failed: yielding a finished task again just returns its outcome
            outcomes = {}
            for label, task in tasks.items():
                try:
                    outcomes[label] = yield task
                except Exception as error:
                    failed[label] = f"{label}: {describe_failure(error)}"
        for label, answer in outcomes.items():  # a delete may answer an error that retrying cannot fix
            try:
                checked(activity.DELETE_SCANNER_GROUP, answer)
            except Exception as error:
                failed[label] = f"{label}: {describe_failure(error)}"
        if failed:
            self.error = "; ".join(([self.error] if self.error else []) + list(failed.values()))
        for group in self.groups:
            if f"delete {group.name}" not in failed:
                self.progress.groups[group.name] = "Deleted"
        for item in self.leased:
            self.context.signal_entity(
                lease_entity(lease_key(item)), RELEASE_OPERATION, {"instance_id": self.instance_id}
            )
        if self.quota_held:
            self.context.signal_entity(quota_entity(), RELEASE_OPERATION, {"instance_id": self.instance_id})
