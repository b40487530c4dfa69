"""The HTTP API through devhost's server: manual scans, scan views and latest results, checked against openapi.yaml."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import hypothesis
import jsonschema_rs
import pytest
import requests
import schemathesis
from schemathesis.checks import ignored_auth, positive_data_acceptance

from activities.results_store import store_results
from activities.storage_clients import clients_for
from core.report import ImageResult
from core.results import StoreRequest
from core.settings import get_settings
from devhost.armsim import Scenario
from devhost.armsim.testing import resource_id
from devhost.azurite import Azurite
from devhost.server import DevHostServer
from tests.orchestration.pipeline_support import ROOT, START, needs_arm_activities, serving_pipeline

pytestmark = pytest.mark.azurite
OPENAPI = ROOT / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(str(OPENAPI))
CACHED_IMAGE = "docker.io/library/cached:1"
ALLOWED_REGISTRY = "127.0.0.1:5000"
APP_ID = resource_id("Microsoft.App/containerApps", "hello-aca")
SCENARIO = Scenario.model_validate({"resources": [{"id": APP_ID, "images": ["cached:1"]}]})


@pytest.fixture(scope="module")
def server(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHostServer]:
    tmp = tmp_path_factory.mktemp("api")
    allowed = {"ALLOWED_PRIVATE_REGISTRIES": ALLOWED_REGISTRY}
    with serving_pipeline(azurite, SCENARIO, tmp, task_hub="HttpApiTest", ready=seed_cached_result, **allowed) as (
        running,
        _,
    ):
        yield running


def seed_cached_result() -> None:
    """A completed scan of CACHED_IMAGE an hour before START: fresh in the cache, and the image's latest result."""
    settings = get_settings()
    result = ImageResult(
        image=CACHED_IMAGE, status="completed", scanned_at=START - timedelta(hours=1), instance_id="seed"
    )
    store_results(clients_for(settings), settings, StoreRequest(instance_id="seed", results=[result]))


def api(server: DevHostServer, path: str) -> str:
    return f"{server.base_url}/api{path}"


def conforms(path: str, method: str, response: requests.Response) -> None:
    SCHEMA[path][method].validate_response(response)


def start(server: DevHostServer, body: Any) -> requests.Response:
    response = requests.post(api(server, "/scans"), json=body, timeout=10)
    conforms("/scans", "POST", response)
    return response


def test_manual_scan_of_a_cached_image_and_its_view(server: DevHostServer) -> None:
    response = start(server, {"image": "cached:1"})
    assert response.status_code == 202
    instance_id = response.json()["id"]
    assert response.headers["Location"] == response.json()["statusQueryGetUri"]
    server.wait_idle(timeout=60)

    view = requests.get(api(server, f"/scans/{instance_id}"), timeout=10)
    conforms("/scans/{instanceId}", "GET", view)
    body = view.json()
    assert view.status_code == 200
    assert body["runtimeStatus"] == "Completed" and body["phase"] == "done" and body["status"] == "completed"
    assert body["images"] == [{"image": CACHED_IMAGE, "status": "cached"}]
    assert [(r["image"], r["status"]) for r in body["results"]] == [(CACHED_IMAGE, "cached")]


@needs_arm_activities
def test_manual_scan_of_a_resource(server: DevHostServer) -> None:
    response = start(server, {"resourceId": APP_ID, "force": False})
    assert response.status_code == 202
    server.wait_idle(timeout=60)
    body = requests.get(api(server, f"/scans/{response.json()['id']}"), timeout=10).json()
    assert body["target"] == APP_ID
    assert [r["status"] for r in body["results"]] == ["cached"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "exactly one of image and resourceId"),
        ({"image": "nginx", "resourceId": APP_ID}, "exactly one of image and resourceId"),
        ({"image": "nginx", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"image": "nginx", "force": "yes"}, "force: Input should be a valid boolean"),
        ({"image": "Not A Ref!"}, "image"),
        ({"resourceId": "/subscriptions/x/resourceGroups/y"}, "not the exact id of a target resource"),
        ([1, 2], "Input should be an object"),
    ],
)
def test_bad_scan_requests_are_400_with_a_reason(server: DevHostServer, body: Any, reason: str) -> None:
    response = start(server, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]


@pytest.mark.parametrize(
    "image",
    [
        "169.254.169.254/latest/meta-data:1",
        "2852039166:80/x:1",
        "0x7f.1/x:1",
        "127.1:5000/x:1",
        "[::1]:5000/x:1",
        "[::ffff:a00:1]/x:1",  # IPv4-mapped 10.0.0.1
        "localhost:5000/x:1",
        "registry.localhost/x:1",
        "10.0.0.1/x:1",
        "172.16.0.1:5000/x:1",
        "192.168.0.10/x:1",
        "[fd00::1]/x:1",
        "0.0.0.0:5000/x:1",
        "168.63.129.16/x:1",
        "127.0.0.1:5001/x:1",  # the allowed registry is 127.0.0.1:5000 only
    ],
)
def test_a_manual_scan_of_a_registry_inside_the_network_is_refused(server: DevHostServer, image: str) -> None:
    response = start(server, {"image": image})
    assert response.status_code == 400
    assert response.json()["error"].startswith("registry refused: ")


def test_a_manual_scan_of_an_allowed_private_registry_starts(server: DevHostServer) -> None:
    response = start(server, {"image": f"{ALLOWED_REGISTRY}/team/app:1"})
    assert response.status_code == 202, response.text


