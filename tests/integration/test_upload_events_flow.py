"""A simulated scanner's status upload becomes a BlobCreated event, reaches `upload_events`, and wakes its instance.

Real parts: Azurite (uploads through a container SAS), the ARM simulator driven by the real azure-mgmt client,
devhost with the Event Grid webhook, the real `upload_events` function and the Durable SDK's `raise_event`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.identity import DefaultAzureCredential
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from core.naming import instance_id_for, scanner_group_name, uploads_container_name
from core.settings import get_settings
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.blob_events import webhook_sink
from devhost.armsim.testing import SCANNER_RESOURCE_GROUP, SUBSCRIPTION_ID, sdk_kwargs, settings_env
from devhost.azurite import ACCOUNT, KEY, Azurite
from devhost.clock import VirtualClock
from devhost.engine import DurableEngine
from devhost.event_grid import EVENT_GRID_PATH
from devhost.functions import load_app
from devhost.server import DevHostServer
from devhost.triggers import specs_from_index
from starters.upload_events import UPLOAD_EVENTS_FUNCTION
from tests.integration import upload_events_app
from tests.integration.test_armsim_scanner import scanner_group

pytestmark = pytest.mark.azurite

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
UPLOADS = "evt-uploads"
SCENARIO = Scenario.model_validate(
    {
        "settings": {"ARMSIM_PROVISIONING_DELAY_S": "10"},
        "scans": {"default": {"result": "ok", "duration_s": 100}, "redis:7": {"result": "ok", "duration_s": 50}},
    }
)
TIMEOUT = 60
INSTANCE = instance_id_for("/subscriptions/x/resourceGroups/apps/providers/Microsoft.App/containerApps/a", "c-1")


@pytest.fixture
def hosted(
    sim: ArmSimulator, clock: VirtualClock, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DevHostServer, DurableEngine]]:
    for name, value in settings_env(sim, azurite.connection_string, UPLOADS_CONTAINER=UPLOADS).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    index = load_app(upload_events_app.__name__)
    engine = DurableEngine(index, clock=clock, store_path=":memory:")
    try:
        with DevHostServer(specs_from_index(index), engine, manage_engine=False) as server:
            sim.state.blob_events.subscribe(webhook_sink(server.base_url, UPLOAD_EVENTS_FUNCTION), UPLOADS)
            yield server, engine
    finally:
        engine.close()
        get_settings.cache_clear()


def _scanner(azurite: Azurite, sim: ArmSimulator, prefix: str, images: list[str]) -> str:
    """Create the group's uploads container and start a scanner group on it through the real ACI client."""
    container_name = uploads_container_name(UPLOADS, scanner_group_name(prefix))
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client(container_name)
    if not container.exists():  # Azurite lives for the session
        container.create_container()
    token = generate_container_sas(
        ACCOUNT, container_name, account_key=KEY, permission=ContainerSasPermissions(create=True, write=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    aci = ContainerInstanceManagementClient(DefaultAzureCredential(), SUBSCRIPTION_ID, **sdk_kwargs(sim))
    group = scanner_group(images, prefix, f"{container.url}?{token}", 600)
    aci.container_groups.begin_create_or_update(
        SCANNER_RESOURCE_GROUP, scanner_group_name(prefix), group, polling=False
    )
    return container_name


def _output(engine: DurableEngine, instance_id: str) -> Any:
    status = engine.get_status(instance_id)
    assert status is not None and status["runtimeStatus"] == "Completed", status
    return status["output"]


def test_a_status_upload_wakes_the_owning_orchestration_at_the_virtual_time_of_the_upload(
    hosted: tuple[DevHostServer, DurableEngine], sim: ArmSimulator, azurite: Azurite
) -> None:
    _, engine = hosted
    other = instance_id_for("/subscriptions/x/resourceGroups/apps/providers/Microsoft.App/containerApps/b", "c-2")
    engine.start_new("upload_waiter", INSTANCE)
    engine.start_new("upload_waiter", other)
    container = _scanner(azurite, sim, INSTANCE, ["nginx:1.27", "redis:7"])
    _scanner(azurite, sim, f"{other}-g1", ["redis:7"])

    engine.run_until_idle(timeout=TIMEOUT)

    # provisioning 10 s, then nginx 100 s: status.json of image 0 at +110 s (image 1 follows at +160 s).
    assert _output(engine, INSTANCE) == {
        "event": {"container": container, "prefix": INSTANCE, "index": 0},
        "at": (START + timedelta(seconds=110)).isoformat(),
    }
    other_output = _output(engine, other)
    assert (
        other_output["event"]["prefix"] == f"{other}-g1"
        and other_output["at"] == (START + timedelta(seconds=60)).isoformat()
    )
    # Image 1's event found INSTANCE completed: the function dropped it (410), nothing failed.
    assert sim.stats()["blob_events"] == {"published": 3, "delivered": 3, "failed": 0}
    names = {
        b.name
        for b in BlobServiceClient.from_connection_string(azurite.connection_string)
        .get_container_client(container)
        .list_blobs()
    }
    assert f"{INSTANCE}/1/status.json" in names


def test_without_events_the_backstop_timer_decides(
    hosted: tuple[DevHostServer, DurableEngine], sim: ArmSimulator, azurite: Azurite
) -> None:
    _, engine = hosted
    sim.state.blob_events.enabled = False  # ARMSIM_BLOB_EVENTS=false: every event lost
    lost = instance_id_for("/subscriptions/x/resourceGroups/apps/providers/Microsoft.App/containerApps/c", "c-3")
    engine.start_new("upload_waiter", lost)
    _scanner(azurite, sim, lost, ["nginx:1.27"])

    engine.run_until_idle(timeout=TIMEOUT)

    assert _output(engine, lost) == {"timeout": (START + upload_events_app.WAIT).isoformat()}
    assert sim.stats()["blob_events"] == {"published": 0, "delivered": 0, "failed": 0}


def test_forged_and_foreign_events_are_dropped_without_failing_the_delivery(
    hosted: tuple[DevHostServer, DurableEngine], sim: ArmSimulator
) -> None:
    server, engine = hosted
    engine.start_new("upload_waiter", INSTANCE)
    engine.run_until(START, timeout=TIMEOUT)
    container = uploads_container_name(UPLOADS, scanner_group_name(INSTANCE))
    good_subject = f"/blobServices/default/containers/{container}/blobs/{INSTANCE}/0/status.json"
    topic = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/"
    base = {"id": "e1", "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-10-02T08:00:00Z",
            "data": {"api": "PutBlob"}, "dataVersion": "", "metadataVersion": "1"}  # fmt: skip
    forged = [
        {**base, "topic": topic + "attacker01", "subject": good_subject},
        {**base, "topic": topic + ACCOUNT, "subject": good_subject.replace(UPLOADS, "scan-reports")},
        {**base, "topic": topic + ACCOUNT, "subject": good_subject.replace(INSTANCE, "scan-" + "0" * 32)},  # no such
    ]
    answer = requests.post(
        f"{server.base_url}{EVENT_GRID_PATH}", params={"functionName": UPLOAD_EVENTS_FUNCTION},
        headers={"aeg-event-type": "Notification"}, json=forged, timeout=TIMEOUT,
    )  # fmt: skip
    assert answer.status_code == 202
    engine.run_until(START, timeout=TIMEOUT)
    status = engine.get_status(INSTANCE)
    assert status is not None and status["runtimeStatus"] == "Running"
