"""The demo's inventory side: sweeps at virtual times (`sweeps_at_s`), deletes delivered as messages taking the
workload out of the simulator, `OUT/inventory.json` and summary.json's `sweeps` block.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

from activities.inventory_events import INVENTORY_INSTANCE_PREFIX
from activities.inventory_store import sweep_runs, table
from core.events import InvalidMessage, parse_message
from core.sweep import SWEEP_INSTANCE_ID

INVENTORY_FILE = "inventory.json"
HTTP_TIMEOUT_S = 30.0
MAX_PAGES = 10_000


class Sweeps:
    """The scenario's sweep times, started through `POST /api/sweep` when the run reaches them."""

    def __init__(
        self,
        times: Sequence[float],
        driver: Any,
        log: Callable[[str], None],
        after_sweep: Callable[[], None] | None = None,
    ) -> None:
        self._pending = sorted(times)
        self.driver = driver
        self.log = log
        self.refused: list[str] = []
        self.after_sweep = after_sweep  # e.g. the rescan timer (devhost/demo_rescans.py)

    def due(self, up_to_s: float | None) -> None:
        """Start every sweep due at or before `up_to_s` (virtual seconds since the start; None: all that remain)."""
        while self._pending and (up_to_s is None or self._pending[0] <= up_to_s):
            at_s = self._pending.pop(0)
            when = self.driver.started + timedelta(seconds=at_s)
            if when > self.driver.stack.clock.now():
                self.driver.run_until(when, f"running the orchestrations up to the sweep at {at_s:g} s")
            self.log(f"sweep at +{self.driver.virtual_elapsed()} (sweeps_at_s {at_s:g})")
            response = self.driver.session.post(f"{self.driver.base_url}/api/sweep", timeout=HTTP_TIMEOUT_S)
            if response.status_code != 202:
                reason = response.json().get("error") if response.content else response.status_code
                self.refused.append(f"sweep at {at_s:g} s: {reason}")
            if self.after_sweep is not None:
                self.after_sweep()

    def elapsed_s(self) -> float:
        return float((self.driver.stack.clock.now() - self.driver.started).total_seconds())


def retire_deleted(stack: Any, body: str) -> list[str]:
    """The workloads a message deletes leave the simulator now (GET 404, no longer listed by Resource Graph)."""
    try:
        deletes = parse_message(body, scanner_resource_group=stack.settings.scanner_resource_group).deletes
    except InvalidMessage:
        return []
    graph = stack.sim.state.resource_graph
    return [d.name for d in deletes if graph.retire(d.resource_id)]


def export_inventory(base_url: str, session: requests.Session, out: Path) -> int:
    """`OUT/inventory.json`: every page of `GET /api/inventory`, joined; returns the number of workloads."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        params = {"pageSize": "100", **({"continuationToken": token} if token else {})}
        response = session.get(f"{base_url}/api/inventory", params=params, timeout=HTTP_TIMEOUT_S)
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        token = page.get("continuationToken")
        if not token:
            break
    items.sort(key=lambda item: str(item["resourceId"]).lower())
    (out / INVENTORY_FILE).write_text(json.dumps({"count": len(items), "items": items}, indent=2) + "\n")
    return len(items)


def sweep_summary(settings: Any) -> dict[str, int]:
    """summary.json's `sweeps`: completed runs, workloads they added and removed."""
    runs = sweep_runs(table(settings))
    return {
        "runs": len(runs),
        "added": sum(int(run.get("added", 0)) for run in runs),
        "removed": sum(int(run.get("removed", 0)) for run in runs),
    }


def is_sweep(instance: dict[str, Any]) -> bool:
    """The inventory's own orchestrations: the sweep and the event updates (the sweep's scans stay counted)."""
    instance_id = str(instance.get("instanceId"))
    return instance_id == SWEEP_INSTANCE_ID or instance_id.startswith(INVENTORY_INSTANCE_PREFIX)
