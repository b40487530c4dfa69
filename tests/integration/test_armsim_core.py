"""The ARM simulator as the real SDK clients see it: HTTPS, managed identity, container group lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as aci

from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.testing import SCANNER_RESOURCE_GROUP, SUBSCRIPTION_ID, resource_id, sdk_kwargs
from devhost.clock import VirtualClock

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
APP_ID = resource_id("Microsoft.App/containerApps", "hello-aca")
JOB_ID = resource_id("Microsoft.App/jobs", "nightly")
SCENARIO = Scenario.model_validate(
    {
        "resources": [
            {"id": APP_ID, "images": ["nginx:1.27", "myacr.azurecr.io/api:2"], "init_images": ["busybox:1.36"]},
            {"id": JOB_ID, "images": ["python:3.12-slim"]},
        ],
        "scans": {"default": {"result": "ok", "duration_s": 60}},
    }
)


@pytest.fixture
def aci_client(sim: ArmSimulator) -> ContainerInstanceManagementClient:
    return ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))


def _group(images: str = "nginx:1.27") -> aci.ContainerGroup:
    env = [
        aci.EnvironmentVariable(name="SCAN_IMAGES", value=images),
        aci.EnvironmentVariable(name="QUALYS_ACCESS_TOKEN", secure_value="very-secret"),
    ]
    container = aci.Container(
        name="scanner",
        image="qualys/qscanner:4.8.0-2",
        resources=aci.ResourceRequirements(requests=aci.ResourceRequests(cpu=1.0, memory_in_gb=2.0)),
        environment_variables=env,
    )
    return aci.ContainerGroup(
        location="westeurope", os_type="Linux", restart_policy="Never", containers=[container], tags={"t": "1"}
    )


def _group_state(group: aci.ContainerGroup) -> str | None:
    assert group.instance_view is not None
    return group.instance_view.state


def _container_state(group: aci.ContainerGroup) -> dict[str, Any]:
    """The read-only fields of the first container's current state (typed None in the SDK, hence getattr)."""
    view = group.containers[0].instance_view
    assert view is not None and view.current_state is not None
    return {name: getattr(view.current_state, name) for name in ("state", "exit_code", "start_time", "finish_time")}


def test_https_with_the_simulator_ca_and_managed_identity_token(sim: ArmSimulator) -> None:
    assert sim.base_url.startswith("https://127.0.0.1:")
    assert sim.env()["IDENTITY_ENDPOINT"].startswith("http://127.0.0.1:")  # App Service serves it on plain http
    token = DefaultAzureCredential().get_token(f"{sim.base_url}/.default")
    assert token.token.startswith("sim.")
    assert token.expires_on > datetime.now(UTC).timestamp() + 3600
    assert requests.get(f"{sim.base_url}/_sim/stats", timeout=5, verify=sim.ca_path).status_code == 200


def test_arm_rejects_requests_without_a_token_it_issued(sim: ArmSimulator) -> None:
    url = f"{sim.base_url}/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/x/providers/Microsoft.App/jobs/y"
    answer = requests.get(url, headers={"Authorization": "Bearer forged"}, timeout=5, verify=sim.ca_path)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_token_endpoint_checks_the_identity_header(sim: ArmSimulator) -> None:
    params = {"api-version": "2019-08-01", "resource": sim.base_url}
    answer = requests.get(sim.env()["IDENTITY_ENDPOINT"], params=params, headers={"X-IDENTITY-HEADER": "no"}, timeout=5)
    assert answer.status_code == 401


def test_user_assigned_identity_client_id_reaches_the_token_endpoint(
    sim: ArmSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    DefaultAzureCredential().get_token(f"{sim.base_url}/.default")
    assert sim.state.token_client_ids[-1] == "11111111-2222-3333-4444-555555555555"


def test_container_apps_and_jobs_show_their_containers(sim: ArmSimulator) -> None:
    client = ContainerAppsAPIClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))
    app = client.container_apps.get("demo-apps", "hello-aca")
    assert app.properties is not None and app.properties.template is not None
    template = app.properties.template
    assert [c.image for c in template.containers or []] == ["nginx:1.27", "myacr.azurecr.io/api:2"]
    assert [c.image for c in template.init_containers or []] == ["busybox:1.36"]
    job = client.jobs.get("DEMO-APPS", "NIGHTLY")  # ARM ids arrive upper-cased from the Activity Log
    assert job.properties is not None and job.properties.template is not None
    assert [c.image for c in job.properties.template.containers or []] == ["python:3.12-slim"]
    with pytest.raises(ResourceNotFoundError) as missing:
        client.jobs.get("demo-apps", "gone")
    assert missing.value.error is not None and missing.value.error.code == "ResourceNotFound"


