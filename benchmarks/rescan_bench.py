"""Rescan benchmark (issue 11 item 3, 7): what rescans of a large estate cost, on the fake backend and the pure queue.

    .venv/bin/python -m benchmarks.rescan_bench                      # 10,000 deployed images, all due
    .venv/bin/python -m benchmarks.rescan_bench --images 10000 --deploy-every-s 600

Two parts, both without Azurite (seconds):
1. `inventory_rescan` (the real orchestrator through the SDK on tests/orchestration/fake_context.py) over `--images`
   deployed images, all due: scripted `rescan_select` pages (RESCAN_PAGE_SIZE sorted images) and `start_rescans`
   (starts what is new, at most the run's limit). Hourly runs until every image has its rescan: runs, executions
   (continue_as_new), history events per execution, activity calls.
2. The scan queue (core/scan_queue.py, pure) under those rescans at the app's default budget (20 groups, 2 images a
   group, ACI's 100 creates per 5 minutes and 300 per hour), each scan taking `--scan-s`, while a deployment image
   arrives every `--deploy-every-s`: the deployments' wait for a group (their batch's grant minus their arrival),
   rescans scanned per hour, the entity state's size at its largest, and the time of one `enqueue` at that size.
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from activities import names
from core.options import ScanOptions
from core.queue_payloads import budget_of
from core.rescan import (
    MAX_RESCANS_PER_RUN,
    RESCAN_INSTANCE_ID,
    RESCAN_PAGE_SIZE,
    page_after,
    scheduled_rescan_instance_id,
)
from core.scan_queue import EnqueueRequest, FinishRequest, QueuedImage, QueueState, ReleaseRequest, TickRequest, apply
from orchestrators.names import ORCHESTRATOR_INVENTORY_RESCAN
from tests.orchestration.fake_context import START, ScriptedRun

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def orchestration(images: int) -> dict[str, Any]:
    """Hourly runs of `inventory_rescan` until every image's rescan is started."""
    names_ = sorted(f"acme.azurecr.io/service-{n:05d}:1.0" for n in range(images))
    started: set[str] = set()
    runs = executions = activity_calls = 0
    events: list[int] = []
    while len(started) < images:
        runs += 1
        state: dict[str, Any] = {"trigger": "schedule"}
        while True:
            executions += 1

            def select(payload: dict[str, Any]) -> dict[str, Any]:
                page, after = page_after(names_, payload["after"], RESCAN_PAGE_SIZE)
                due = [{"image": i, "instance_id": scheduled_rescan_instance_id(i, "scan-1")} for i in page]
                return {"checked": len(page), "due": due, "after": after}

            def start(payload: dict[str, Any]) -> dict[str, int]:
                new = [d["image"] for d in payload["rescans"] if d["image"] not in started]
                taken = new[: payload["limit"]]
                started.update(taken)
                return {
                    "started": len(taken),
                    "already": len(payload["rescans"]) - len(new),
                    "deferred": len(new) - len(taken),
                }

            run = ScriptedRun(ORCHESTRATOR_INVENTORY_RESCAN, state, instance_id=RESCAN_INSTANCE_ID, start=START)
            run.on_activity(names.RESCAN_SELECT, select)
            run.on_activity(names.START_RESCANS, start)
            result = run.run()
            events.append(len(result.history))
            activity_calls += len([c for c in result.log if c.kind == "activity"])
            if result.status != "ContinuedAsNew":
                break
            state = result.output
    return {
        "images": images,
        "hourly_runs": runs,
        "executions": executions,
        "activity_calls": activity_calls,
        "history_events_per_execution_max": max(events),
        "history_events_total": sum(events),
        "per_run_limit": MAX_RESCANS_PER_RUN,
    }