def test_a_manual_scan_of_a_name_resolving_inside_is_refused(
    server: DevHostServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "registry.inside.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    response = start(server, {"image": "registry.inside.test/app:1"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("registry refused: registry.inside.test:443 resolves to a private")


def test_invalid_json_is_400(server: DevHostServer) -> None:
    response = requests.post(
        api(server, "/scans"), data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10
    )
    conforms("/scans", "POST", response)
    assert response.status_code == 400 and "JSON" in response.json()["error"]


@pytest.mark.parametrize("instance_id", ["scan-0000", "x" * 300, "a b", "-leading-dash"])
def test_unknown_scan_is_404(server: DevHostServer, instance_id: str) -> None:
    response = requests.get(api(server, f"/scans/{instance_id}"), timeout=10)
    conforms("/scans/{instanceId}", "GET", response)
    assert response.status_code == 404


def test_latest_result_of_an_image(server: DevHostServer) -> None:
    found = requests.get(api(server, "/images"), params={"ref": "cached:1"}, timeout=10)
    conforms("/images", "GET", found)
    assert found.status_code == 200
    assert found.json()["image"] == CACHED_IMAGE and found.json()["result"]["status"] == "completed"


@pytest.mark.parametrize(("params", "status"), [({"ref": "never:1"}, 404), ({"ref": "Bad Ref"}, 400), ({}, 400)])
def test_image_lookup_errors(server: DevHostServer, params: dict[str, str], status: int) -> None:
    response = requests.get(api(server, "/images"), params=params, timeout=10)
    conforms("/images", "GET", response)
    assert response.status_code == status and response.json()["error"]


SPEC: dict[str, Any] = SCHEMA.raw_schema
SCAN_REQUEST_SCHEMA = jsonschema_rs.Draft4Validator(SPEC["components"]["schemas"]["ScanRequest"])
(REF_PARAMETER,) = SPEC["paths"]["/images"]["get"]["parameters"]
REF_SCHEMA = jsonschema_rs.Draft4Validator(REF_PARAMETER["schema"])
VALID_IMAGE = "nginx:1.27"


@pytest.mark.parametrize(
    "body",
    [
        {"image": VALID_IMAGE},
        {"image": VALID_IMAGE, "force": True},
        {"resourceId": APP_ID},
        {"image": VALID_IMAGE, "resourceId": None},
        {"resourceId": APP_ID, "image": None},
        {"image": None},
        {"image": VALID_IMAGE, "force": None},
        {"image": ""},
        {"resourceId": ""},
        {"image": VALID_IMAGE, "resourceId": APP_ID},
        {"image": VALID_IMAGE, "extra": 1},
        {"image": 7},
        {"image": VALID_IMAGE, "force": "true"},
        # Held-out review: numbers for booleans, lengths at the schema's bounds, a doubled key's types.
        {"image": VALID_IMAGE, "force": 1},
        {"image": VALID_IMAGE, "force": 0},
        {"image": VALID_IMAGE, "force": 1.0},
        {"image": "a" * 1025},
        {"resourceId": APP_ID + "x" * 1024},
        {"image": [VALID_IMAGE]},
        {"image": {"ref": VALID_IMAGE}},
        {"resourceId": APP_ID, "force": False},
        {},
        None,
        [],
    ],
)
def test_scan_request_schema_and_code_agree(server: DevHostServer, body: Any) -> None:
    """With a valid image and resource id, openapi.yaml's ScanRequest accepts a body exactly when the code does."""
    response = requests.post(api(server, "/scans"), json=body, timeout=10)
    conforms("/scans", "POST", response)
    assert response.status_code in (202, 400)
    assert SCAN_REQUEST_SCHEMA.is_valid(body) == (response.status_code == 202), response.text


@pytest.mark.parametrize("ref", [VALID_IMAGE, "", None])
def test_image_ref_parameter_schema_and_code_agree(server: DevHostServer, ref: str | None) -> None:
    """The `ref` query parameter: required, a non-empty string (the code refuses an empty one, the schema too)."""
    response = requests.get(api(server, "/images"), params={} if ref is None else {"ref": ref}, timeout=10)
    conforms("/images", "GET", response)
    schema_accepts = ref is not None if REF_PARAMETER["required"] else True
    schema_accepts = schema_accepts and (ref is None or REF_SCHEMA.is_valid(ref))
    assert schema_accepts == (response.status_code != 400), response.text


POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
GENERATED = [
    ("/scans", "POST", POSITIVE),
    ("/scans", "POST", NEGATIVE),
    ("/scans/{instanceId}", "GET", POSITIVE),
    ("/images", "GET", POSITIVE),
    ("/images", "GET", NEGATIVE),
    ("/inventory", "GET", POSITIVE),
    ("/inventory", "GET", NEGATIVE),
]


@pytest.mark.parametrize(("path", "method", "mode"), GENERATED)
def test_every_answer_conforms_to_openapi(
    server: DevHostServer, path: str, method: str, mode: schemathesis.GenerationMode
) -> None:
    """Schemathesis: generated requests (valid and invalid) never get a 5xx or an undocumented answer.

    `positive_data_acceptance` is left out: the schema cannot say which strings are valid image references or ARM
    ids, so a schema-valid body may rightly be a 400. `ignored_auth` too: function keys are the Functions host's
    check, and devhost does not check them (docs/devhost.md). No negative path parameters: a path that matches no
    route is answered by the host, not by these functions.
    """

    @hypothesis.given(case=SCHEMA[path][method].as_strategy(generation_mode=mode))
    @hypothesis.settings(max_examples=20, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(base_url=api(server, ""), excluded_checks=[positive_data_acceptance, ignored_auth])

    check()