def test_create_is_asynchronous_and_the_poller_follows_it(
    sim: ArmSimulator, aci_client: ContainerInstanceManagementClient, clock: VirtualClock
) -> None:
    created = aci_client.container_groups.begin_create_or_update(
        SCANNER_RESOURCE_GROUP, "qscan-a", _group(), polling=False
    ).result()
    assert created.provisioning_state == "Pending"
    poller = aci_client.container_groups.begin_create_or_update(
        SCANNER_RESOURCE_GROUP, "qscan-b", _group(), polling_interval=0
    )
    clock.advance(timedelta(seconds=30))
    assert poller.result().provisioning_state == "Succeeded"
    assert sim.stats()["groups"] == {"created": 2, "deleted": 0, "remaining": 2}


def test_get_shows_instance_view_and_never_secure_values(
    aci_client: ContainerInstanceManagementClient, clock: VirtualClock
) -> None:
    aci_client.container_groups.begin_create_or_update(SCANNER_RESOURCE_GROUP, "qscan-c", _group(), polling=False)
    waiting = aci_client.container_groups.get(SCANNER_RESOURCE_GROUP, "qscan-c")
    assert _group_state(waiting) == "Pending"
    assert _container_state(waiting)["state"] == "Waiting"
    clock.advance(timedelta(seconds=25))
    running = aci_client.container_groups.get(SCANNER_RESOURCE_GROUP, "qscan-c")
    assert running.provisioning_state == "Succeeded"
    assert _group_state(running) == "Running"
    assert _container_state(running)["state"] == "Running"
    secure = [v for v in running.containers[0].environment_variables or [] if v.name == "QUALYS_ACCESS_TOKEN"]
    assert secure[0].value is None and secure[0].secure_value is None
    clock.advance(timedelta(seconds=60))
    done = aci_client.container_groups.get(SCANNER_RESOURCE_GROUP, "qscan-c")
    state = _container_state(done)
    assert (_group_state(done), state["state"], state["exit_code"]) == ("Succeeded", "Terminated", 0)
    assert state["finish_time"] == START + timedelta(seconds=80)


def test_delete_then_gone_and_absent_delete_is_204(
    sim: ArmSimulator, aci_client: ContainerInstanceManagementClient, clock: VirtualClock
) -> None:
    aci_client.container_groups.begin_create_or_update(SCANNER_RESOURCE_GROUP, "qscan-d", _group(), polling=False)
    status = aci_client.container_groups.begin_delete(
        SCANNER_RESOURCE_GROUP, "qscan-d", polling=False, cls=lambda response, *_: response.http_response.status_code
    ).result()
    assert status == 202  # a long-running operation: the group is deleting, gone later
    assert aci_client.container_groups.get(SCANNER_RESOURCE_GROUP, "qscan-d").provisioning_state == "Deleting"
    clock.advance(timedelta(seconds=10))
    assert aci_client.container_groups.begin_delete(SCANNER_RESOURCE_GROUP, "qscan-d", polling=False).result() is None
    with pytest.raises(ResourceNotFoundError):
        aci_client.container_groups.get(SCANNER_RESOURCE_GROUP, "qscan-d")
    stats = sim.stats()
    assert stats["groups"] == {"created": 1, "deleted": 1, "remaining": 0}
    assert stats["by_group"]["qscan-d"] == 5 and stats["by_method"] == {"PUT": 1, "DELETE": 2, "GET": 2}


def test_list_by_resource_group_shows_tags_and_creation_time(
    aci_client: ContainerInstanceManagementClient, clock: VirtualClock
) -> None:
    aci_client.container_groups.begin_create_or_update(SCANNER_RESOURCE_GROUP, "qscan-e", _group(), polling=False)
    aci_client.container_groups.begin_create_or_update("other-rg", "qscan-f", _group(), polling=False)
    listed = list(aci_client.container_groups.list_by_resource_group(SCANNER_RESOURCE_GROUP))
    assert [g.name for g in listed] == ["qscan-e"]
    assert listed[0].tags == {"t": "1"}
    assert listed[0].additional_properties["systemData"]["createdAt"] == "2026-10-02T08:00:00.000Z"


def test_bad_credentials_are_refused(sim: ArmSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    client = ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))
    with pytest.raises((ClientAuthenticationError, HttpResponseError)):
        client.container_groups.get(SCANNER_RESOURCE_GROUP, "qscan-x")
