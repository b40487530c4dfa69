"""The ARM simulator is as strict as ACI, seen through the real azure-mgmt clients over HTTPS.

ACI's regional limits (groups, cores, create rate, containers per group), its error codes and message shapes, the
long-running DELETE, the api-version rule and the late capacity failure (devhost/armsim/limits.py cites sources).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as aci

from activities.clients import ArmError, ScannerQuotaError, classify
from devhost.armsim import ArmSimulator, Scenario, limits
from devhost.armsim.testing import SCANNER_RESOURCE_GROUP, SUBSCRIPTION_ID, point_process_at, sdk_kwargs
from devhost.clock import VirtualClock

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
SCENARIO = Scenario.model_validate({"scans": {"default": {"result": "ok", "duration_s": 60}}})


def _group(cpu: float = 1.0, containers: int = 1) -> aci.ContainerGroup:
    return aci.ContainerGroup(
        location="westeurope",
        os_type="Linux",
        restart_policy="Never",
        containers=[
            aci.Container(
                name=f"c{index}",
                image="docker.io/library/busybox:latest",
                resources=aci.ResourceRequirements(requests=aci.ResourceRequests(cpu=cpu, memory_in_gb=1.0)),
            )
            for index in range(containers)
        ],
    )


@pytest.fixture
def aci_client(sim: ArmSimulator) -> ContainerInstanceManagementClient:
    return ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))


def _limited(clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, **knobs: str) -> ArmSimulator:
    scenario = SCENARIO.model_copy(update={"settings": {f"ARMSIM_{k.upper()}": v for k, v in knobs.items()}})
    sim = ArmSimulator(scenario, clock=clock).start()
    point_process_at(sim, monkeypatch)
    return sim


def _create(client: ContainerInstanceManagementClient, name: str, cpu: float = 1.0) -> aci.ContainerGroup:
    poller = client.container_groups.begin_create_or_update(SCANNER_RESOURCE_GROUP, name, _group(cpu), polling=False)
    return poller.result()


def _refusal(client: ContainerInstanceManagementClient, name: str, cpu: float = 1.0) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as caught:
        _create(client, name, cpu)
    return caught.value


def test_default_limits_are_acis() -> None:
    knobs = Scenario().sim_settings()
    assert (knobs.max_container_groups, knobs.max_cores, knobs.max_containers_per_group) == (100, 100, 60)
    assert (knobs.max_creates_per_5_minutes, knobs.max_creates_per_hour) == (100, 300)
    assert (knobs.max_deletes_per_5_minutes, knobs.max_deletes_per_hour) == (100, 300)
    with pytest.raises(ValueError, match="less than or equal"):
        Scenario.model_validate({"settings": {"ARMSIM_MAX_CORES": "101"}}).sim_settings()  # lower, never raise


def test_standard_cores_quota_is_refused_with_400_and_named_in_the_message(
    clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = _limited(clock, monkeypatch, max_cores="3")
    try:
        client = ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))
        _create(client, "qscan-a", cpu=2.0)
        error = _refusal(client, "qscan-b", cpu=2.0)
        assert error.status_code == 400 and error.error is not None
        assert error.error.code == "ContainerGroupQuotaReached"
        assert error.error.message == (
            "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardCores' "
            "exceeded in region 'westeurope'. Limit: '3', Usage: '2' Requested: '2'."
        )
        classified = classify(error)
        assert isinstance(classified, ScannerQuotaError)
        assert str(classified).startswith("aci-quota-reached status=400 code=ContainerGroupQuotaReached")
        assert _create(client, "qscan-c", cpu=1.0).name == "qscan-c"  # 3 cores exactly fit
        assert sim.stats()["refused"] == {"StandardCores": 1}
    finally:
        sim.stop()


def test_group_count_and_create_rates_are_limited(clock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = _limited(
        clock, monkeypatch, max_container_groups="2", max_creates_per_5_minutes="3", max_creates_per_hour="4"
    )
    try:
        client = ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))
        _create(client, "qscan-1")
        _create(client, "qscan-2")
        assert "quota 'ContainerGroups'" in str(_refusal(client, "qscan-3").message)
        client.container_groups.begin_delete(SCANNER_RESOURCE_GROUP, "qscan-1", polling=False)
        clock.advance(timedelta(seconds=10))  # the deletion completes
        _create(client, "qscan-3")
        client.container_groups.begin_delete(SCANNER_RESOURCE_GROUP, "qscan-2", polling=False)
        clock.advance(timedelta(seconds=10))
        refused = _refusal(client, "qscan-4")  # a slot is free, but 3 creates in 5 minutes
        assert refused.error is not None and refused.error.code == "ContainerGroupQuotaReached"
        assert "'ContainerGroupCreatesPer5Minutes'" in str(refused.error.message)
        clock.advance(timedelta(minutes=5))
        _create(client, "qscan-4")
        client.container_groups.begin_delete(SCANNER_RESOURCE_GROUP, "qscan-3", polling=False)
        clock.advance(timedelta(minutes=5))
        assert "'ContainerGroupCreatesPerHour'" in str(_refusal(client, "qscan-5").message)
        clock.advance(timedelta(hours=1))
        _create(client, "qscan-5")
    finally:
        sim.stop()


def test_delete_rates_are_limited_too(clock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = _limited(clock, monkeypatch, max_deletes_per_5_minutes="2")
    try:
        client = ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))
        for name in ("qscan-d1", "qscan-d2", "qscan-d3"):
            _create(client, name)
        client.container_groups.begin_delete(SCANNER_RESOURCE_GROUP, "qscan-d1", polling=False)
        client.container_groups.begin_delete(SCANNER_RESOURCE_GROUP, "qscan-d2", polling=False)
        with pytest.raises(HttpResponseError) as caught:
            client.container_groups.begin_delete(SCANNER_RESOURCE_GROUP, "qscan-d3", polling=False)
        assert caught.value.status_code == 400 and "'ContainerGroupDeletesPer5Minutes'" in str(caught.value.message)
        assert isinstance(classify(caught.value), ScannerQuotaError)  # retried by the activity policy
        clock.advance(timedelta(minutes=5))
        client.container_groups.begin_delete(SCANNER_RESOURCE_GROUP, "qscan-d3", polling=False)
    finally:
        sim.stop()


def test_more_than_60_containers_in_a_group_are_refused(aci_client: ContainerInstanceManagementClient) -> None:
    group = _group(cpu=0.1, containers=61)
    with pytest.raises(HttpResponseError) as caught:
        aci_client.container_groups.begin_create_or_update(SCANNER_RESOURCE_GROUP, "qscan-big", group, polling=False)
    assert caught.value.status_code == 400 and "at most 60" in str(caught.value.message)
    group = _group(cpu=0.1, containers=60)
    aci_client.container_groups.begin_create_or_update(SCANNER_RESOURCE_GROUP, "qscan-big", group, polling=False)


def test_delete_is_a_long_running_operation_the_sdk_poller_follows(
    sim: ArmSimulator, aci_client: ContainerInstanceManagementClient, clock: VirtualClock
) -> None:
    _create(aci_client, "qscan-del", cpu=2.0)
    poller = aci_client.container_groups.begin_delete(SCANNER_RESOURCE_GROUP, "qscan-del", polling_interval=0)
    assert not poller.done()
    assert sim.stats()["usage"]["cores"] == 2.0  # the cores stay in use until the deletion completes
    clock.advance(timedelta(seconds=10))
    poller.result(timeout=30)
    assert poller.status() == "Succeeded"
    assert sim.stats()["usage"] == {"groups": 0, "cores": 0.0, "peak_groups": 1, "peak_cores": 2.0}
    with pytest.raises(ResourceNotFoundError):
        aci_client.container_groups.get(SCANNER_RESOURCE_GROUP, "qscan-del")


def test_delete_answers_202_with_both_lro_headers_and_the_location_poll(sim: ArmSimulator, clock: VirtualClock) -> None:
    token = DefaultAzureCredential().get_token(f"{sim.base_url}/.default").token
    auth = {"Authorization": f"Bearer {token}"}
    url = (
        f"{sim.base_url}/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{SCANNER_RESOURCE_GROUP}/providers/"
        "Microsoft.ContainerInstance/containerGroups/qscan-raw?api-version=2023-05-01"
    )
    created = requests.put(url, json=_group().serialize(), headers=auth, timeout=5, verify=sim.ca_path)
    assert created.status_code == 201 and "Azure-AsyncOperation" in created.headers
    deleted = requests.delete(url, headers=auth, timeout=5, verify=sim.ca_path)
    assert deleted.status_code == 202 and deleted.content == b""
    location = deleted.headers["Location"]
    assert "/operationResults/" in location and "/operations/" in deleted.headers["Azure-AsyncOperation"]
    assert requests.get(location, headers=auth, timeout=5, verify=sim.ca_path).status_code == 202
    status = requests.get(deleted.headers["Azure-AsyncOperation"], headers=auth, timeout=5, verify=sim.ca_path)
    assert status.json()["status"] == "InProgress"
    assert requests.delete(url, headers=auth, timeout=5, verify=sim.ca_path).status_code == 202  # still deleting
    assert requests.put(url, json=_group().serialize(), headers=auth, timeout=5, verify=sim.ca_path).status_code == 409
    clock.advance(timedelta(seconds=10))
    assert requests.get(location, headers=auth, timeout=5, verify=sim.ca_path).status_code == 204
    assert requests.delete(url, headers=auth, timeout=5, verify=sim.ca_path).status_code == 204


def test_an_unknown_api_version_is_refused_as_arm_does(sim: ArmSimulator) -> None:
    client = ContainerInstanceManagementClient(
        DefaultAzureCredential(), SUBSCRIPTION_ID, api_version="2099-01-01", **sdk_kwargs(sim)
    )
    with pytest.raises(HttpResponseError) as caught:
        client.container_groups.get(SCANNER_RESOURCE_GROUP, "qscan-x")
    assert caught.value.status_code == 400 and caught.value.error is not None
    assert caught.value.error.code == "InvalidApiVersionParameter"
    assert str(caught.value.error.message).startswith("The api-version '2099-01-01' is invalid.")
    assert type(classify(caught.value)) is ArmError  # not retryable
    token = DefaultAzureCredential().get_token(f"{sim.base_url}/.default").token
    bare = f"{sim.base_url}/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/x/providers/Microsoft.App/jobs/y"
    answer = requests.get(bare, headers={"Authorization": f"Bearer {token}"}, timeout=5, verify=sim.ca_path)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "MissingApiVersionParameter"


def test_the_api_versions_the_apps_sdk_clients_send_are_served(sim: ArmSimulator) -> None:
    credential = DefaultAzureCredential()
    aci_client = ContainerInstanceManagementClient(credential, SUBSCRIPTION_ID, **sdk_kwargs(sim))
    aca_client = ContainerAppsAPIClient(credential, SUBSCRIPTION_ID, **sdk_kwargs(sim))
    assert aci_client._config.api_version in limits.ACI_API_VERSIONS
    assert aca_client._config.api_version in limits.APP_API_VERSIONS
    with pytest.raises(ResourceNotFoundError):  # served: a 404 for the missing app, not a 400
        aca_client.container_apps.get("demo-apps", "missing")


def test_a_late_capacity_failure_shows_in_get_and_fails_the_create_poller(
    clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = _limited(clock, monkeypatch, capacity_failures="1", provisioning_delay_s="20")
    try:
        client = ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))
        late = client.container_groups.begin_create_or_update(
            SCANNER_RESOURCE_GROUP, "qscan-late", _group(), polling_interval=0
        )
        poller = client.container_groups.begin_create_or_update(
            SCANNER_RESOURCE_GROUP, "qscan-fine", _group(), polling_interval=0
        )
        clock.advance(timedelta(seconds=20))
        assert poller.result(timeout=30).provisioning_state == "Succeeded"  # only the first group fails
        with pytest.raises(HttpResponseError) as caught:  # the PUT succeeded; its operation failed
            late.result(timeout=30)
        assert "not available in the location" in str(caught.value)
        failed = client.container_groups.get(SCANNER_RESOURCE_GROUP, "qscan-late")
        assert failed.provisioning_state == "Failed"
        view: Any = failed.instance_view  # read-only SDK fields are typed None: read them dynamically
        events: list[Any] = list(view.events or [])
        assert events and events[0].name == "ServiceUnavailable"
        assert "not available in the location 'westeurope'" in str(events[0].message)
    finally:
        sim.stop()


def test_a_wave_of_concurrent_creates_never_exceeds_the_limits(
    clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """120 concurrent PUTs of 2-core groups: 50 fit ACI's 100 cores, the other 70 get ContainerGroupQuotaReached."""
    sim = _limited(clock, monkeypatch)
    try:
        client = ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))
        codes: list[str] = []
        lock = threading.Lock()

        def put(index: int) -> None:
            try:
                _create(client, f"qscan-w{index}", cpu=2.0)
                outcome = "created"
            except HttpResponseError as error:
                outcome = f"{error.status_code} {error.error.code if error.error else None}"
            with lock:
                codes.append(outcome)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(put, range(120)))
        assert codes.count("created") == 50
        assert codes.count("400 ContainerGroupQuotaReached") == 70
        stats = sim.stats()
        assert stats["usage"]["peak_cores"] == 100.0 and stats["refused"] == {"StandardCores": 70}
    finally:
        sim.stop()