def queue(images: int, scan_s: int, deploy_every_s: int, hours: int) -> dict[str, Any]:
    """The pure queue under hourly rescan runs (MAX_RESCANS_PER_RUN each) and a steady trickle of deployments."""
    budget = budget_of(ScanOptions()).model_dump(mode="json")
    state, now = QueueState(), T0
    rescans = [f"acme.azurecr.io/service-{n:05d}:1.0" for n in range(images)]
    arrivals: dict[str, datetime] = {}
    waits: list[float] = []
    done_rescans = 0
    largest, enqueue_ms = 0, 0.0
    timeline: list[tuple[datetime, int, str, Any]] = []  # (when, seq, kind, data)
    seq = 0

    def push(when: datetime, kind: str, data: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(timeline, (when, seq, kind, data))

    for hour in range(hours):
        push(T0 + timedelta(hours=hour), "rescan_run", hour)
    for n in range(hours * 3600 // deploy_every_s):
        push(T0 + timedelta(seconds=n * deploy_every_s + 1), "deploy", f"docker.io/acme/app-{n:05d}:1")
    next_rescan = 0

    def take(reply: dict[str, Any]) -> None:
        for grant in reply.get("grants", []):
            for image in grant["images"]:
                if image["image"] in arrivals:
                    waits.append((now - arrivals.pop(image["image"])).total_seconds())
            push(now + timedelta(seconds=scan_s), "batch_done", grant)
        if reply.get("retry_at"):
            push(datetime.fromisoformat(reply["retry_at"]), "tick", None)

    def call(operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal state
        state, reply = apply(operation, state, payload)
        return reply

    while timeline:
        now, _, kind, data = heapq.heappop(timeline)
        if now > T0 + timedelta(hours=hours):
            break
        if kind == "rescan_run":
            for image in rescans[next_rescan : next_rescan + MAX_RESCANS_PER_RUN]:
                item = QueuedImage(key=f"k-{image}", image=image).model_dump(mode="json")
                request = EnqueueRequest.model_validate(
                    {"instance_id": f"recheck-{image}", "now": now, "images": [item], "budget": budget, "low": True}
                ).model_dump(mode="json")
                took = time.perf_counter()
                take(call("enqueue", request))
                enqueue_ms = max(enqueue_ms, (time.perf_counter() - took) * 1000)
            next_rescan += MAX_RESCANS_PER_RUN
        elif kind == "deploy":
            arrivals[data] = now
            item = QueuedImage(key=f"k-{data}", image=data).model_dump(mode="json")
            take(
                call(
                    "enqueue",
                    {"instance_id": f"scan-{data}", "now": now.isoformat(), "images": [item], "budget": budget},
                )
            )
        elif kind == "tick":
            take(call("tick", TickRequest.model_validate({"now": now, "budget": budget}).model_dump(mode="json")))
        else:
            for image in data["images"]:
                call(
                    "finish_image",
                    FinishRequest(runner=data["runner"], key=image["key"], now=now).model_dump(mode="json"),
                )
                done_rescans += image["image"].startswith("acme.azurecr.io/")
            release = ReleaseRequest.model_validate({"runner": data["runner"], "now": now, "budget": budget})
            take(call("release", release.model_dump(mode="json")))
        largest = max(largest, len(json.dumps(state.model_dump(mode="json", exclude_defaults=True))))
    return {
        "hours": hours,
        "deployments": len(waits),
        "deployment_wait_s": {
            "median": statistics.median(waits) if waits else 0,
            "p95": sorted(waits)[int(0.95 * (len(waits) - 1))] if waits else 0,
            "max": max(waits, default=0),
        },
        "rescans_scanned": done_rescans,
        "rescans_per_hour": round(done_rescans / hours),
        "state_bytes_max": largest,
        "enqueue_ms_max": round(enqueue_ms, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rescan_bench", description=__doc__)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--scan-s", type=int, default=300, help="virtual seconds one batch scans")
    parser.add_argument("--deploy-every-s", type=int, default=600, help="a deployment image arrives this often")
    parser.add_argument("--hours", type=int, default=24, help="virtual hours of queue simulation")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(json.dumps({"orchestration": orchestration(args.images)}, indent=2))
    print(json.dumps({"queue": queue(args.images, args.scan_s, args.deploy_every_s, args.hours)}, indent=2))
    print(f"wall time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
