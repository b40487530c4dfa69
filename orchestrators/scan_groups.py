"""Creating the scanner groups of a `ScanRun`: waits on ACI's quota, and a new group after a late capacity failure.

Deterministic like the rest of the orchestrator: durable timers, activity calls and pure decisions of core only.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from activities import names as activity
from core.scan_payloads import create_group_input
from core.scan_plan import CAPACITY_RETRY_DELAYS_SECONDS, QUOTA_WAIT_SECONDS, GroupPlan, capacity_group_name
from core.scan_views import GroupVerdict
from orchestrators.calls import call, checked

if TYPE_CHECKING:
    from orchestrators.scan_run import ScanRun

CREATING = "Creating"
DELETED = "Deleted"


def create_groups_waiting_for_quota(run: ScanRun, groups: list[GroupPlan]) -> Generator[Any, Any, None]:
    """Create `groups` in one fan-out; while ACI refuses them for quota, wait (bounded) and create again.

    ACI's own regional quota can refuse a create (code ContainerGroupQuotaReached, with 400 or 409) even with a
    slot of the app's gate: wait and create again (idempotent: a group that exists for this instance is returned
    as it is), as the gate's wait does. A create that answers a non-retryable ARM error raises at once.
    """
    now = run.now()
    creates = [create_group_input(run.instance_id, group, now) for group in groups]
    answers: list[Any] = []
    for offset in (0, *run.quota_offsets()):
        if offset:
            run.status("waiting_for_quota")
            yield run.context.create_timer(now + timedelta(seconds=offset))
            run.status("scanning")
        try:
            answers = yield run.context.task_all([call(run.context, activity.CREATE_SCANNER_GROUP, c) for c in creates])
            break
        except Exception as error:
            if activity.ACI_QUOTA_ERROR_MARKER not in str(error) or offset >= QUOTA_WAIT_SECONDS:
                raise
            run.log("ACI quota reached; creating again in a while")
    for answer in answers or []:
        checked(activity.CREATE_SCANNER_GROUP, answer)


def create_again_for_capacity(run: ScanRun, active: list[str]) -> Generator[Any, Any, list[str]]:
    """Replace each active group whose provisioning failed for lack of capacity: delete it, wait, create anew.

    Taken only on that answer (`capacity_failure`), so the durable actions of every other path are unchanged. The
    new group has a new deterministic name (the old one may still be deleting) and the same images and uploads
    prefix; after len(CAPACITY_RETRY_DELAYS_SECONDS) attempts a group stays failed and its images fail with ACI's
    message. Returns `active` with the new names in place of the old ones.
    """
    index_of = {group.name: index for index, group in enumerate(run.groups)}
    retry: list[int] = []
    for name in active:
        index = index_of.get(name)
        if index is None or not run.verdicts[name].capacity_failure:
            continue
        attempt = run.capacity_attempts.get(index, 0) + 1
        if attempt <= len(CAPACITY_RETRY_DELAYS_SECONDS):
            run.capacity_attempts[index] = attempt
            retry.append(index)
    if not retry:
        return active
    old = [run.groups[index] for index in retry]
    run.log("no ACI capacity for %s; creating again in a while", ", ".join(group.name for group in old))
    deletes = [call(run.context, activity.DELETE_SCANNER_GROUP, {"group_name": group.name}) for group in old]
    for answer in (yield run.context.task_all(deletes)) or []:
        checked(activity.DELETE_SCANNER_GROUP, answer)
    for group in old:
        run.progress.groups[group.name] = DELETED
    run.status("waiting_for_quota")
    delay = max(CAPACITY_RETRY_DELAYS_SECONDS[run.capacity_attempts[index] - 1] for index in retry)
    yield run.context.create_timer(run.now() + timedelta(seconds=delay))
    renamed: dict[str, str] = {}
    for index, group in zip(retry, old, strict=True):
        new = group.model_copy(
            update={"name": capacity_group_name(run.instance_id, index, run.capacity_attempts[index])}
        )
        run.groups[index] = new
        run.replaced.append(group.name)
        run.verdicts[new.name] = GroupVerdict(state=CREATING, terminal=False)
        run.progress.groups[new.name] = CREATING
        renamed[group.name] = new.name
    run.status("scanning")
    yield from create_groups_waiting_for_quota(run, [run.groups[index] for index in retry])
    return [renamed.get(name, name) for name in active]
