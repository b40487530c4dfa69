"""A deployment scan, then rescans of the same image (ScanInput.rescan) on devhost: Azurite, the ARM simulator
with successive results (the second scan finds a new QID), the real activities, a webhook receiver and the HTTP API.
The first rescan alerts with the diff and every workload from the inventory; the next, unchanged, does not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis

from activities.inventory_store import record_sweep_rows
from activities.inventory_store import table as inventory_table
from activities.notify_rescan import rescan_alert_count
from core.naming import rescan_instance_id
from core.scan_input import scan_input_for_image
from core.workloads import Observed, WorkloadImage
from devhost.armsim.blob_events import webhook_sink
from devhost.azurite import Azurite
from devhost.functions import load_app
from devhost.server import DevHostServer
from devhost.triggers import specs_from_index
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT_V2
from starters.upload_events import UPLOAD_EVENTS_FUNCTION
from tests.loopback import loopback_http_server
from tests.orchestration.pipeline_support import APP_SPEC, ROOT, START, Pipeline, running_pipeline
from tests.orchestration.test_queue_pipeline import API, NGINX, WEB, scenario, start

pytestmark = [pytest.mark.azurite, pytest.mark.slow]
SCHEMA = schemathesis.openapi.from_path(str(ROOT / "openapi.yaml"))
SUCCESSIVE = {"results": [{"result": "ok", "duration_s": 60, "vulnerabilities": {"CRITICAL": 1}},
                          {"result": "ok", "duration_s": 60, "vulnerabilities": {"CRITICAL": 2}}]}  # fmt: skip
DAY = timedelta(hours=25)


@contextmanager
def rescan_stack(azurite: Azurite, tmp_path: Path) -> Iterator[tuple[Pipeline, DevHostServer, list[bytes]]]:
    posts: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            posts.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

    spec = scenario((WEB, ["nginx:1.27"]), (API, ["nginx:1.27"]), scans={NGINX: SUCCESSIVE})
    with loopback_http_server(Handler) as hook:
        own = uuid.uuid4().hex[:10]  # the session's Azurite is shared: tables no other test uses
        webhook = {"NOTIFY_WEBHOOK_URL": f"{hook}/hook", "NOTIFY_WEBHOOK_SECRET": "s" * 32,
                   "ALERTS_TABLE": f"alerts{own}", "INVENTORY_TABLE": f"inventory{own}"}  # fmt: skip
        with running_pipeline(azurite, spec, tmp_path, None, True, **webhook) as pipeline:
            specs = specs_from_index(load_app(APP_SPEC))
            with DevHostServer(specs, pipeline.engine, task_hub="RescanPipeline", manage_engine=False) as server:
                sink = webhook_sink(server.base_url, UPLOAD_EVENTS_FUNCTION)
                pipeline.sim.state.blob_events.subscribe(sink, pipeline.settings.uploads_container)
                yield pipeline, server, posts


def rescan(pipeline: Pipeline, n: int) -> str:
    """What the rescan scheduler starts for an image still deployed (task A's part): an image scan, rescan=True."""
    instance_id = rescan_instance_id(NGINX, f"rescan-{n}")
    options = pipeline.settings.scan_options()
    pipeline.engine.start_new(
        ORCHESTRATOR_SCAN_DEPLOYMENT_V2, instance_id, scan_input_for_image("nginx:1.27", options, rescan=True)
    )
    return instance_id


def image_view(server: DevHostServer) -> dict[str, Any]:
    response = requests.get(f"{server.base_url}/api/images", params={"ref": "nginx:1.27"}, timeout=10)
    SCHEMA["/images"]["GET"].validate_response(response)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_a_rescan_that_finds_a_new_cve_alerts_once_with_the_diff_and_the_workloads(
    azurite: Azurite, tmp_path: Path
) -> None:
    with rescan_stack(azurite, tmp_path) as (pipeline, server, posts):
        rows = [Observed(resource_id=rid, images=(WorkloadImage(image=NGINX),)) for rid in (WEB, API)]
        record_sweep_rows(inventory_table(pipeline.settings), rows, "sweep-1", START, START)
        deployed = start(pipeline, WEB)
        pipeline.run(timeout=120)
        assert pipeline.output(deployed)["images"][0]["vulnerabilities"]["CRITICAL"] == 1
        assert len(posts) == 1  # a deployment scan alerts as today
        assert image_view(server)["previous"] is None

        pipeline.engine.run_until(START + DAY, timeout=60)
        first = rescan(pipeline, 1)
        pipeline.run(timeout=120)
        result = pipeline.output(first)["images"][0]
        assert result["status"] == "completed" and result["vulnerabilities"]["CRITICAL"] == 2  # scanned, not cached
        assert pipeline.sim.stats()["scans"]["images_started"] == 2
        assert len(posts) == 2
        alert = json.loads(posts[-1])
        assert alert["rescan"] is True
        [image] = alert["images"]
        assert [f["qid"] for f in image["diff"]["new"]] == ["100002"]
        assert [f["qid"] for f in image["diff"]["still_open"]] == ["100001"]
        assert len(image["workloads"]) == 2
        view = image_view(server)
        assert view["previous"]["instance_id"] == pipeline.output(deployed)["images"][0]["instance_id"]
        assert view["diff"]["counts"] == {"new": 1, "changed": 0, "resolved": 0, "still_open": 1}

        pipeline.engine.run_until(START + 2 * DAY, timeout=60)
        second = rescan(pipeline, 2)  # the last result repeats: nothing changed
        pipeline.run(timeout=120)
        assert pipeline.output(second)["images"][0]["vulnerabilities"]["CRITICAL"] == 2
        assert pipeline.sim.stats()["scans"]["images_started"] == 3
        assert len(posts) == 2  # no alert without a change
        assert image_view(server)["diff"]["counts"]["new"] == 0
        assert rescan_alert_count(pipeline.settings) == 1
