"""Helpers (no tests): the real app on devhost, with Azurite, the ARM simulator and a virtual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from activities import clients as arm_clients
from activities.storage_clients import StorageClients, clients_for
from core.settings import Settings, get_settings
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.testing import point_process_at
from devhost.azurite import Azurite
from devhost.clock import RealClock, VirtualClock, install
from devhost.engine import DurableEngine
from devhost.functions import load_app
from devhost.server import DevHostServer
from devhost.triggers import specs_from_index
from tests.integration.test_results_store_support import azurite_env

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
APP_SPEC = "function_app"
ROOT = Path(__file__).parents[2]
ARM_ACTIVITIES_REGISTERED = "aci_scanner" in (ROOT / "function_app.py").read_text(encoding="utf-8")
needs_arm_activities = pytest.mark.skipif(
    not ARM_ACTIVITIES_REGISTERED, reason="the ARM activities (helper F) are not registered in function_app.py yet"
)


SHORT_SCAN_GROUPS = {"MAX_IMAGES_PER_SCANNER_GROUP": "10", "SCAN_TIMEOUT_PER_IMAGE": "30"}


def pipeline_env(azurite: Azurite, **overrides: str) -> dict[str, str]:
    """App settings for one test: its own containers and tables in the session's Azurite, no registry lookups."""
    return azurite_env(
        azurite,
        # groups of up to 10 images with short per-image floors, so a SCAN_TIMEOUT of 600 s stays valid
        **{"RESOLVE_DIGESTS": "false", "NOTIFY_SEVERITY_THRESHOLD": "CRITICAL", **SHORT_SCAN_GROUPS, **overrides},
    )


@dataclass
class Pipeline:
    """The app on a devhost engine, the ARM simulator it talks to, and the settings it reads."""

    engine: DurableEngine
    sim: ArmSimulator
    clock: VirtualClock

    @property
    def settings(self) -> Settings:
        return get_settings()

    @property
    def storage(self) -> StorageClients:
        return clients_for(get_settings())

    def run(self, timeout: float = 120) -> None:
        """Run until every instance is terminal (timers fire at once on the virtual clock)."""
        self.engine.run_until_idle(timeout=timeout)

    def status(self, instance_id: str, *, history: bool = False) -> dict[str, Any]:
        status = self.engine.get_status(instance_id, show_history=history, show_history_output=history)
        assert status is not None, f"no instance {instance_id}"
        return status

    def output(self, instance_id: str) -> dict[str, Any]:
        status = self.status(instance_id)
        assert status["runtimeStatus"] == "Completed", status
        output: dict[str, Any] = status["output"]
        return output

    def results_by_image(self, instance_id: str) -> dict[str, dict[str, Any]]:
        return {r["image"]: r for r in self.output(instance_id)["images"]}

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        """The whole stored history, OrchestratorStarted/Completed markers included (the status API hides them)."""
        events: list[dict[str, Any]] = self.engine.history(instance_id)
        return events


@contextmanager
def running_pipeline(
    azurite: Azurite,
    scenario: Scenario | dict[str, Any],
    tmp_path: Path,
    prepare: Callable[[ArmSimulator, VirtualClock], None] | None = None,
    ordered_completions: bool = False,
    **settings: str,
) -> Iterator[Pipeline]:
    """The app (function_app) on a fresh engine with a virtual clock, an ARM simulator running `scenario`.

    `prepare(sim, clock)` runs before the simulator starts (e.g. to replace its state with a test subclass).
    `ordered_completions`: activity results are handed on in scheduling order, as the demo's engine does, so
    orchestrations started in a row reach entities in that order (ties broken by rules, not thread timing).
    """
    if isinstance(scenario, dict):
        scenario = Scenario.model_validate(scenario)
    env = pipeline_env(azurite, **(scenario.app_settings() | settings))
    clock = VirtualClock(START)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        engine = DurableEngine(
            load_app(APP_SPEC),
            store_path=str(tmp_path / "devhost.sqlite"),
            clock=clock,
            ordered_completions=ordered_completions,
        )
        try:
            sim = ArmSimulator(scenario, clock=clock)
            if prepare is not None:
                prepare(sim, clock)
            with sim:
                point_process_at(sim, patch)
                get_settings.cache_clear()
                arm_clients.reset_cache()
                yield Pipeline(engine=engine, sim=sim, clock=clock)
        finally:
            engine.close()
            get_settings.cache_clear()
            arm_clients.reset_cache()
            install(RealClock())


@contextmanager
def serving_pipeline(
    azurite: Azurite,
    scenario: Scenario | dict[str, Any],
    tmp_path: Path,
    *,
    task_hub: str,
    ready: Callable[[], None] | None = None,
    **settings: str,
) -> Iterator[tuple[DevHostServer, Pipeline]]:
    """`running_pipeline`, served over HTTP by devhost (its engine worker runs in the background).

    `ready()` runs once the settings point at Azurite and the simulator, before the server starts (e.g. to seed data).
    """
    with running_pipeline(azurite, scenario, tmp_path, None, False, **settings) as pipeline:
        if ready is not None:
            ready()
        with DevHostServer(specs_from_index(load_app(APP_SPEC)), pipeline.engine, task_hub=task_hub) as server:
            yield server, pipeline
