"""Event intake throughput: records per second through parse + filter on one core, with a realistic mix."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.events import parse_message

EVENTS = Path(__file__).parents[1] / "tests" / "events"
SCANNER_RG = "rg-qscanner"
RECORDS_PER_MESSAGE = 100
MESSAGES = 20
GOAL_RECORDS_PER_SECOND = 50_000
CONTAINER_SHARE = 0.05
"""About 1 record in 20 is a container write (Start/Accept/Success/Failure); the rest is other providers' traffic."""

NOISE_OPERATIONS = (
    "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION",
    "MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE",
    "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/WRITE",
    "MICROSOFT.KEYVAULT/VAULTS/SECRETS/WRITE",
    "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",
    "MICROSOFT.RESOURCES/DEPLOYMENTS/WRITE",
    "MICROSOFT.COMPUTE/VIRTUALMACHINES/START/ACTION",
    "MICROSOFT.WEB/SITES/CONFIG/WRITE",
    "MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/WRITE",
    "MICROSOFT.CONTAINERINSTANCE/CONTAINERGROUPS/DELETE",
)
RESULT_TYPES = ("Start", "Accept", "Success", "Failure")


def _activity_log_messages(rng: random.Random) -> list[bytes]:
    template = json.loads((EVENTS / "activity-log-mixed.json").read_bytes())["records"]
    container = [r for r in template if "CONTAINERINSTANCE/CONTAINERGROUPS/WRITE" in r["operationName"]]
    app = [r for r in template if "/CONTAINERAPPS/WRITE" in r["operationName"] or "/JOBS/WRITE" in r["operationName"]]
    base_noise = next(r for r in template if "STORAGEACCOUNTS" in r["operationName"])
    messages = []
    for m in range(MESSAGES):
        records: list[dict[str, Any]] = []
        for i in range(RECORDS_PER_MESSAGE):
            if rng.random() < CONTAINER_SHARE:
                record = copy.deepcopy(rng.choice(container + app))
                record["resultType"] = rng.choice(RESULT_TYPES)
                record["correlationId"] = f"c0ffee00-0000-4000-8000-{m:06d}{i:06d}"
            else:
                record = copy.deepcopy(base_noise)
                record["operationName"] = rng.choice(NOISE_OPERATIONS)
                record["resultType"] = rng.choice(RESULT_TYPES)
            records.append(record)
        messages.append(json.dumps({"records": records}).encode())
    return messages


def _event_grid_messages(rng: random.Random, container_share: float) -> list[bytes]:
    template = json.loads((EVENTS / "event-grid-array.json").read_bytes())
    targets = [event for event in template if event["data"]["correlationId"].endswith(("501", "509"))]
    noise = [event for event in template if event not in targets]
    messages = []
    for _ in range(MESSAGES):
        events = [
            copy.deepcopy(rng.choice(targets if rng.random() < container_share else noise))
            for _ in range(RECORDS_PER_MESSAGE)
        ]
        messages.append(json.dumps(events).encode())
    return messages


def _parse_all(messages: list[bytes]) -> int:
    targets = 0
    for body in messages:
        targets += len(parse_message(body, scanner_resource_group=SCANNER_RG).targets)
    return targets


SHAPES: dict[str, Callable[[random.Random], list[bytes]]] = {
    "activity-log": _activity_log_messages,
    "event-grid": lambda rng: _event_grid_messages(rng, CONTAINER_SHARE),
    "event-grid-filtered": lambda rng: _event_grid_messages(rng, 1.0),
}
"""`event-grid-filtered` is the worst case: a subscription filtered to container writes, every event a target."""


@pytest.mark.parametrize("shape", list(SHAPES))
def test_event_parse_throughput(benchmark: Any, shape: str) -> None:
    messages = SHAPES[shape](random.Random(20261002))
    records = MESSAGES * RECORDS_PER_MESSAGE
    targets = benchmark(_parse_all, messages)
    best = records / benchmark.stats.stats.min  # the least-disturbed round: what one core can do
    mean = records / benchmark.stats.stats.mean
    benchmark.extra_info.update(
        records=records, targets=targets, best_per_second=round(best), mean_per_second=round(mean)
    )
    print(f"\n{shape}: {best:,.0f} records/s best, {mean:,.0f} mean ({records} records, {targets} targets per round)")
    assert targets > 0
    if shape != "event-grid-filtered":
        assert best >= GOAL_RECORDS_PER_SECOND
