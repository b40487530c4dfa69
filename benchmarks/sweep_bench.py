"""Inventory sweep benchmark (issue 11): one Resource Graph sweep of a large estate on the simulator.

    .venv/bin/python -m benchmarks.sweep_bench                     # 10,000 workloads, Resource Graph's default quota
    .venv/bin/python -m benchmarks.sweep_bench --workloads 10000 --quota 2

Runs the app on devhost (virtual clock, Azurite, the ARM simulator) exactly as `make demo` does, with a scenario of
`--workloads` container groups, container apps and jobs that no event mentions and whose images are all in the cache
(so the sweep queues no scans: this measures the sweep itself), starts one sweep (`POST /api/sweep`) and prints: wall
time, Resource Graph queries and 429s, pages, durable executions (continue_as_new) and history events per execution,
workloads added, virtual time taken. Not part of `make test` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.sweep import SWEEP_INSTANCE_ID

SUBSCRIPTION = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"
KINDS = ("Microsoft.ContainerInstance/containerGroups", "Microsoft.App/containerApps", "Microsoft.App/jobs")
DISTINCT_IMAGES = 50


def estate(workloads: int, quota: int) -> dict[str, Any]:
    """A scenario of `workloads` workloads over 25 resource groups and DISTINCT_IMAGES cached images."""
    images = [f"acme.azurecr.io/service-{i:02d}:1.0.{i}" for i in range(DISTINCT_IMAGES)]
    resources = [
        {
            "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/team-{n % 25:02d}/providers/{KINDS[n % 3]}/w{n:05d}",
            "images": [images[n % DISTINCT_IMAGES]],
            "init_images": [images[(n + 7) % DISTINCT_IMAGES]] if n % 4 == 0 else [],
        }
        for n in range(workloads)
    ]
    return {
        "description": f"{workloads} workloads before install, one sweep",
        "settings": {"ARMSIM_RESOURCE_GRAPH_QUOTA": str(quota)},
        "cache": [{"image": image, "age_hours": 1} for image in images],
        "resources": resources,
        "sweeps_at_s": [0],
    }


def run(workloads: int, quota: int) -> dict[str, Any]:
    from devhost import core as devhost_core
    from devhost.demo_inventory import Sweeps, sweep_summary
    from devhost.demo_run import Deadline, Driver, seed_cache
    from devhost.demo_scenario import parse_scenario
    from devhost.demo_stack import running_stack

    executions: list[int] = []
    core_class = devhost_core.EngineCore
    original = core_class._continue_as_new

    def counting(self: Any, inst: Any, input_text: str | None, now: Any) -> None:
        if inst.instance_id == SWEEP_INSTANCE_ID:
            executions.append(len(inst.history))
        original(self, inst, input_text, now)

    core_class._continue_as_new = counting  # type: ignore[method-assign]  # benchmark-only: history length of each execution before it resets
    scenario = parse_scenario(estate(workloads, quota), "sweep-bench")
    with (
        tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp,
        running_stack(scenario, Path(tmp), lambda _: None) as stack,
    ):
        driver = Driver(stack, Deadline(3600), lambda _: None)
        seed_cache(stack, scenario.cache)
        started_wall = time.monotonic()
        Sweeps(scenario.sweeps_at_s, driver, lambda _: None).due(None)
        driver.finish()
        wall_s = time.monotonic() - started_wall
        engine = stack.server.engine
        last = len(engine.history(SWEEP_INSTANCE_ID))  # type: ignore[attr-defined]
        status = driver.session.get(
            f"{driver.base_url}/runtime/webhooks/durabletask/instances/{SWEEP_INSTANCE_ID}", timeout=30
        ).json()
        graph = stack.sim_stats()["resource_graph"]
        figures = {
            "workloads": workloads,
            "quota_per_5s": quota,
            "wall_s": round(wall_s, 1),
            "virtual_s": round((stack.clock.now() - driver.started).total_seconds(), 1),
            "resource_graph": graph,
            "sweep": {
                k: status["output"].get(k) for k in ("pages", "queries", "throttled", "seen", "added", "executions")
            },
            "history_events_per_execution": {"max": max([*executions, last]), "last": last, "all": [*executions, last]},
            "sweeps": sweep_summary(stack.settings),
        }
        driver.close()
    core_class._continue_as_new = original  # type: ignore[method-assign]
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--quota", type=int, default=15, help="Resource Graph queries per 5 s (the default is 15)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.workloads, args.quota), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
