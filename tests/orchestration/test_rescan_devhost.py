"""Rescans on devhost's server: the rescan timer through the admin API, the real activities (inventory, results,
durable client) and the scan queue, Azurite and the ARM simulator on a virtual clock. A rescan waits while a
deployment scan is pending; an image no longer deployed is not rescanned; each image is rescanned once per interval,
however often the timer runs before the rescan ends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from core.events import DeploymentEvent, parse_resource_id
from core.naming import instance_id_for
from core.rescan import RESCAN_INSTANCE_ID, SCHEDULED_RESCAN_PREFIX
from core.scan_input import scan_input_for_event
from core.sweep import SWEEP_INSTANCE_ID
from devhost.armsim.blob_events import webhook_sink
from devhost.armsim.testing import SUBSCRIPTION_ID, resource_id
from devhost.azurite import Azurite
from devhost.functions import load_app
from devhost.server import INVOCATION_HEADER, DevHostServer
from devhost.triggers import specs_from_index
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT_V2
from starters.eventhub_starter import EVENTHUB_STARTER_FUNCTION
from starters.rescan import RESCAN_TIMER_FUNCTION
from starters.upload_events import UPLOAD_EVENTS_FUNCTION
from tests.orchestration.pipeline_support import APP_SPEC, START, Pipeline, running_pipeline

pytestmark = [pytest.mark.azurite, pytest.mark.slow]
ACI = "Microsoft.ContainerInstance/containerGroups"
WEB, API, GONE = resource_id(ACI, "web"), resource_id(ACI, "api"), resource_id(ACI, "gone")
LATE, LATER = resource_id(ACI, "late"), resource_id(ACI, "later")
NGINX, REDIS, BUSYBOX = "docker.io/library/nginx:1.27", "docker.io/library/redis:7", "docker.io/library/busybox:1.36"
PYTHON, HTTPD = "docker.io/library/python:3.12", "docker.io/library/httpd:2.4"
SCENARIO = {
    "resources": [
        {"id": WEB, "images": ["nginx:1.27"]},
        {"id": API, "images": ["redis:7", "nginx:1.27"]},  # nginx shared: still one rescan
        {"id": GONE, "images": ["busybox:1.36"]},
        {"id": LATE, "images": ["python:3.12"]},
        {"id": LATER, "images": ["httpd:2.4"]},
    ],
    "scans": {"default": {"result": "ok", "duration_s": 60}, PYTHON: {"result": "ok", "duration_s": 300}},
}
ONE_GROUP = {"MAX_CONCURRENT_SCANNER_GROUPS": "1", "MAX_IMAGES_PER_SCANNER_GROUP": "1", "SCAN_TIMEOUT": "600"}


@contextmanager
def stack(azurite: Azurite, tmp_path: Path) -> Iterator[tuple[DevHostServer, Pipeline]]:
    settings = {**ONE_GROUP, "RESCAN_INTERVAL_HOURS": "1", "SCAN_CACHE_HOURS": "1", "INVENTORY_TABLE": "invrescan"}
    with running_pipeline(azurite, SCENARIO, tmp_path, prepare=None, ordered_completions=True, **settings) as pipeline:
        specs = specs_from_index(load_app(APP_SPEC))
        with DevHostServer(specs, pipeline.engine, task_hub="Rescans", manage_engine=False) as server:
            sink = webhook_sink(server.base_url, UPLOAD_EVENTS_FUNCTION)
            pipeline.sim.state.blob_events.subscribe(sink, pipeline.settings.uploads_container)
            yield server, pipeline


def invoke(server: DevHostServer, function: str, data: str = "") -> None:
    """Run a non-HTTP function through the admin API and wait for its invocation (the engine does not move)."""
    response = requests.post(f"{server.base_url}/admin/functions/{function}", json={"input": data}, timeout=30)
    assert response.status_code == 202, response.text
    invocation = response.headers[INVOCATION_HEADER]
    record = next(r for r in server.wait_idle(timeout=120, engine=False) if r.id == invocation)
    assert record.status == "succeeded", record


def rescans(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    found = [s for s in pipeline.engine.list_statuses() if s["instanceId"].startswith(SCHEDULED_RESCAN_PREFIX)]
    return {pipeline.status(s["instanceId"])["input"]["target"]["image"]: s for s in found}


def deploy(pipeline: Pipeline, resource: str) -> str:
    event = DeploymentEvent.from_parts(parse_resource_id(resource), f"corr-{resource[-4:]}", pipeline.clock.now())
    instance_id = instance_id_for(event.resource_id, event.correlation_id)
    return pipeline.engine.start_new(
        ORCHESTRATOR_SCAN_DEPLOYMENT_V2, instance_id, scan_input_for_event(event, pipeline.settings.scan_options())
    )


def delete_event(resource: str, at: datetime) -> dict[str, Any]:
    return {
        "id": "e0000000-0000-4000-8000-000000000001",
        "eventType": "Microsoft.Resources.ResourceDeleteSuccess",
        "subject": resource,
        "eventTime": at.isoformat().replace("+00:00", "Z"),
        "data": {
            "operationName": f"{ACI}/delete",
            "status": "Succeeded",
            "resourceUri": resource,
            "correlationId": "c0000000-0000-4000-8000-000000000001",
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{SUBSCRIPTION_ID}",
    }


def recorded(pipeline: Pipeline) -> dict[str, datetime]:
    """When each image's result was stored, from the batch runners' outputs."""
    times: dict[str, datetime] = {}
    for batch in (s for s in pipeline.engine.list_statuses() if s["name"] == "scan_batch"):
        for image, at in (pipeline.output(batch["instanceId"]).get("recorded") or {}).items():
            times[image] = max(times.get(image, START), datetime.fromisoformat(at))
    return times


def test_rescans_wait_for_deployment_scans_skip_undeployed_images_and_run_once_per_interval(
    azurite: Azurite, tmp_path: Path
) -> None:
    with stack(azurite, tmp_path) as (server, pipeline):
        assert requests.post(f"{server.base_url}/api/sweep", timeout=30).status_code == 202
        pipeline.run(timeout=180)  # the backfill scans every image once (never scanned: normal scans)
        assert pipeline.output(SWEEP_INSTANCE_ID)["scans_started"] == 5
        pipeline.sim.state.resource_graph.retire(GONE)
        invoke(server, EVENTHUB_STARTER_FUNCTION, json.dumps([json.dumps(delete_event(GONE, pipeline.clock.now()))]))
        pipeline.run(timeout=60)
        invoke(server, RESCAN_TIMER_FUNCTION)  # nothing is due yet: one short run, no rescan
        pipeline.run(timeout=60)
        assert pipeline.output(RESCAN_INSTANCE_ID)["due"] == 0 and not rescans(pipeline)

        pipeline.engine.run_until(pipeline.clock.now() + timedelta(hours=2), timeout=60)
        busy, waiting = deploy(pipeline, LATE), deploy(pipeline, LATER)  # python holds the one group, httpd waits
        pipeline.engine.run_until(pipeline.clock.now(), timeout=60)
        invoke(server, RESCAN_TIMER_FUNCTION)
        pipeline.engine.run_until(pipeline.clock.now(), timeout=60)
        first = pipeline.output(RESCAN_INSTANCE_ID)
        # nginx (run by two workloads: one rescan), redis, and the two images being scanned again by deployments
        # (their rescans join the scan in flight or the deployment's pending entry); busybox is no longer deployed
        assert (first["due"], first["started"]) == (4, 4)
        _, state = pipeline.engine.read_entity_state("scan_queue", "app")
        pending = [(p["item"]["image"], p.get("low", False)) for p in state["pending"]]
        assert pending == [(HTTPD, False), (NGINX, True), (REDIS, True)]  # the rescans wait behind the deployment
        invoke(server, RESCAN_TIMER_FUNCTION)  # the timer again before the rescans ended: nothing new starts
        pipeline.engine.run_until(pipeline.clock.now(), timeout=60)
        again = pipeline.output(RESCAN_INSTANCE_ID)
        assert (again["due"], again["started"], again["already"]) == (4, 0, 4)
        pipeline.run(timeout=180)

        started = rescans(pipeline)
        assert set(started) == {NGINX, REDIS, PYTHON, HTTPD}  # busybox is no longer deployed anywhere
        assert all(s["runtimeStatus"] == "Completed" for s in started.values())
        for instance in (busy, waiting, *(s["instanceId"] for s in started.values())):
            assert {r["status"] for r in pipeline.output(instance)["images"]} == {"completed"}
        at = recorded(pipeline)
        assert at[PYTHON] < at[HTTPD] < min(at[NGINX], at[REDIS])  # the deployment waiting went first
        assert pipeline.sim.stats()["scans"]["images_started"] == 5 + 2 + 2  # backfill, deployments, 2 rescans

        invoke(server, RESCAN_TIMER_FUNCTION)  # fresh results now: nothing due until the next interval
        pipeline.run(timeout=60)
        assert pipeline.output(RESCAN_INSTANCE_ID)["due"] == 0 and len(rescans(pipeline)) == 4
