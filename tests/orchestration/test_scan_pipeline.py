"""scan_deployment end to end on devhost: Azurite, the ARM simulator, the real activities, a virtual clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import ContainerClient

from activities.results_store import get_scan_record
from activities.storage_clients import clients_for, list_uploads_containers
from core.events import DeploymentEvent, parse_resource_id
from core.naming import instance_id_for, scanner_group_name
from core.scan_input import scan_input_for_event, scan_input_for_image
from core.settings import get_settings
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.state import SimResponse, SimState
from devhost.armsim.testing import resource_id
from devhost.azurite import Azurite
from devhost.clock import VirtualClock
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT
from tests.orchestration.pipeline_support import START, Pipeline, needs_arm_activities, running_pipeline

pytestmark = [pytest.mark.azurite, pytest.mark.slow, needs_arm_activities]
WEB = resource_id("Microsoft.ContainerInstance/containerGroups", "web")
API = resource_id("Microsoft.App/containerApps", "api")
NGINX, REDIS, BUSYBOX = "docker.io/library/nginx:1.27", "docker.io/library/redis:7", "docker.io/library/busybox:latest"
OK_SCAN = {"result": "ok", "duration_s": 60, "vulnerabilities": {"HIGH": 1, "LOW": 2}}


def scenario(*resources: tuple[str, list[str]], scans: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resources": [{"id": rid, "images": images} for rid, images in resources],
        "scans": {"default": OK_SCAN, **(scans or {})},
    }


def start_deployment(pipeline: Pipeline, resource: str, correlation: str = "corr-1") -> str:
    event = DeploymentEvent.from_parts(parse_resource_id(resource), correlation, START)
    instance_id = instance_id_for(event.resource_id, event.correlation_id)
    scan_input = scan_input_for_event(event, pipeline.settings.scan_options())
    return pipeline.engine.start_new(ORCHESTRATOR_SCAN_DEPLOYMENT, instance_id, scan_input)


def statuses(pipeline: Pipeline, instance_id: str) -> dict[str, str]:
    return {image: result["status"] for image, result in pipeline.results_by_image(instance_id).items()}


def uploads_containers_left(pipeline: Pipeline) -> list[str]:
    """The per-group uploads containers still there (the store step deletes each once its results are kept)."""
    return [info.name for info in list_uploads_containers(pipeline.settings)]


def test_happy_path_three_images(azurite: Azurite, tmp_path: Path) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27", "redis:7", "busybox"])), tmp_path) as pipeline:
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        output = pipeline.output(instance_id)
        assert output["status"] == "completed"
        results = pipeline.results_by_image(instance_id)
        assert list(results) == [NGINX, REDIS, BUSYBOX]
        for result in results.values():
            assert result["status"] == "completed"
            assert result["vulnerabilities"] == {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 0, "LOW": 2}
            assert result["report"] and result["instance_id"] == instance_id
        stats = pipeline.sim.stats()
        assert stats["groups"] == {"created": 1, "deleted": 1, "remaining": 0}
        assert uploads_containers_left(pipeline) == []
        custom = pipeline.status(instance_id)["customStatus"]
        assert custom["phase"] == "done"
        assert custom["groups"] == [{"name": scanner_group_name(instance_id), "state": "Deleted"}]


def test_cache_hit_on_a_second_deployment(azurite: Azurite, tmp_path: Path) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"]), (API, ["nginx:1.27"])), tmp_path) as pipeline:
        first = start_deployment(pipeline, WEB)
        pipeline.run()
        second = start_deployment(pipeline, API)
        pipeline.run()
        assert statuses(pipeline, first) == {NGINX: "completed"}
        assert statuses(pipeline, second) == {NGINX: "cached"}
        assert pipeline.results_by_image(second)[NGINX]["report"] == pipeline.results_by_image(first)[NGINX]["report"]
        assert pipeline.sim.stats()["groups"]["created"] == 1


def test_forced_rescan_bypasses_the_cache(azurite: Azurite, tmp_path: Path) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"])), tmp_path) as pipeline:
        start_deployment(pipeline, WEB)
        pipeline.run()
        options = pipeline.settings.scan_options()
        forced = pipeline.engine.start_new(
            ORCHESTRATOR_SCAN_DEPLOYMENT, "rescan-1", scan_input_for_image("nginx:1.27", options, force=True)
        )
        pipeline.run()
        assert statuses(pipeline, forced) == {NGINX: "completed"}
        assert pipeline.sim.stats()["groups"]["created"] == 2


def test_single_flight_two_deployments_share_one_scan(azurite: Azurite, tmp_path: Path) -> None:
    resources = scenario((WEB, ["nginx:1.27", "redis:7"]), (API, ["nginx:1.27"]))
    with running_pipeline(azurite, resources, tmp_path) as pipeline:
        first = start_deployment(pipeline, WEB)
        second = start_deployment(pipeline, API)
        pipeline.run()
        scanned, waited = pipeline.results_by_image(first), pipeline.results_by_image(second)
        assert scanned[NGINX]["status"] == waited[NGINX]["status"] == "completed"
        holder = scanned[NGINX]["instance_id"]
        assert holder in (first, second)
        assert waited[NGINX]["instance_id"] == holder
        other = second if holder == first else first
        assert f"shared scan by {holder}" in pipeline.results_by_image(other)[NGINX]["reason"]
        assert pipeline.sim.stats()["scans"]["images_started"] == 2  # nginx scanned once, not twice
        assert uploads_containers_left(pipeline) == []


def test_hanging_image_times_out_and_its_group_is_deleted(azurite: Azurite, tmp_path: Path) -> None:
    hang = scenario((WEB, ["nginx:1.27", "redis:7"]), scans={REDIS: {"result": "hang"}})
    with running_pipeline(azurite, hang, tmp_path, SCAN_TIMEOUT="600") as pipeline:
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        results = pipeline.results_by_image(instance_id)
        assert results[NGINX]["status"] == "completed"
        assert results[REDIS]["status"] == "timed_out"
        assert pipeline.output(instance_id)["status"] == "partial"
        assert pipeline.sim.stats()["groups"]["remaining"] == 0
        assert uploads_containers_left(pipeline) == []
        assert pipeline.clock.now() - START >= timedelta(seconds=600)


def test_scanner_error_exit_fails_the_image_with_its_exit_code(azurite: Azurite, tmp_path: Path) -> None:
    broken = scenario((WEB, ["nginx:1.27"]), scans={NGINX: {"result": "error", "exit_code": 9, "duration_s": 30}})
    with running_pipeline(azurite, broken, tmp_path) as pipeline:
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        result = pipeline.results_by_image(instance_id)[NGINX]
        assert result["status"] == "failed"
        assert pipeline.output(instance_id)["status"] == "failed"
        assert pipeline.sim.stats()["groups"]["remaining"] == 0


def test_arm_throttling_and_server_errors_are_retried(azurite: Azurite, tmp_path: Path) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"])), tmp_path) as pipeline:
        pipeline.sim.inject("GET", r"/containerGroups/web$", 429, times=1, retry_after=5)
        pipeline.sim.inject("PUT", r"/containerGroups/qscan-", 500, times=2)
        pipeline.sim.inject("DELETE", r"/containerGroups/qscan-", 429, times=1, retry_after=5)
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        assert statuses(pipeline, instance_id) == {NGINX: "completed"}
        stats = pipeline.sim.stats()
        assert stats["faults_served"] == 4
        assert stats["groups"] == {"created": 1, "deleted": 1, "remaining": 0}


def test_group_is_deleted_when_arm_keeps_failing_mid_scan(azurite: Azurite, tmp_path: Path) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"])), tmp_path) as pipeline:
        group = scanner_group_name(instance_id_for(WEB, "corr-1"))
        pipeline.sim.inject("GET", rf"/containerGroups/{group}$", 500, times=None)
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        output = pipeline.output(instance_id)
        assert output["status"] == "failed"
        assert "get_scanner_state" in output["error"] or "500" in output["error"]
        assert pipeline.sim.stats()["groups"]["remaining"] == 0
        assert uploads_containers_left(pipeline) == []  # the store step runs on the failure path too


TIMER_CREATED = 10  # EventType number in the stored history
ARM_REQUESTS_PER_GROUP_BUDGET = 10
HISTORY_EVENTS_BUDGET = 100


def test_budgets_for_three_new_images_and_a_three_minute_scan(azurite: Azurite, tmp_path: Path) -> None:
    """<= 10 ARM requests for the scanner group, <= 100 history events, with SCAN_TIMEOUT 30 minutes.

    Three images of 60 s each: the group runs about 3 minutes after 20 s of provisioning. docs/performance.md
    ("Pipeline budgets") reports these figures.
    """
    three_minutes = {"result": "ok", "duration_s": 60}
    with running_pipeline(
        azurite,
        scenario((WEB, ["nginx:1.27", "redis:7", "busybox"]), scans={"default": three_minutes}),
        tmp_path,
        SCAN_TIMEOUT="1800",
    ) as pipeline:
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        assert pipeline.output(instance_id)["status"] == "completed"
        group = scanner_group_name(instance_id)
        arm_requests = pipeline.sim.stats()["by_group"][group]
        history = pipeline.history(instance_id)
        print(f"ARM requests for {group}: {arm_requests}; history events: {len(history)}")
        assert arm_requests <= ARM_REQUESTS_PER_GROUP_BUDGET
        assert len(history) <= HISTORY_EVENTS_BUDGET


def test_history_stays_bounded_when_every_image_hangs_to_the_timeout(azurite: Azurite, tmp_path: Path) -> None:
    hanging = scenario((WEB, ["nginx:1.27", "redis:7", "busybox"]), scans={"default": {"result": "hang"}})
    with running_pipeline(azurite, hanging, tmp_path, SCAN_TIMEOUT="1800") as pipeline:
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        assert set(statuses(pipeline, instance_id).values()) <= {"timed_out", "failed"}
        assert len(pipeline.history(instance_id)) <= HISTORY_EVENTS_BUDGET
        assert pipeline.status(instance_id)["customStatus"]["polls"] <= 6


class StorageOutageAfterScan(SimState):
    """The simulator's state, which calls `break_storage` once a GET shows a scanner group has finished."""

    def __init__(
        self, scenario: Scenario, now: Callable[[], datetime], identity_header: str, break_storage: Callable[[], None]
    ) -> None:
        super().__init__(scenario, now, identity_header)
        self.break_storage = break_storage
        self.broken = False

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> SimResponse:
        response = super().handle(method, path, query, headers, body)
        view = response.body.get("properties", {}).get("instanceView", {}) if isinstance(response.body, dict) else {}
        finished = method == "GET" and "/containerGroups/qscan-" in path and view.get("state") == "Succeeded"
        if finished and not self.broken:
            self.broken = True
            self.break_storage()
        return response


