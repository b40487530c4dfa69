"""The recorder's devhost: the real app, Azurite and the ARM simulator on a virtual clock, run deterministically.

Same parts as tests/orchestration/pipeline_support.py, with one difference that makes a recording repeatable:
activities run inline, one after another, in the order the orchestration scheduled them, so each episode sees
every completion of a fan-out at once and the history does not depend on thread timing. That interleaving is one
the real extension can produce too (all activities done before the orchestrator runs again).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from activities import clients as arm_clients
from core.events import DeploymentEvent, parse_resource_id
from core.naming import instance_id_for
from core.scan_input import scan_input_for_event, scan_input_for_image
from core.settings import Settings, get_settings
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.testing import BASE_APP_SETTINGS, point_process_at
from devhost.azurite import Azurite
from devhost.clock import RealClock, VirtualClock, install
from devhost.core import ActivityKey, deadline_after
from devhost.engine import DurableEngine
from devhost.functions import load_app
from devhost.orchestration import EpisodeResult, InboxItem, Instance
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT
from tests.orchestration.pipeline_support import APP_SPEC, START


@dataclass
class EpisodeSnapshot:
    """What the store held for one instance right after one of its episodes was committed."""

    history_length: int
    status: str
    custom_status: Any


class RecordingEngine(DurableEngine):
    """DurableEngine with activities run inline (deterministic order) and a snapshot after every episode."""

    snapshots: dict[str, list[EpisodeSnapshot]]

    def _launch(self, key: ActivityKey) -> None:
        name, input_text = self._inflight[key]
        self._run_activity(key, name, input_text)

    def _commit_episode(
        self, inst: Instance, items: list[InboxItem], result: EpisodeResult, now: datetime
    ) -> list[ActivityKey]:
        launches = super()._commit_episode(inst, items, result, now)
        custom = json.loads(inst.custom_status_json) if inst.custom_status_json else None
        snapshot = EpisodeSnapshot(len(inst.history), inst.status, custom)
        self.__dict__.setdefault("snapshots", {}).setdefault(inst.instance_id, []).append(snapshot)
        return launches


@dataclass
class Recording:
    """One case's running app: start orchestrations, run to idle, read back histories and statuses."""

    engine: RecordingEngine
    sim: ArmSimulator
    clock: VirtualClock
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return get_settings()

    def start_deployment(self, resource: str, correlation: str = "corr-1") -> str:
        event = DeploymentEvent.from_parts(parse_resource_id(resource), correlation, START)
        instance_id = instance_id_for(event.resource_id, event.correlation_id)
        return self.start(instance_id, scan_input_for_event(event, self.settings.scan_options()))

    def start_image(self, image: str, instance_id: str, *, force: bool = False) -> str:
        return self.start(instance_id, scan_input_for_image(image, self.settings.scan_options(), force=force))

    def start(self, instance_id: str, scan_input: Any) -> str:
        self.inputs[instance_id] = scan_input
        return self.engine.start_new(ORCHESTRATOR_SCAN_DEPLOYMENT, instance_id, scan_input)

    def run(self, timeout: float = 120) -> None:
        self.engine.run_until_idle(timeout=timeout)

    def run_until(self, instance_id: str, phase: str, timeout: float = 120) -> None:
        """Run until an episode of `instance_id` leaves its custom status in `phase` (or everything is idle)."""

        def reached() -> bool:
            return any((s.custom_status or {}).get("phase") == phase for s in self.snapshots(instance_id))

        self.engine._drive(reached, deadline_after(timeout), return_when_idle=True)

    def snapshots(self, instance_id: str) -> list[EpisodeSnapshot]:
        found: list[EpisodeSnapshot] = self.engine.__dict__.get("snapshots", {}).get(instance_id, [])
        return found


def case_env(azurite: Azurite, case: str, **settings: str) -> dict[str, str]:
    """App settings of one case: fixed container and table names (stable files), no registry lookups."""
    tag = case.replace("_", "")[:20]
    return {
        **BASE_APP_SETTINGS,
        "AzureWebJobsStorage": azurite.connection_string,
        "RESULTS_CONTAINER": f"reports-{tag}",
        "UPLOADS_CONTAINER": f"uploads-{tag}",
        "CACHE_TABLE": f"cache{tag}",
        "SCANS_TABLE": f"scans{tag}",
        "RESOLVE_DIGESTS": "false",
        "NOTIFY_SEVERITY_THRESHOLD": "CRITICAL",
        # groups of up to 10 images with short per-image floors, so a SCAN_TIMEOUT of 600 s stays valid
        "MAX_IMAGES_PER_SCANNER_GROUP": "10",
        "SCAN_TIMEOUT_PER_IMAGE": "30",
        **settings,
    }


@contextmanager
def recording(
    azurite: Azurite, case: str, scenario: dict[str, Any], workdir: Path, **settings: str
) -> Iterator[Recording]:
    """The app on a fresh RecordingEngine with a virtual clock at START and an ARM simulator running `scenario`."""
    parsed = Scenario.model_validate(scenario)
    env = case_env(azurite, case, **(parsed.app_settings() | settings))
    clock = VirtualClock(START)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        engine = RecordingEngine(load_app(APP_SPEC), store_path=str(workdir / f"{case}.sqlite"), clock=clock)
        try:
            with ArmSimulator(parsed, clock=clock) as sim:
                point_process_at(sim, patch)
                get_settings.cache_clear()
                arm_clients.reset_cache()
                yield Recording(engine=engine, sim=sim, clock=clock)
        finally:
            engine.close()
            get_settings.cache_clear()
            arm_clients.reset_cache()
            install(RealClock())
