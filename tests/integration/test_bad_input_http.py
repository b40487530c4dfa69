"""Hostile requests to the HTTP API on devhost: always a 4xx with a short JSON reason, never a 5xx, nothing started."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from core.report import MAX_REASON_CHARS
from devhost.armsim import Scenario
from devhost.armsim.testing import SCANNER_RESOURCE_GROUP, SUBSCRIPTION_ID, resource_id
from devhost.azurite import Azurite
from devhost.server import DevHostServer
from starters.http_api import MAX_BODY_BYTES, scan_input_from_body
from tests.orchestration.pipeline_support import START, serving_pipeline

pytestmark = pytest.mark.azurite
ACI = "Microsoft.ContainerInstance/containerGroups"
TIMEOUT_S = 10
LONG = "a" * 5000
# devhost passes bodies up to 100 MB to the app, as the Functions host does; a body well past aiohttp's default 1 MB
# must still reach the app and get its 400. Bodies near 100 MB are checked on scan_input_from_body directly.
BIG_BODY_BYTES = 3 * 1024 * 1024

HOSTILE_IMAGES = [
    "",
    " ",
    "nginx\n--help",
    "nginx\r\nX-Injected: 1",
    "nginx:1.27\n-h",
    "--help",
    "-h",
    "nginx;rm -rf /",
    "$(id)",
    "`id`",
    "nginx|cat",
    "nginx && curl evil",
    "../../etc/passwd",
    "nginx/../../x",
    "http://evil.example/x:1",
    "file:///etc/passwd",
    "nginx\x00",
    "nginx\u202e",
    "ng\u0456nx",  # a Cyrillic i
    "NGINX",
    "nginx@sha256:zz",
    "nginx@sha256:" + "A" * 64,
    "nginx:" + "t" * 200,
    "x" * 300 + "/y",
    LONG,
    "registry.example.com:99999999999/x",
    "[::1/x",
]
HOSTILE_RESOURCE_IDS = [
    "",
    "/",
    LONG,
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/apps",
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/apps/providers/{ACI}/web/containers/web",
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/apps/providers/Microsoft.Compute/virtualMachines/vm1",
    f"/subscriptions/not-a-guid/resourceGroups/apps/providers/{ACI}/web",
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/a$b/providers/{ACI}/web",
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/../providers/{ACI}/web",
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/apps/providers/{ACI}/..",
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/apps/providers/{ACI}/web%2F..%2F",
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/apps/providers/{ACI}/-web-",
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/apps/providers/{ACI}/web\n",
    f"subscriptions/{SUBSCRIPTION_ID}/resourceGroups/apps/providers/{ACI}/web",
    f"https://management.azure.com/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/apps/providers/{ACI}/web",
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/apps/providers/Microsoft.App/containerApps/{'a' * 40}",
]
RAW_BODIES = [
    b"",
    b"{not json",
    b"\xff\xfe\x00{",
    b'{"image": "nginx:1.27"',
    b'{"image": "nginx:1.27"}{"image": "redis"}',
    b"null",
    b"true",
    b'"nginx:1.27"',
    b"[]",
    b"1e999",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    b'{"image": "nginx:1.27", "image": 5}',
    b'{"image": "\\ud800"}',
    b'{"image": NaN}',
    json.dumps({"image": "nginx:1.27", "pad": "x" * (MAX_BODY_BYTES + 1)}).encode(),
    b" " * BIG_BODY_BYTES + b'{"image": "nginx:1.27"}',
]
WRONG_TYPES: list[Any] = [
    {"image": 123},
    {"image": ["nginx"]},
    {"image": {"name": "nginx"}},
    {"image": None},
    {"image": True},
    {"resourceId": 5},
    {"resourceId": ["/subscriptions/x"]},
    {"image": "nginx:1.27", "force": "true"},
    {"image": "nginx:1.27", "force": 1},
    {"image": "nginx:1.27", "force": None},
    {"image": "nginx:1.27", "Image": "redis"},
    {"image": "nginx:1.27", "__proto__": {"force": True}},
    {"image": "nginx:1.27", "options": {"scan_timeout_seconds": 1}},
    {"image": "nginx:1.27", "target": {"kind": "image", "image": "x"}},
]


@pytest.fixture(scope="module")
def server(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHostServer]:
    with serving_pipeline(azurite, Scenario(), tmp_path_factory.mktemp("bad"), task_hub="BadInputTest") as (running, _):
        yield running


def _instances(server: DevHostServer) -> int:
    return len(server.engine.list_statuses())


def assert_clear_refusal(response: requests.Response, *statuses: int) -> str:
    """A 4xx (one of `statuses`) with a JSON `{"error": <short reason>}` body; returns the reason."""
    assert response.status_code in (statuses or (400,)), (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    reason = response.json()["error"]
    assert isinstance(reason, str) and reason
    assert len(reason) <= MAX_REASON_CHARS
    return reason


def post_scan(server: DevHostServer, data: bytes) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    return requests.post(f"{server.base_url}/api/scans", data=data, headers=headers, timeout=TIMEOUT_S)


@pytest.mark.parametrize("body", RAW_BODIES, ids=lambda b: repr(b[:24]) + f"..{len(b)}B")
def test_malformed_bodies_are_refused(server: DevHostServer, body: bytes) -> None:
    before = _instances(server)
    reason = assert_clear_refusal(post_scan(server, body))
    assert LONG not in reason
    assert _instances(server) == before


@pytest.mark.parametrize("body", WRONG_TYPES, ids=lambda b: json.dumps(b)[:40])
def test_wrong_types_and_unknown_fields_are_refused(server: DevHostServer, body: Any) -> None:
    before = _instances(server)
    assert_clear_refusal(post_scan(server, json.dumps(body).encode()))
    assert _instances(server) == before


@pytest.mark.parametrize("image", HOSTILE_IMAGES, ids=lambda s: repr(s[:30]))
def test_hostile_image_references_are_refused(server: DevHostServer, image: str) -> None:
    before = _instances(server)
    reason = assert_clear_refusal(post_scan(server, json.dumps({"image": image}).encode()))
    assert "\n" not in reason and LONG not in reason
    assert _instances(server) == before


@pytest.mark.parametrize("image", HOSTILE_IMAGES, ids=lambda s: repr(s[:30]))
def test_hostile_image_lookups_are_refused(server: DevHostServer, image: str) -> None:
    response = requests.get(f"{server.base_url}/api/images", params={"ref": image}, timeout=TIMEOUT_S)
    assert_clear_refusal(response, 400)


@pytest.mark.parametrize("rid", HOSTILE_RESOURCE_IDS, ids=lambda s: repr(s[-40:]))
def test_bad_resource_ids_are_refused(server: DevHostServer, rid: str) -> None:
    before = _instances(server)
    reason = assert_clear_refusal(post_scan(server, json.dumps({"resourceId": rid}).encode()))
    assert LONG not in reason
    assert _instances(server) == before


def test_a_resource_in_the_scanners_own_group_is_refused(server: DevHostServer) -> None:
    own = resource_id(ACI, "qscan-abc", SCANNER_RESOURCE_GROUP)
    reason = assert_clear_refusal(post_scan(server, json.dumps({"resourceId": own}).encode()))
    assert "scanner" in reason


@pytest.mark.parametrize("instance_id", ["..", "../admin", "%2e%2e", "a" * 5000, "scan-x\n", "@image_lease@x", "*"])
def test_hostile_instance_ids_are_404(server: DevHostServer, instance_id: str) -> None:
    response = requests.get(f"{server.base_url}/api/scans/{instance_id}", timeout=TIMEOUT_S)
    assert response.status_code in (400, 404)
    assert response.status_code < 500


def test_a_body_of_many_megabytes_is_refused_before_it_is_parsed() -> None:
    body = b" " * (64 * 1024 * 1024) + b'{"image": "nginx:1.27"}'
    with pytest.raises(ValueError, match="larger than"):
        scan_input_from_body(body, START, "nonce")
