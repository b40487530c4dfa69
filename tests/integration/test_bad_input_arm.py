"""Hostile or careless ARM answers: secrets ARM echoes back are scrubbed, and the scanner's own group is never read."""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from activities import clients
from activities.aci_scanner import CreateScannerGroupRequest, create_scanner_group, get_scanner_logs
from activities.arm_resources import NOT_FOUND_NOTE, SCANNER_GROUP_NOTE, resolve_images
from activities.clients import ArmError
from core.events import DeploymentEvent, parse_resource_id
from core.naming import scanner_group_name
from core.settings import Settings
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.state import SimResponse, SimState
from devhost.armsim.testing import SCANNER_RESOURCE_GROUP, point_process_at, resource_id, settings_for
from devhost.azurite import Azurite
from devhost.clock import VirtualClock

pytestmark = pytest.mark.azurite
START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
INSTANCE = "scan-00112233445566778899aabbccddeeff"
TOKEN = "qualys-token-ECHOED-BY-ARM-1234"
CLIENT_ID = "qualys-client-id-ECHOED-5678"
CLIENT_SECRET = "qualys-client-secret-ECHOED-9abc"
UNREDACTED_SIG = re.compile(r"sig=(?!REDACTED)", re.IGNORECASE)
ACI = "Microsoft.ContainerInstance/containerGroups"


class EchoingArm(SimState):
    """An ARM that quotes the secure values in a PUT's validation error and logs the scanner's secrets."""

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> SimResponse:
        response = super().handle(method, path, query, headers, body)
        if response.status == 401:
            return response
        if method == "PUT" and "/containerGroups/qscan-" in path:
            container = json.loads(body)["properties"]["containers"][0]["properties"]
            secure = [v for v in container["environmentVariables"] if "secureValue" in v]
            message = f"The environment variables are invalid: {json.dumps(secure)}"
            return SimResponse(400, {"error": {"code": "InvalidRequestContent", "message": message}})
        if path.endswith("/logs"):
            content = (
                f"token={TOKEN} id={CLIENT_ID} secret={CLIENT_SECRET}\nPUT https://a/b?sv=1&sig=c2lnbmF0dXJl&sp=cw\n"
            )
            return SimResponse(200, {"content": content})
        return response


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmSimulator]:
    clock = VirtualClock(START)
    simulator = ArmSimulator(Scenario(), clock=clock)
    simulator.state = EchoingArm(simulator.scenario, clock.now, simulator.identity_header)
    with simulator as running:
        point_process_at(running, monkeypatch)
        clients.reset_cache()
        yield running
    clients.reset_cache()


@pytest.fixture
def settings(sim: ArmSimulator, azurite: Azurite) -> Settings:
    return settings_for(
        sim,
        azurite.connection_string,
        QUALYS_ACCESS_TOKEN=TOKEN,
        QUALYS_CLIENT_ID=CLIENT_ID,
        QUALYS_CLIENT_SECRET=CLIENT_SECRET,
    )


def _secrets_in(text: str) -> list[str]:
    found = [name for name, value in (("token", TOKEN), ("id", CLIENT_ID), ("secret", CLIENT_SECRET)) if value in text]
    return found + (["sas"] if UNREDACTED_SIG.search(text) else [])


def test_a_create_error_that_quotes_the_request_is_scrubbed(settings: Settings) -> None:
    request = CreateScannerGroupRequest(
        instance_id=INSTANCE,
        group_name=scanner_group_name(INSTANCE),
        images=["docker.io/library/nginx:1.27"],
        results_prefix=INSTANCE,
        created_at=START,
    )
    with pytest.raises(ArmError) as raised:
        create_scanner_group(settings, request)
    error = raised.value
    details = "".join(traceback.format_exception(error))  # what an activity failure records
    assert (error.status, error.code, error.retryable) == (400, "InvalidRequestContent", False)
    assert "REDACTED" in str(error)  # ARM did quote the secure values ...
    assert _secrets_in(details) == []  # ... and neither the message nor a chained cause keeps them
    assert error.__cause__ is None


def test_scanner_logs_that_print_secrets_are_scrubbed(settings: Settings) -> None:
    logs = get_scanner_logs(settings, scanner_group_name(INSTANCE))
    assert logs.log is not None and "REDACTED" in logs.log
    assert _secrets_in(json.dumps(logs.model_dump(mode="json"))) == []


def _event(rid: str) -> DeploymentEvent:
    return DeploymentEvent.from_parts(parse_resource_id(rid), "c0ffee00-0000-4000-8000-000000000001", START)


@pytest.mark.parametrize("group", [SCANNER_RESOURCE_GROUP, SCANNER_RESOURCE_GROUP.upper()])
def test_a_resource_in_the_scanners_own_group_is_never_read(sim: ArmSimulator, settings: Settings, group: str) -> None:
    """However the scan was started (Event Hub, HTTP API), the scanner never scans its own groups."""
    resolved = resolve_images(_event(resource_id(ACI, "qscan-abc", group)), settings)
    assert (resolved.found, resolved.note, resolved.images) == (False, SCANNER_GROUP_NOTE, [])
    assert sim.stats()["total"] == 0  # not even a GET


def test_a_same_named_group_in_another_subscription_is_not_the_scanners(settings: Settings) -> None:
    other = resource_id(ACI, "web", SCANNER_RESOURCE_GROUP).replace(
        str(settings.azure_subscription_id), "11111111-2222-3333-4444-555555555555"
    )
    resolved = resolve_images(_event(other), settings)
    assert resolved.note == NOT_FOUND_NOTE  # looked up (and absent in the simulator), not refused
