"""The scan queue end to end on devhost's server (the wake activity needs the durable client): Azurite, the ARM
simulator with its upload events (on or off), the real activities and entities, a virtual clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.events import DeploymentEvent, parse_resource_id
from core.naming import instance_id_for, rescan_instance_id
from core.scan_input import scan_input_for_event, scan_input_for_image
from devhost.armsim.blob_events import webhook_sink
from devhost.armsim.testing import resource_id
from devhost.azurite import Azurite
from devhost.functions import load_app
from devhost.server import DevHostServer
from devhost.triggers import specs_from_index
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT_V2
from starters.upload_events import UPLOAD_EVENTS_FUNCTION
from tests.orchestration.pipeline_support import APP_SPEC, START, Pipeline, running_pipeline

pytestmark = [pytest.mark.azurite, pytest.mark.slow]
WEB = resource_id("Microsoft.ContainerInstance/containerGroups", "web")
API = resource_id("Microsoft.App/containerApps", "api")
WEB2 = resource_id("Microsoft.ContainerInstance/containerGroups", "web2")
NGINX = "docker.io/library/nginx:1.27"


def scenario(*resources: tuple[str, list[str]], scans: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resources": [{"id": rid, "images": images} for rid, images in resources],
        "scans": {"default": {"result": "ok", "duration_s": 60}, **(scans or {})},
    }


@contextmanager
def queue_stack(
    azurite: Azurite, tmp_path: Path, spec: dict[str, Any], *, events: bool = True, **settings: str
) -> Iterator[Pipeline]:
    """The pipeline served over HTTP (activities get a durable client), driven by the test as the demo drives it."""
    with running_pipeline(azurite, spec, tmp_path, prepare=None, ordered_completions=True, **settings) as pipeline:
        specs = specs_from_index(load_app(APP_SPEC))
        with DevHostServer(specs, pipeline.engine, task_hub="QueuePipeline", manage_engine=False) as server:
            if events:  # the storage account's Event Grid subscription (as the demo wires it)
                sink = webhook_sink(server.base_url, UPLOAD_EVENTS_FUNCTION)
                pipeline.sim.state.blob_events.subscribe(sink, pipeline.settings.uploads_container)
            yield pipeline


def start(pipeline: Pipeline, resource: str) -> str:
    event = DeploymentEvent.from_parts(parse_resource_id(resource), "corr-1", START)
    instance_id = instance_id_for(event.resource_id, event.correlation_id)
    scan_input = scan_input_for_event(event, pipeline.settings.scan_options())
    return pipeline.engine.start_new(ORCHESTRATOR_SCAN_DEPLOYMENT_V2, instance_id, scan_input)


def batches(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [s for s in pipeline.engine.list_statuses() if s["name"] == "scan_batch"]


def shared_scan(azurite: Azurite, tmp_path: Path, *, events: bool) -> tuple[Pipeline, list[str], float]:
    spec = scenario((WEB, ["nginx:1.27", "redis:7"]), (API, ["nginx:1.27"]))
    with queue_stack(azurite, tmp_path, spec, events=events) as pipeline:
        ids = [start(pipeline, WEB), start(pipeline, API)]
        pipeline.run(timeout=180)
        for instance_id in ids:
            assert {r["status"] for r in pipeline.output(instance_id)["images"]} == {"completed"}
        runners = {r["instance_id"] for i in ids for r in pipeline.output(i)["images"]}
        assert runners == {b["instanceId"] for b in batches(pipeline)}  # every result is a batch runner's
        stats = pipeline.sim.stats()
        assert stats["scans"]["images_started"] == 2  # nginx once, whoever asked
        assert stats["groups"]["remaining"] == 0
        assert max(stats["by_group"].values()) <= 5  # GET, PUT, (a backstop GET), DELETE, GET
        elapsed = (pipeline.clock.now() - START).total_seconds()
        return pipeline, ids, elapsed


def test_two_deployments_share_one_scan_of_an_image_and_every_group_goes(azurite: Azurite, tmp_path: Path) -> None:
    shared_scan(azurite, tmp_path, events=True)


def test_without_upload_events_the_scan_still_completes(azurite: Azurite, tmp_path: Path) -> None:
    shared_scan(azurite, tmp_path, events=False)  # the batch's backstop at half the SCAN_TIMEOUT finds the uploads


def test_a_manual_scan_and_an_automatic_one_of_the_same_image_share_one_scan(azurite: Azurite, tmp_path: Path) -> None:
    spec = scenario((WEB, ["nginx:1.27"]), scans={NGINX: {"result": "ok", "duration_s": 300}})
    with queue_stack(azurite, tmp_path, spec) as pipeline:
        automatic = start(pipeline, WEB)
        pipeline.engine.run_until(START + timedelta(seconds=120), timeout=60)
        assert batches(pipeline)
        manual = rescan_instance_id(NGINX, "manual-1")
        options = pipeline.settings.scan_options()
        pipeline.engine.start_new(
            ORCHESTRATOR_SCAN_DEPLOYMENT_V2, manual, scan_input_for_image("nginx:1.27", options, force=True)
        )
        pipeline.run(timeout=120)
        first, second = pipeline.output(automatic)["images"][0], pipeline.output(manual)["images"][0]
        assert first["status"] == second["status"] == "completed"
        assert first["instance_id"] == second["instance_id"]  # the same batch runner
        assert pipeline.sim.stats()["scans"]["images_started"] == 1


def test_a_waiter_whose_holder_ends_after_its_own_start_plus_scan_timeout_still_gets_the_result(
    azurite: Azurite, tmp_path: Path
) -> None:
    """One group at a time: busybox holds it, nginx waits in the queue; a third deployment asks for nginx at once.
    nginx ends about 950 s in, past that deployment's own start + SCAN_TIMEOUT (600 s): its deadline is nginx's
    holder's scan deadline plus the grace, so it gets the result (the old design recorded timed_out)."""
    long_scan = {"result": "ok", "duration_s": 440}
    spec = scenario((WEB, ["busybox:1.36"]), (API, ["nginx:1.27"]), (WEB2, ["nginx:1.27"]),
                    scans={NGINX: long_scan, "docker.io/library/busybox:1.36": long_scan})  # fmt: skip
    one = {"SCAN_TIMEOUT": "600", "MAX_IMAGES_PER_SCANNER_GROUP": "1", "MAX_CONCURRENT_SCANNER_GROUPS": "1"}
    with queue_stack(azurite, tmp_path, spec, events=True, **one) as pipeline:
        ids = [start(pipeline, WEB), start(pipeline, API), start(pipeline, WEB2)]
        pipeline.run(timeout=120)
        for instance_id in ids:
            assert pipeline.output(instance_id)["images"][0]["status"] == "completed"
        waiter = pipeline.status(ids[2])
        finished = datetime.fromisoformat(waiter["lastUpdatedTime"].replace("Z", "+00:00"))
        assert (finished - START).total_seconds() > 600  # later than its own start plus SCAN_TIMEOUT
        assert pipeline.sim.stats()["scans"]["images_started"] == 2
