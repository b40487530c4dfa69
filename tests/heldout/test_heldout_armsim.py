"""Held-out check of the ARM simulator at ACI's DEFAULT limits under a wave (real azure-mgmt client over HTTPS),
and of the app's classification of what ARM answers (issue 9, items 6 and 7)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as aci

from activities import clients
from activities.clients import ArmError, ScannerQuotaError, classify, failing_fast
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.testing import SCANNER_RESOURCE_GROUP, SUBSCRIPTION_ID, point_process_at, sdk_kwargs
from devhost.clock import VirtualClock

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
SCENARIO = Scenario.model_validate({"scans": {"default": {"result": "ok", "duration_s": 60}}})
RG = SCANNER_RESOURCE_GROUP


@pytest.fixture
def wave(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[ArmSimulator, VirtualClock, ContainerInstanceManagementClient]]:
    clock = VirtualClock(START)
    with ArmSimulator(SCENARIO, clock=clock) as sim:
        point_process_at(sim, monkeypatch)
        clients.reset_cache()
        client = ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))
        yield sim, clock, client
    clients.reset_cache()


def _group(cpu: float, location: str = "westeurope") -> aci.ContainerGroup:
    return aci.ContainerGroup(
        location=location,
        os_type="Linux",
        restart_policy="Never",
        containers=[
            aci.Container(
                name="c",
                image="docker.io/library/busybox:latest",
                resources=aci.ResourceRequirements(requests=aci.ResourceRequests(cpu=cpu, memory_in_gb=1.0)),
            )
        ],
    )


def _put(client: ContainerInstanceManagementClient, name: str, cpu: float = 1.0, location: str = "westeurope") -> None:
    client.container_groups.begin_create_or_update(RG, name, _group(cpu, location), polling=False)


def _all(call: Callable[[int], object], count: int = 100) -> None:
    """`call(0..count-1)` from a few threads (a wave arrives at once); every call must succeed."""
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(call, range(count)))


def _put_nth(client: ContainerInstanceManagementClient, prefix: str, n: int) -> None:
    _put(client, f"{prefix}-{n}")


def _delete_all(client: ContainerInstanceManagementClient, prefix: str, count: int = 100) -> None:
    _all(lambda n: client.container_groups.begin_delete(RG, f"{prefix}-{n}", polling=False), count)


def _refused(client: ContainerInstanceManagementClient, name: str, quota: str, cpu: float = 1.0) -> None:
    with pytest.raises(HttpResponseError) as caught:
        _put(client, name, cpu)
    error = caught.value
    assert error.status_code == 400, error
    assert error.error is not None and error.error.code == "ContainerGroupQuotaReached"
    assert f"quota '{quota}'" in str(error.error.message)
    assert isinstance(classify(error), ScannerQuotaError)


def test_a_wave_at_default_limits(wave: tuple[ArmSimulator, VirtualClock, ContainerInstanceManagementClient]) -> None:
    sim, clock, client = wave
    # 100 groups, half of them in the region spelt with a space: one region, one quota.
    _all(lambda n: _put(client, f"w0-{n}", location="West Europe" if n % 2 else "westeurope"))
    _refused(client, "w0-100", "ContainerGroups")
    for cycle in (1, 2):  # every 5 minutes: delete all, create 100 again (300 creates and 200 deletes in 11 min)
        clock.advance(timedelta(minutes=5, seconds=1))
        _delete_all(client, f"w{cycle - 1}")
        _refused(client, f"w{cycle}-early", "ContainerGroups")  # deleting groups count until their LRO is done
        clock.advance(timedelta(seconds=30))
        _all(functools.partial(_put_nth, client, f"w{cycle}"))
        _refused(client, f"w{cycle}-extra", "ContainerGroups")
    clock.advance(timedelta(minutes=5, seconds=1))
    _all(lambda n: client.container_groups.begin_delete(RG, f"w2-{n}", polling=False))
    clock.advance(timedelta(seconds=30))
    _refused(client, "w3-0", "ContainerGroupCreatesPerHour")  # 300 creates in the last hour
    clock.advance(timedelta(minutes=45))
    _put(client, "w3-0")  # the first 100 left the hour
    assert sim.stats()["usage"]["peak_groups"] == 100


def test_cores_are_budgeted_and_the_create_rate_per_5_minutes(
    wave: tuple[ArmSimulator, VirtualClock, ContainerInstanceManagementClient],
) -> None:
    _, clock, client = wave
    _all(lambda n: _put(client, f"c-{n}", cpu=1.5), 66)
    _refused(client, "c-66", "StandardCores", cpu=1.5)  # 99 + 1.5 > 100
    _put(client, "c-66", cpu=1.0)  # exactly 100
    _all(lambda n: client.container_groups.begin_delete(RG, f"c-{n}", polling=False), 67)
    clock.advance(timedelta(seconds=30))
    _all(lambda n: _put(client, f"d-{n}"), 33)
    _refused(client, "d-33", "ContainerGroupCreatesPer5Minutes")  # 100 creates within 5 minutes


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (409, "ContainerGroupQuotaReached", "quota"),
        (400, "ContainerGroupQuotaReached", "quota"),
        (403, "AuthorizationFailed", "fatal"),
        (401, "InvalidAuthenticationToken", "fatal"),
        (400, "InvalidRequestContent", "fatal"),
        (400, "MissingApiVersionParameter", "fatal"),
        (429, "TooManyRequests", "retryable"),
        (500, "InternalServerError", "retryable"),
        (409, "ContainerGroupTransitioning", "retryable"),
    ],
)
def test_the_app_classifies_by_code_and_fails_fast(
    wave: tuple[ArmSimulator, VirtualClock, ContainerInstanceManagementClient], status: int, code: str, kind: str
) -> None:
    sim, _, client = wave
    sim.inject("PUT", r"containerGroups/f-1", status, code=code)
    with pytest.raises(HttpResponseError) as caught:
        _put(client, "f-1")
    error = classify(caught.value)
    assert (error.status, error.code) == (status, code)
    expected = {"quota": ScannerQuotaError, "fatal": ArmError, "retryable": ArmError}[kind]
    assert isinstance(error, expected) and error.retryable == (kind != "fatal")

    def activity(_: object) -> dict[str, object]:
        raise error

    if kind == "fatal":  # answered at once, not raised into five attempts
        assert failing_fast(activity)({})["non_retryable_error"]["status"] == status  # type: ignore[index]
    else:
        with pytest.raises(ArmError):
            failing_fast(activity)({})
