"""The inventory on devhost: the sweep orchestration through POST /api/sweep against the simulator's Resource Graph,
events through the Event Hub starter (writes, deletes, redelivery, a stale write), the inventory API and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
import requests

from core.sweep import SWEEP_INSTANCE_ID
from devhost.armsim import Scenario
from devhost.armsim.testing import SUBSCRIPTION_ID, resource_id
from devhost.azurite import Azurite
from devhost.server import DevHostServer
from starters.eventhub_starter import EVENTHUB_STARTER_FUNCTION
from tests.orchestration.pipeline_support import START, Pipeline, serving_pipeline

pytestmark = [pytest.mark.azurite, pytest.mark.slow]
ACI, APP, JOB = "Microsoft.ContainerInstance/containerGroups", "Microsoft.App/containerApps", "Microsoft.App/jobs"
OLD = resource_id(ACI, "old-batch")
WEB = resource_id(APP, "web")
ETL = resource_id(JOB, "etl")
GONE = resource_id(ACI, "short-lived")
SCENARIO = Scenario.model_validate(
    {
        "resources": [
            {"id": OLD, "images": ["nginx:1.27"], "init_images": ["busybox:1.36"]},
            {"id": WEB, "images": ["nginx:1.27"], "location": "northeurope"},
            {"id": ETL, "images": ["python:3.12"]},
            {"id": GONE, "images": ["redis:7"], "deleted_at_s": 3600},
        ]
        + [{"id": resource_id(APP, f"app{i:04d}"), "images": [f"ghcr.io/acme/a{i % 3}:1"]} for i in range(1100)],
        "scans": {"default": {"result": "ok", "duration_s": 60, "vulnerabilities": {"HIGH": 1}}},
    }
)


@pytest.fixture(scope="module")
def stack(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevHostServer, Pipeline]]:
    tmp = tmp_path_factory.mktemp("sweep")
    with serving_pipeline(azurite, SCENARIO, tmp, task_hub="InventorySweep", INVENTORY_TABLE="invsweep") as running:
        yield running


def _sweep(server: DevHostServer) -> dict[str, Any]:
    response = requests.post(f"{server.base_url}/api/sweep", timeout=30)
    assert response.status_code == 202, response.text
    server.wait_idle(timeout=300)
    status = requests.get(response.json()["statusQueryGetUri"], timeout=30).json()
    assert status["runtimeStatus"] == "Completed", status
    output: dict[str, Any] = status["output"]
    return output


def _inventory(server: DevHostServer, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        query = {**params, **({"continuationToken": token} if token else {})}
        page = requests.get(f"{server.base_url}/api/inventory", params=query, timeout=30)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["count"] == len(body["items"]) <= int(params.get("pageSize", "50"))
        items += body["items"]
        token = body["continuationToken"]
        if token is None:
            return items


def _deliver(server: DevHostServer, body: object) -> None:
    response = requests.post(
        f"{server.base_url}/admin/functions/{EVENTHUB_STARTER_FUNCTION}",
        json={"input": json.dumps([json.dumps(body)])},
        timeout=10,
    )
    assert response.status_code == 202
    invocation = response.headers["x-devhost-invocation-id"]
    records = server.wait_idle(timeout=300)
    assert next(r for r in records if r.id == invocation).status == "succeeded"


def _grid(kind: str, rid: str, minutes: int, correlation: str) -> dict[str, Any]:
    operation = rid.split("/providers/")[1].rsplit("/", 1)[0] + ("/delete" if kind == "Delete" else "/write")
    return {
        "id": f"e0000000-0000-4000-8000-{correlation[-12:]}",
        "eventType": f"Microsoft.Resources.Resource{kind}Success",
        "subject": rid,
        "eventTime": (START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "data": {"operationName": operation, "status": "Succeeded", "resourceUri": rid, "correlationId": correlation},
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{SUBSCRIPTION_ID}",
    }


def test_backfill_sweep_pages_adds_everything_and_scans_each_image_once(stack: tuple[DevHostServer, Pipeline]) -> None:
    server, pipeline = stack
    output = _sweep(server)
    assert output["status"] == "completed"
    assert (output["seen"], output["added"], output["removed"], output["pages"]) == (1104, 1104, 0, 2)
    assert output["scans_started"] == 7  # nginx, busybox, python, redis, a0..a2: each once, shared or not
    everything = _inventory(server, pageSize="100")
    assert len(everything) == 1104
    web = next(w for w in everything if w["resourceId"] == WEB)
    assert web["location"] == "northeurope" and web["kind"] == "aca"
    assert web["images"][0]["latestResult"]["status"] == "completed"
    assert web["worstSeverity"] == "HIGH"
    assert len(_inventory(server, kind="aca-job")) == 1
    assert len(_inventory(server, minSeverity="CRITICAL")) == 0
    image = requests.get(f"{server.base_url}/api/images", params={"ref": "nginx:1.27"}, timeout=30).json()
    assert {w["resourceId"] for w in image["workloads"]} == {OLD, WEB}
    one = requests.get(f"{server.base_url}/api/inventory/{quote(OLD, safe='')}", timeout=30)
    assert one.status_code == 200 and [i["init"] for i in one.json()["images"]] == [False, True]
    assert requests.get(f"{server.base_url}/api/inventory{OLD}", timeout=30).status_code == 200
    history = pipeline.history(SWEEP_INSTANCE_ID)
    assert len(history) < 200  # bounded: continue_as_new per pages / scans


def test_deletes_tombstones_stale_writes_and_a_sweep_removing_what_vanished(
    stack: tuple[DevHostServer, Pipeline],
) -> None:
    server, pipeline = stack
    _deliver(server, _grid("Delete", ETL, 30, "c0ffee00-0000-4000-8000-0000000000d1"))
    _deliver(server, _grid("Delete", ETL, 30, "c0ffee00-0000-4000-8000-0000000000d1"))  # redelivered
    _deliver(server, _grid("Write", ETL, 20, "c0ffee00-0000-4000-8000-0000000000a1"))  # older than the delete
    assert requests.get(f"{server.base_url}/api/inventory/{quote(ETL, safe='')}", timeout=30).status_code == 404
    pipeline.clock.advance(timedelta(hours=2))  # short-lived is gone from the simulator
    output = _sweep(server)
    assert output["removed"] == 1  # short-lived; etl is a tombstone, never resurrected by the sweep
    ids = {w["resourceId"] for w in _inventory(server, pageSize="100")}
    assert GONE not in ids and ETL not in ids and OLD in ids


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("inventory", {"kind": "vm"}),
        ("inventory", {"minSeverity": "SEVERE"}),
        ("inventory", {"pageSize": "1000"}),
        ("inventory", {"pageSize": "-1"}),
        ("inventory", {"subscription": "not-a-guid"}),
        ("inventory", {"continuationToken": "garbage!"}),
        ("inventory", {"resourceGroup": "bad/name"}),
        ("inventory", {"colour": "blue"}),
        ("inventory/subscriptions/x/resourceGroups/y", {}),
    ],
)
def test_bad_input_is_400_with_a_json_reason(
    stack: tuple[DevHostServer, Pipeline], path: str, params: dict[str, str]
) -> None:
    server, _ = stack
    response = requests.get(f"{server.base_url}/api/{path}", params=params, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]


def test_sweep_refuses_a_body(stack: tuple[DevHostServer, Pipeline]) -> None:
    server, _ = stack
    response = requests.post(f"{server.base_url}/api/sweep", data=b"{}", timeout=30)
    assert response.status_code == 400
