"""The app behind devhost's server: a redelivered Event Hub message scans once; the janitor's timer cleans up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from activities.aci_scanner import CreateScannerGroupRequest, create_scanner_group
from activities.storage_clients import list_uploads_containers, uploads_container_of
from core.naming import instance_id_for, scanner_group_name
from core.settings import get_settings
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.testing import SUBSCRIPTION_ID, resource_id
from devhost.azurite import Azurite
from devhost.server import DevHostServer
from starters.eventhub_starter import EVENTHUB_STARTER_FUNCTION
from starters.janitor import JANITOR_FUNCTION
from tests.orchestration.pipeline_support import START, serving_pipeline

pytestmark = [pytest.mark.azurite, pytest.mark.slow]
WEB = resource_id("Microsoft.ContainerInstance/containerGroups", "web")
CORRELATION = "c0ffee00-1234-4abc-9def-00000000abcd"
SCENARIO = Scenario.model_validate(
    {"resources": [{"id": WEB, "images": ["nginx:1.27"]}], "scans": {"default": {"result": "ok", "duration_s": 60}}}
)


@pytest.fixture(scope="module")
def stack(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevHostServer, ArmSimulator]]:
    tmp = tmp_path_factory.mktemp("server")
    with serving_pipeline(azurite, SCENARIO, tmp, task_hub="PipelineServer", JANITOR_SCHEDULE="0 */10 * * * *") as (
        server,
        pipeline,
    ):
        yield server, pipeline.sim


def invoke(server: DevHostServer, function: str, trigger_input: str) -> dict[str, Any]:
    """Trigger a function through the admin endpoint and wait until it and the engine are idle."""
    response = requests.post(f"{server.base_url}/admin/functions/{function}", json={"input": trigger_input}, timeout=10)
    assert response.status_code == 202
    invocation_id = response.headers["x-devhost-invocation-id"]
    records = server.wait_idle(timeout=120)
    record = next(r for r in records if r.id == invocation_id)
    assert record.status == "succeeded", record
    return {"id": invocation_id}


def event_grid_message() -> str:
    event = {
        "subject": WEB,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": START.isoformat().replace("+00:00", "Z"),
        "id": "f5e4d3c2-0000-4000-8000-000000000009",
        "topic": f"/subscriptions/{SUBSCRIPTION_ID}",
        "dataVersion": "2",
        "data": {
            "correlationId": CORRELATION,
            "resourceUri": WEB,
            "operationName": "Microsoft.ContainerInstance/containerGroups/write",
            "status": "Succeeded",
            "subscriptionId": SUBSCRIPTION_ID,
        },
    }
    return json.dumps([event])


def test_a_redelivered_message_starts_one_scan(stack: tuple[DevHostServer, ArmSimulator]) -> None:
    server, sim = stack
    message = event_grid_message()
    invoke(server, EVENTHUB_STARTER_FUNCTION, json.dumps([message]))
    invoke(server, EVENTHUB_STARTER_FUNCTION, json.dumps([message, message]))
    instance_id = instance_id_for(WEB, CORRELATION)
    scans = [s for s in server.engine.list_statuses() if s["name"] == "scan_deployment_v2"]
    assert [s["instanceId"] for s in scans] == [instance_id]
    assert scans[0]["runtimeStatus"] == "Completed"
    assert [r["status"] for r in scans[0]["output"]["images"]] == ["completed"]
    assert sim.stats()["groups"]["created"] == 1


def test_janitor_deletes_old_groups_of_dead_orchestrations_only(stack: tuple[DevHostServer, ArmSimulator]) -> None:
    server, sim = stack
    settings = get_settings()
    now = datetime.now(UTC)  # the janitor reads the wall clock, as it does in Azure
    groups = {"forgotten": ("scan-gone", now - timedelta(hours=2)), "young": ("scan-new", now - timedelta(minutes=1))}
    for label, (owner, created_at) in groups.items():
        request = CreateScannerGroupRequest(
            instance_id=owner,
            group_name=scanner_group_name(label),
            images=["docker.io/library/busybox:latest"],
            results_prefix=owner,
            created_at=created_at,
        )
        create_scanner_group(settings, request)
    invoke(server, JANITOR_FUNCTION, "{}")
    remaining = sim.state.group_names()
    assert scanner_group_name("forgotten") not in remaining
    assert scanner_group_name("young") in remaining
    containers = {info.name for info in list_uploads_containers(settings)}  # each create made one
    assert uploads_container_of(settings, scanner_group_name("forgotten")) not in containers
    assert uploads_container_of(settings, scanner_group_name("young")) in containers
