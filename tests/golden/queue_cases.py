"""Golden histories of the scan queue's orchestrations (`scan_deployment_v2`, `scan_batch`), recorded on the fake
backend (tests/orchestration/fake_context.py): the real orchestrators through the SDK with devhost's action replay,
the app's real `scan_queue` entity, scripted activity answers and external events on a virtual clock. Synthetic
but exact: every episode is what the code decided, so the replay test guards these paths like the devhost-recorded
`scan_deployment` cases.

    .venv/bin/python -m tests.golden.queue_cases        # re-record (milliseconds); review with git diff
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from activities import names
from core.naming import batch_instance_id
from core.rescan import RESCAN_INSTANCE_ID
from devhost import history as h
from orchestrators.calls import QUEUE_ENTITY_KEY
from orchestrators.names import ORCHESTRATOR_INVENTORY_RESCAN
from tests.golden.record import dump, pending_work
from tests.golden.replay import FORMAT_VERSION, GOLDEN_ROOT, load_golden, replay_golden, split_episodes
from tests.orchestration import test_inventory_rescan_fast as rescan
from tests.orchestration import test_queue_fast as fast
from tests.orchestration.fake_context import START, ScriptedRun
from tests.orchestration.scan_answers import NGINX, REDIS, SUCCEEDED


@dataclass(frozen=True)
class QueueCase:
    name: str
    description: str
    build: Callable[[], ScriptedRun]
    cuts: dict[str, Callable[[list[dict[str, Any]]], int | None]] = field(default_factory=dict)
    """{cut label: (custom status after each episode) -> episode index}."""

    @property
    def file_names(self) -> set[str]:
        return {self.name} | {f"{self.name}.cut_{label}" for label in self.cuts}


def _deployment_events() -> ScriptedRun:
    run = fast.deployment(NGINX, REDIS)
    for image, at in ((REDIS, 200), (NGINX, 300)):
        done = {"key": fast.key(image), "runner": fast.RUNNER, "result": fast.result(image, fast.RUNNER)}
        run.raise_event(START + timedelta(seconds=at), f"image_done_{fast.key(image)}", done)
    return run


def _rescan_events() -> ScriptedRun:
    run = fast.rescan(NGINX)
    done = {"key": fast.key(NGINX), "runner": fast.RUNNER, "result": fast.result(NGINX, fast.RUNNER)}
    run.raise_event(START + timedelta(seconds=300), f"image_done_{fast.key(NGINX)}", done)
    return run


def _waiter_lost_event() -> ScriptedRun:
    run = fast.deployment(NGINX)
    grant = fast.other_holds(run, NGINX)
    finish = {"runner": grant["runner"], "key": fast.key(NGINX), "now": START.isoformat()}
    run.entity_operation(fast.QUEUE, QUEUE_ENTITY_KEY, "finish_image", finish)
    run.on_activity("read_latest_results", {"results": [fast.result(NGINX, grant["runner"])]})
    return run


def _batch_events() -> ScriptedRun:
    images = (NGINX, REDIS)
    run = fast.batch(*images)
    run.on_activity("collect_results", fast.collect_what_uploaded({0, 1}, images))
    for n, at in ((0, 100), (1, 250)):
        upload = {"container": "u", "prefix": fast.RUNNER, "index": n}
        run.raise_event(START + timedelta(seconds=at), "scanner_upload", upload)
    return run


def _batch_backstop() -> ScriptedRun:
    images = (NGINX,)
    run = fast.batch(*images)
    run.on_activity("collect_results", fast.collect_what_uploaded({0}, images))
    answers = iter([SUCCEEDED, {"exists": False}])
    run.on_activity("get_scanner_state", lambda _: next(answers))
    return run


def _rescan_low() -> ScriptedRun:
    run = rescan.rescan_scan(REDIS)
    runner = batch_instance_id(1, fast.key(REDIS), run.instance_id)
    done = {"key": fast.key(REDIS), "runner": runner, "result": fast.result(REDIS, runner)}
    run.raise_event(START + timedelta(seconds=200), f"image_done_{fast.key(REDIS)}", done)
    return run


def _rescan_behind_deployment() -> ScriptedRun:
    run = rescan.rescan_scan(REDIS)
    holder = rescan.ask(run, "scan-deploy-a", NGINX)["grants"][0]["runner"]
    rescan.ask(run, "scan-deploy-b", rescan.BUSYBOX)  # pending, normal: the rescan queues behind it
    runner = batch_instance_id(3, fast.key(REDIS), run.instance_id)
    done = {"key": fast.key(REDIS), "runner": runner, "result": fast.result(REDIS, runner)}
    run.raise_event(START + timedelta(seconds=900), f"image_done_{fast.key(REDIS)}", done)
    del holder
    return run


def _rescan_pages() -> ScriptedRun:
    pages = [
        {"checked": 250, "due": [rescan.due(NGINX)], "after": "docker.io/library/m:1"},
        {"checked": 40, "due": [rescan.due(REDIS)], "after": None},
    ]
    answers = iter(pages)
    run = ScriptedRun(ORCHESTRATOR_INVENTORY_RESCAN, {"trigger": "schedule"}, instance_id=RESCAN_INSTANCE_ID)
    run.on_activity(names.RESCAN_SELECT, lambda _: next(answers))
    run.on_activity(names.START_RESCANS, lambda p: {"started": len(p["rescans"]), "already": 0})
    return run


def _phase(phase: str) -> Callable[[list[dict[str, Any]]], int | None]:
    def select(statuses: list[dict[str, Any]]) -> int | None:
        return next((n for n, s in enumerate(statuses[:-1]) if (s or {}).get("phase") == phase), None)

    return select


QUEUE_CASES: tuple[QueueCase, ...] = (
    QueueCase(
        "v2_two_images_events",
        "Two images queued, both batches started by this deployment, two image_done events end it.",
        _deployment_events,
        {"waiting": _phase("waiting")},
    ),
    QueueCase(
        "v2_waiter_lost_event",
        "nginx is in another deployment's batch; its image_done event is lost: the backstop at the holder's deadline "
        "plus the grace reads the stored result.",
        _waiter_lost_event,
    ),
    QueueCase(
        "v2_rescan",
        "A rescan of nginx (ScanInput.rescan): no cache lookup, queued with force, one image_done event, stored, "
        "notified with rescan=true.",
        _rescan_events,
    ),
    QueueCase(
        "batch_two_images_events",
        "A batch of two images collected one by one on scanner_upload events, each stored and woken, then delete, "
        "gone, release.",
        _batch_events,
        {"scanning": _phase("scanning")},
    ),
    QueueCase(
        "batch_backstop",
        "A batch whose upload event never comes: the backstop at half the SCAN_TIMEOUT reads the ended group and "
        "collects.",
        _batch_backstop,
    ),
    QueueCase(
        "v2_rescan_low",
        "A scheduled rescan (rescan=true) of one image: enqueued in the low class, granted at once (nothing else "
        "waits), its image_done event ends it.",
        _rescan_low,
        {"waiting": _phase("waiting")},
    ),
    QueueCase(
        "v2_rescan_behind_deployment",
        "A rescan while the one scanner group is busy and a deployment's image is pending: queued behind it (nothing "
        "granted), its image_done event comes once the deployment's image and its own were scanned.",
        _rescan_behind_deployment,
    ),
    QueueCase(
        "rescan_two_pages",
        "inventory_rescan: two pages of deployed images, one due image each, started once each; the run completes.",
        _rescan_pages,
    ),
)


def record(case: QueueCase) -> dict[str, dict[str, Any]]:
    run = case.build()
    statuses: list[dict[str, Any]] = []
    lengths: list[int] = []
    step = run.step

    def recording_step() -> Any:
        decisions = step()
        statuses.append(run._custom())
        lengths.append(len(run.inst.history.events))
        return decisions

    run.step = recording_step  # type: ignore[method-assign]
    result = run.run()
    history = result.history
    episodes = split_episodes(history)
    base = {
        "format": FORMAT_VERSION,
        "orchestrator": run.orchestrator,
        "case": case.name,
        "description": case.description,
        "recorded_with": {
            "backend": "tests/orchestration/fake_context.py",
            "virtual_clock_start": h.format_timestamp(START),
        },
        "instance_id": run.instance_id,
    }
    final = {"cut": None, "runtime_status": result.status, "output": result.output}
    files = {
        case.name: base | final | {"custom_status": result.custom_status, "history": history, "next_episode": None}
    }
    for label, select in case.cuts.items():
        index = select(statuses)
        assert index is not None, f"{case.name}: no episode for cut {label}"
        prefix = history[: lengths[index]]
        files[f"{case.name}.cut_{label}"] = base | {
            "cut": {"label": label, "after_episode": index, "pending": pending_work(prefix)},
            "runtime_status": "Running",
            "output": None,
            "custom_status": statuses[index],
            "history": prefix,
            "next_episode": episodes[index + 1].events,
        }
    return files


def main() -> int:
    for case in QUEUE_CASES:
        for file, golden in record(case).items():
            path = GOLDEN_ROOT / golden["orchestrator"] / f"{file}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dump(golden), encoding="utf-8")
            problems = replay_golden(load_golden(path), path.name)
            assert not (problems.nondeterminism or problems.content), problems
            print(f"{path}: {golden['runtime_status']}, {len(golden['history'])} history events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
