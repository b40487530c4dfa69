"""scan_deployment against ACI's limits on devhost: quota by error code, core budgets, capacity, fail fast.

The ARM simulator enforces ACI's regional limits (devhost/armsim/limits.py); the app must wait for them, never fail
a scan for them, and must fail at once (one attempt, not five) on ARM errors that retrying cannot fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.naming import instance_id_for, scanner_group_name
from devhost.azurite import Azurite
from tests.orchestration.pipeline_support import Pipeline, needs_arm_activities, running_pipeline
from tests.orchestration.test_scan_pipeline import (
    API,
    NGINX,
    REDIS,
    TIMER_CREATED,
    WEB,
    scenario,
    start_deployment,
    statuses,
    uploads_containers_left,
)

pytestmark = [pytest.mark.azurite, pytest.mark.slow, needs_arm_activities]
ATTEMPTS = 5  # orchestrators.calls.ACTIVITY_MAX_ATTEMPTS
TASK_SCHEDULED = 4


def with_settings(base: dict[str, Any], **settings: str) -> dict[str, Any]:
    return {**base, "settings": {**base.get("settings", {}), **settings}}


def scheduled(pipeline: Pipeline, instance_id: str, name: str) -> int:
    """How many times the orchestration scheduled activity `name` (each retry attempt counts)."""
    return sum(1 for e in pipeline.history(instance_id) if e["EventType"] == TASK_SCHEDULED and e["Name"] == name)


def test_a_quota_refusal_with_status_400_waits_by_its_code(azurite: Azurite, tmp_path: Path) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"])), tmp_path) as pipeline:
        # ACI answers ContainerGroupQuotaReached with 400 (captured errors): seven outlast one create's retries.
        pipeline.sim.inject("PUT", r"/containerGroups/qscan-", 400, times=7, code="ContainerGroupQuotaReached")
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        assert statuses(pipeline, instance_id) == {NGINX: "completed"}
        assert pipeline.sim.stats()["faults_served"] == 7
        assert pipeline.sim.stats()["groups"] == {"created": 1, "deleted": 1, "remaining": 0}


def test_a_create_refused_for_capacity_waits_like_a_quota_refusal(azurite: Azurite, tmp_path: Path) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"])), tmp_path) as pipeline:
        text = "The requested resource is not available in the location 'westeurope' at this moment."
        pipeline.sim.inject("PUT", r"/containerGroups/qscan-", 503, times=7, code="ServiceUnavailable", message=text)
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        assert statuses(pipeline, instance_id) == {NGINX: "completed"}
        assert pipeline.sim.stats()["faults_served"] == 7


def test_aci_standard_cores_refusal_waits_for_the_first_scan_to_end(azurite: Azurite, tmp_path: Path) -> None:
    """Two 2-core groups with 2 cores of ACI quota (the gate, at its default 100, lets both through): the second
    create is refused by ACI for StandardCores (400) and made again once the first group is deleted."""
    both = with_settings(scenario((WEB, ["nginx:1.27"]), (API, ["redis:7"])), ARMSIM_MAX_CORES="2")
    with running_pipeline(azurite, both, tmp_path, SCANNER_CPU="2") as pipeline:
        first, second = start_deployment(pipeline, WEB), start_deployment(pipeline, API)
        pipeline.run()
        assert statuses(pipeline, first) == {NGINX: "completed"}
        assert statuses(pipeline, second) == {REDIS: "completed"}
        stats = pipeline.sim.stats()
        assert stats["refused"].get("StandardCores", 0) >= 1
        assert stats["usage"]["peak_cores"] == 2.0
        assert stats["groups"] == {"created": 2, "deleted": 2, "remaining": 0}


def test_the_gate_budgets_cores_so_aci_never_refuses(azurite: Azurite, tmp_path: Path) -> None:
    """ACI_MAX_CORES=2 with SCANNER_CPU=2: the gate holds the second scan back; ACI itself refuses nothing."""
    both = with_settings(scenario((WEB, ["nginx:1.27"]), (API, ["redis:7"])), ARMSIM_MAX_CORES="2")
    with running_pipeline(azurite, both, tmp_path, SCANNER_CPU="2", ACI_MAX_CORES="2") as pipeline:
        first, second = start_deployment(pipeline, WEB), start_deployment(pipeline, API)
        pipeline.run()
        assert statuses(pipeline, first) == {NGINX: "completed"}
        assert statuses(pipeline, second) == {REDIS: "completed"}
        stats = pipeline.sim.stats()
        assert stats["refused"] == {}
        timers = [e for i in (first, second) for e in pipeline.history(i) if e["EventType"] == TIMER_CREATED]
        polls = sum(pipeline.status(i)["customStatus"]["polls"] for i in (first, second))
        assert len(timers) > polls, "one of them waited on a timer for the gate's core budget"


def test_a_late_capacity_failure_deletes_waits_and_creates_a_new_group(azurite: Azurite, tmp_path: Path) -> None:
    late = with_settings(scenario((WEB, ["nginx:1.27"])), ARMSIM_CAPACITY_FAILURES="1")
    with running_pipeline(azurite, late, tmp_path) as pipeline:
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        assert statuses(pipeline, instance_id) == {NGINX: "completed"}
        stats = pipeline.sim.stats()
        assert stats["groups"] == {"created": 2, "deleted": 2, "remaining": 0}
        assert scheduled(pipeline, instance_id, "create_scanner_group") == 2
        groups = {g["name"]: g["state"] for g in pipeline.status(instance_id)["customStatus"]["groups"]}
        assert len(groups) == 2 and set(groups.values()) == {"Deleted"}
        assert scanner_group_name(instance_id) in groups
        assert uploads_containers_left(pipeline) == []  # the replaced group's uploads container goes too


def test_capacity_failures_that_never_end_fail_the_images_with_acis_reason(azurite: Azurite, tmp_path: Path) -> None:
    never = with_settings(scenario((WEB, ["nginx:1.27"])), ARMSIM_CAPACITY_FAILURES="10")
    with running_pipeline(azurite, never, tmp_path) as pipeline:
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        result = pipeline.results_by_image(instance_id)[NGINX]
        assert result["status"] == "failed"
        assert "not available in the location" in result["reason"]
        stats = pipeline.sim.stats()
        assert stats["groups"] == {"created": 4, "deleted": 4, "remaining": 0}  # first create and 3 more, bounded


def test_a_forbidden_create_fails_after_one_attempt_not_five(azurite: Azurite, tmp_path: Path) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"])), tmp_path) as pipeline:
        pipeline.sim.inject("PUT", r"/containerGroups/qscan-", 403, times=None, code="AuthorizationFailed")
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        output = pipeline.output(instance_id)
        assert output["status"] == "failed"
        assert "status=403 code=AuthorizationFailed" in output["error"]
        assert scheduled(pipeline, instance_id, "create_scanner_group") == 1
        assert pipeline.sim.stats()["by_method"]["PUT"] == 1
        assert uploads_containers_left(pipeline) == []


@pytest.mark.parametrize(
    ("status", "code", "attempts"),
    [(401, "InvalidAuthenticationToken", 1), (400, "InvalidRequestContent", 1), (500, None, ATTEMPTS)],
)
def test_resolve_fails_fast_only_on_errors_retrying_cannot_fix(
    azurite: Azurite, tmp_path: Path, status: int, code: str | None, attempts: int
) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"])), tmp_path) as pipeline:
        pipeline.sim.inject("GET", r"/containerGroups/web$", status, times=None, code=code)
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        output = pipeline.output(instance_id)
        assert output["status"] == "failed" and f"status={status}" in output["error"]
        assert scheduled(pipeline, instance_id, "resolve_images") == attempts
        assert pipeline.sim.stats()["faults_served"] == attempts


def test_a_forbidden_delete_is_reported_at_once_and_the_scan_result_kept(azurite: Azurite, tmp_path: Path) -> None:
    with running_pipeline(azurite, scenario((WEB, ["nginx:1.27"])), tmp_path) as pipeline:
        pipeline.sim.inject("DELETE", r"/containerGroups/qscan-", 403, times=None, code="AuthorizationFailed")
        instance_id = start_deployment(pipeline, WEB)
        pipeline.run()
        output = pipeline.output(instance_id)
        assert output["images"][0]["status"] == "completed"
        assert "delete " in output["error"] and "status=403" in output["error"]
        assert scheduled(pipeline, instance_id, "delete_scanner_group") == 1


def test_a_wave_of_deployments_stays_within_acis_limits(azurite: Azurite, tmp_path: Path) -> None:
    """Twelve deployments at once against 3 groups of ACI quota and 5 creates per 5 minutes (the app's gate at its
    defaults): ACI refuses some creates, the app waits and creates again, and every image completes."""
    resources = [(WEB.replace("/web", f"/web{n}"), [f"app{n}:1"]) for n in range(12)]
    wave = with_settings(scenario(*resources), ARMSIM_MAX_CONTAINER_GROUPS="3", ARMSIM_MAX_CREATES_PER_5_MINUTES="5")
    with running_pipeline(azurite, wave, tmp_path) as pipeline:
        ids = [start_deployment(pipeline, rid) for rid, _ in resources]
        pipeline.run(timeout=600)
        for instance_id, (_, images) in zip(ids, resources, strict=True):
            assert set(statuses(pipeline, instance_id).values()) == {"completed"}, images
        stats = pipeline.sim.stats()
        assert stats["usage"]["peak_groups"] <= 3
        assert stats["refused"], "the wave met ACI's limits"
        assert stats["groups"] == {"created": 12, "deleted": 12, "remaining": 0}
        assert instance_id_for(resources[0][0], "corr-1") == ids[0]