def reports_unreachable(patch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Collect (it copies each report into the reports container) then fails on every attempt.

    The process's results storage answers no more for the reports container, as in an outage (a deleted container
    would be recreated by the next upload, `activities/storage_clients.py`).
    """

    def unreachable(name: str) -> ContainerClient:
        raise ServiceRequestError(f"results storage unreachable (container {name})")

    def break_storage() -> None:
        patch.setattr(clients_for(get_settings()), "container", unreachable)

    return break_storage


def test_group_is_deleted_and_the_failure_recorded_when_collect_fails(
    azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage breaks as the scan finishes: collect fails after its retries; delete runs, the record says failed."""

    def outage_after_scan(sim: ArmSimulator, clock: VirtualClock) -> None:
        sim.state = StorageOutageAfterScan(
            sim.scenario, clock.now, sim.identity_header, reports_unreachable(monkeypatch)
        )

    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"])), tmp_path, prepare=outage_after_scan) as pipeline:
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        output = pipeline.output(instance_id)
        assert output["status"] == "failed"
        assert "collect_results" in output["error"]
        assert pipeline.results_by_image(instance_id)[NGINX]["status"] == "failed"
        record = get_scan_record(pipeline.storage, pipeline.settings, instance_id)
        assert record is not None and record.status == "failed"
        assert [r.status for r in record.results] == ["failed"]
        assert pipeline.sim.stats()["groups"] == {"created": 1, "deleted": 1, "remaining": 0}
        assert pipeline.status(instance_id)["customStatus"]["phase"] == "failed"


