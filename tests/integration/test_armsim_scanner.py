"""The simulator's fake scanner: results per scenario, per-image timeouts, hangs, log caps, uploads via a real SAS."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as aci
from azure.storage.blob import BlobServiceClient, ContainerClient, ContainerSasPermissions, generate_container_sas
from pydantic import ValidationError

from devhost.armsim import ArmSimulator, Scenario, load_scenario
from devhost.armsim.testing import SCANNER_RESOURCE_GROUP, SUBSCRIPTION_ID, point_process_at, sdk_kwargs
from devhost.azurite import ACCOUNT, KEY, Azurite
from devhost.clock import VirtualClock

pytestmark = pytest.mark.azurite

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
UPLOADS = "sim-uploads"
SCENARIO = Scenario.model_validate(
    {
        "settings": {"ARMSIM_PROVISIONING_DELAY_S": "10", "SCAN_TIMEOUT": "1200"},
        "scans": {
            "default": {"result": "ok", "duration_s": 100, "vulnerabilities": {"MEDIUM": 1}},
            "busybox:1.36": {"result": "error", "duration_s": 30, "exit_code": 9},
            "alpine:3.20": {"result": "hang"},
            "docker.io/library/node:22": {"result": "ok", "duration_s": 900},
        },
    }
)


@pytest.fixture
def client(sim: ArmSimulator) -> ContainerInstanceManagementClient:
    return ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))


@pytest.fixture(scope="module")
def uploads(azurite: Azurite) -> ContainerClient:
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(UPLOADS)
    if not container.exists():
        container.create_container()
    return container


@pytest.fixture(scope="module")
def sas_url(uploads: ContainerClient) -> str:
    token = generate_container_sas(
        ACCOUNT,
        UPLOADS,
        account_key=KEY,
        permission=ContainerSasPermissions(create=True, write=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{uploads.url}?{token}"


def scanner_group(images: list[str], prefix: str, sas: str | None, timeout_s: int | None) -> aci.ContainerGroup:
    env = [
        aci.EnvironmentVariable(name="SCAN_IMAGES", value="\n".join(images)),
        aci.EnvironmentVariable(name="RESULTS_PREFIX", value=prefix),
    ]
    if sas is not None:
        env.append(aci.EnvironmentVariable(name="RESULTS_SAS_URL", secure_value=sas))
    if timeout_s is not None:
        env.append(aci.EnvironmentVariable(name="SCAN_TIMEOUT_PER_IMAGE", value=str(timeout_s)))
    container = aci.Container(
        name="qscanner",
        image="mcr.microsoft.com/azurelinux/base/core:3.0",
        resources=aci.ResourceRequirements(requests=aci.ResourceRequests(cpu=1.0, memory_in_gb=2.0)),
        environment_variables=env,
    )
    return aci.ContainerGroup(location="westeurope", os_type="Linux", restart_policy="Never", containers=[container])


def run(
    client: ContainerInstanceManagementClient, name: str, images: list[str], sas: str | None, timeout_s: int | None
) -> None:
    group = scanner_group(images, name, sas, timeout_s)
    client.container_groups.begin_create_or_update(SCANNER_RESOURCE_GROUP, name, group, polling=False)


def observe(client: ContainerInstanceManagementClient, name: str) -> dict[str, Any]:
    group = client.container_groups.get(SCANNER_RESOURCE_GROUP, name)
    view = group.containers[0].instance_view
    assert view is not None and group.instance_view is not None
    current: Any = view.current_state
    return {"group": group.instance_view.state, "state": current.state, "exit_code": current.exit_code}


def blob_json(uploads: ContainerClient, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(uploads.download_blob(name).readall())
    return loaded


def blob_names(uploads: ContainerClient, prefix: str) -> set[str]:
    return {b.name for b in uploads.list_blobs(name_starts_with=prefix + "/")}


def test_error_image_has_no_report_and_fails_the_group(
    client: ContainerInstanceManagementClient, clock: VirtualClock, uploads: ContainerClient, sas_url: str
) -> None:
    run(client, "qscan-err", ["busybox:1.36", "nginx:1.27"], sas_url, 600)
    clock.advance_to(START + timedelta(seconds=10 + 30))
    assert observe(client, "qscan-err")["state"] == "Running"
    status = blob_json(uploads, "qscan-err/0/status.json")
    assert (status["result"], status["exit_code"], status["digest"], status["files"]) == ("error", 9, "", ["scan.log"])
    assert blob_names(uploads, "qscan-err/0") == {"qscan-err/0/status.json", "qscan-err/0/scan.log"}
    assert not blob_names(uploads, "qscan-err/1")  # not finished yet: nothing uploaded
    clock.advance(timedelta(seconds=100))
    assert observe(client, "qscan-err") == {"group": "Failed", "state": "Terminated", "exit_code": 1}
    assert blob_json(uploads, "qscan-err/1/status.json")["result"] == "ok"
    sarif = blob_json(uploads, "qscan-err/1/report.sarif.json")["runs"][0]
    assert sarif["tool"]["driver"]["rules"][0]["properties"]["severity"] == 3  # MEDIUM: Qualys level 3
    assert blob_json(uploads, "qscan-err/1/status.json")["files"] == [
        "report.sarif.json",
        "report.json",
        "scanresult.json",
        "sbom.spdx.json",
        "scan.log",
    ]


def test_hang_without_a_per_image_timeout_never_finishes(
    sim: ArmSimulator,
    client: ContainerInstanceManagementClient,
    clock: VirtualClock,
    uploads: ContainerClient,
    sas_url: str,
) -> None:
    run(client, "qscan-hang", ["nginx:1.27", "alpine:3.20", "redis:7"], sas_url, None)
    clock.advance(timedelta(hours=10))
    assert observe(client, "qscan-hang") == {"group": "Running", "state": "Running", "exit_code": None}
    assert blob_json(uploads, "qscan-hang/0/status.json")["result"] == "ok"
    assert not blob_names(uploads, "qscan-hang/1") and not blob_names(uploads, "qscan-hang/2")
    log = client.containers.list_logs(SCANNER_RESOURCE_GROUP, "qscan-hang", "qscanner").content or ""
    assert "scanning image 1" in log and "image 2" not in log


def test_hang_and_slow_scan_end_as_timeouts_under_a_per_image_limit(
    client: ContainerInstanceManagementClient, clock: VirtualClock, uploads: ContainerClient, sas_url: str
) -> None:
    run(client, "qscan-to", ["alpine:3.20", "node:22", "nginx:1.27"], sas_url, 300)
    clock.advance_to(START + timedelta(seconds=10 + 300 + 300 + 100))
    assert observe(client, "qscan-to") == {"group": "Failed", "state": "Terminated", "exit_code": 1}
    first, second = blob_json(uploads, "qscan-to/0/status.json"), blob_json(uploads, "qscan-to/1/status.json")
    assert (first["result"], first["exit_code"]) == ("timeout", 124)
    assert (second["result"], second["finished_at"]) == ("timeout", "2026-10-02T08:10:10Z")
    assert blob_json(uploads, "qscan-to/2/status.json")["result"] == "ok"


def test_stopped_container_log_is_capped_at_16_kb_and_tail_works(
    clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    chatty = SCENARIO.model_copy(update={"settings": {"ARMSIM_LOG_LINES_PER_IMAGE": "3000"}})
    with ArmSimulator(chatty, clock=clock) as sim:
        point_process_at(sim, monkeypatch)
        client = ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))
        run(client, "qscan-log", ["nginx:1.27", "redis:7"], None, None)
        clock.advance_to(START + timedelta(seconds=150))
        running = client.containers.list_logs(SCANNER_RESOURCE_GROUP, "qscan-log", "qscanner").content or ""
        assert len(running.encode()) > 16 * 1024  # up to 4 MB while it runs
        clock.advance(timedelta(hours=1))
        stopped = client.containers.list_logs(SCANNER_RESOURCE_GROUP, "qscan-log", "qscanner").content or ""
        assert len(stopped.encode()) <= 16 * 1024 and len(stopped.splitlines()) <= 1000
        assert stopped.rstrip().endswith("scanner exiting with code 0")
        tail = client.containers.list_logs(SCANNER_RESOURCE_GROUP, "qscan-log", "qscanner", tail=2).content or ""
        assert len(tail.splitlines()) == 2
        assert sim.stats()["upload_failures"] == 12  # no SAS: all 6 blobs of both images failed, nothing crashed


def test_unknown_resources_answer_arm_shaped_404(sim: ArmSimulator, client: ContainerInstanceManagementClient) -> None:
    with pytest.raises(HttpResponseError) as missing:
        client.containers.list_logs(SCANNER_RESOURCE_GROUP, "qscan-nope", "qscanner")
    assert missing.value.status_code == 404
    token = DefaultAzureCredential().get_token(f"{sim.base_url}/.default").token
    url = f"{sim.base_url}/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/x/providers/Microsoft.Web/sites/y"
    answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5, verify=sim.ca_path)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "ResourceNotFound"


def test_admin_surface_lets_another_process_read_and_drive_it(
    sim: ArmSimulator, client: ContainerInstanceManagementClient
) -> None:
    fault = {"method": "GET", "path_pattern": "qscan-admin$", "status": 429, "retry_after": 7, "times": None}
    assert requests.post(f"{sim.admin_url}/_sim/faults", json=fault, timeout=5).status_code == 201
    for _ in range(2):
        with pytest.raises(HttpResponseError) as throttled:
            client.container_groups.get(SCANNER_RESOURCE_GROUP, "qscan-admin")
        assert throttled.value.status_code == 429
        assert getattr(throttled.value.response, "headers", {}).get("Retry-After") == "7"
    listed = requests.get(f"{sim.admin_url}/_sim/faults", timeout=5).json()["faults"]
    assert listed[0]["served"] == 2
    assert requests.delete(f"{sim.admin_url}/_sim/faults", timeout=5).status_code == 204
    stats = requests.get(f"{sim.admin_url}/_sim/stats", timeout=5).json()
    assert stats["faults_served"] == 2 and stats["by_group"] == {"qscan-admin": 2}
    bad = requests.post(f"{sim.admin_url}/_sim/faults", json={"status": 500}, timeout=5)
    assert bad.status_code == 400


def test_scenario_file_round_trip_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"settings": {"ARMSIM_PROVISIONING_DELAY_S": "5", "SCAN_TIMEOUT": "900"}}))
    scenario = load_scenario(path)
    assert scenario.sim_settings().provisioning_delay_s == 5
    assert scenario.app_settings() == {"SCAN_TIMEOUT": "900"}
    with pytest.raises(ValidationError):
        Scenario.model_validate({"scans": {"default": {"result": "explode"}}})


def test_command_line_serves_until_terminated(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text("{}")
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost.armsim", "--scenario", str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        assert announced["env"]["ARM_ENDPOINT"].startswith("https://127.0.0.1:")
        assert requests.get(f"{announced['admin']}/_sim/stats", timeout=5).json()["total"] == 0
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