def test_quota_gate_makes_a_second_deployment_wait_for_a_slot(azurite: Azurite, tmp_path: Path) -> None:
    both = scenario((WEB, ["nginx:1.27"]), (API, ["redis:7"]))
    with running_pipeline(azurite, both, tmp_path, MAX_CONCURRENT_SCANNER_GROUPS="1") as pipeline:
        first = start_deployment(pipeline, WEB)
        second = start_deployment(pipeline, API)
        pipeline.run()
        assert statuses(pipeline, first) == {NGINX: "completed"}
        assert statuses(pipeline, second) == {REDIS: "completed"}
        timers = [e for i in (first, second) for e in pipeline.history(i) if e["EventType"] == TIMER_CREATED]
        polls = sum(pipeline.status(i)["customStatus"]["polls"] for i in (first, second))
        assert len(timers) > polls, "besides its polls, one of them waited on a timer for the quota gate"
        assert pipeline.sim.stats()["groups"] == {"created": 2, "deleted": 2, "remaining": 0}


def test_an_aci_quota_refusal_waits_and_creates_again_instead_of_failing(azurite: Azurite, tmp_path: Path) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"])), tmp_path) as pipeline:
        # Seven refusals outlast one create's activity retries (5 attempts): only a durable wait gets past them.
        pipeline.sim.inject("PUT", r"/containerGroups/qscan-", 409, times=7, code="ContainerGroupQuotaReached")
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        assert statuses(pipeline, instance_id) == {NGINX: "completed"}
        assert pipeline.sim.stats()["groups"] == {"created": 1, "deleted": 1, "remaining": 0}
        assert pipeline.sim.stats()["faults_served"] == 7
