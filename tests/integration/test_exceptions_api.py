"""`GET`/`PUT /api/exceptions` through devhost's server against Azurite, checked against openapi.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import schemathesis

from activities.results_store import store_results
from activities.storage_clients import clients_for
from core.report import ImageResult
from core.results import StoreRequest
from core.settings import get_settings
from devhost.armsim import Scenario
from devhost.armsim.scanner_run import EXIT_CODES, ImageOutcome, report_document
from devhost.armsim.scenario import ScanBehaviour
from devhost.azurite import Azurite
from devhost.server import DevHostServer
from tests.orchestration.pipeline_support import ROOT, serving_pipeline

pytestmark = pytest.mark.azurite
SCHEMA = schemathesis.openapi.from_path(str(ROOT / "openapi.yaml"))
SCOPE = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-apps"


@pytest.fixture(scope="module")
def server(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHostServer]:
    tmp = tmp_path_factory.mktemp("exceptions-api")
    scenario = Scenario.model_validate({"resources": []})
    with serving_pipeline(
        azurite,
        scenario,
        tmp,
        task_hub="ExceptionsApiTest",
        RESULTS_CONTAINER="reports-exapi",
        EXCEPTION_MAX_DAYS="3650",
    ) as (running, _):
        yield running


def call(server: DevHostServer, method: str, body: Any = None, **headers: str) -> requests.Response:
    response = requests.request(method, f"{server.base_url}/api/exceptions", json=body, headers=headers, timeout=10)
    SCHEMA["/exceptions"][method].validate_response(response)
    return response


def entry(ident: str, **fields: Any) -> dict[str, Any]:
    base = {"id": ident, "qid": 6019286, "image": "docker.io/library/nginx:*", "reason": "no fix yet"}
    return base | {"owner": "secops", "expires": "2030-12-31T00:00:00Z"} | fields


def test_put_and_get_with_versions_conflicts_and_audit(server: DevHostServer) -> None:
    assert call(server, "GET").json() == {"version": 0, "exceptions": [], "audit": []}
    first = call(server, "PUT", {"version": 0, "exceptions": [entry("ex-1", scope=SCOPE)]}, **{"X-QScan-Actor": "bob"})
    assert first.status_code == 200 and first.json()["version"] == 1
    stale = call(server, "PUT", {"version": 0, "exceptions": []})
    assert stale.status_code == 409 and "current version 1" in stale.json()["error"]
    by_principal = {"X-MS-CLIENT-PRINCIPAL-NAME": "alice@example.com"}
    second = call(
        server, "PUT", {"version": 1, "exceptions": [entry("ex-2", qid=None, cve="CVE-2025-0395")]}, **by_principal
    )
    assert second.json()["exceptions"][0]["cve"] == "CVE-2025-0395"
    third = call(server, "PUT", {"version": 2, "exceptions": []})
    view = call(server, "GET").json()
    assert (third.json()["version"], view["version"]) == (3, 3)
    assert [(a["actor"], a["version_after"]) for a in view["audit"]] == [
        ("admin-key", 3),
        ("alice@example.com", 2),
        ("bob", 1),
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"exceptions": []}, "version: required"),
        ({"version": 0, "exceptions": [entry("a"), entry("b", owner="")]}, "exceptions[1].owner"),
        ({"version": 0, "exceptions": [entry("a", expires="2999-01-01T00:00:00Z")]}, "EXCEPTION_MAX_DAYS"),
        ({"version": 0, "exceptions": [entry("a", image=None)]}, "exceptions[0]: give an image pattern"),
        ([], "JSON object"),
        ("not json", "not JSON"),
    ],
)
def test_bad_documents_are_400_with_the_reason(server: DevHostServer, body: Any, reason: str) -> None:
    if body == "not json":
        response = requests.put(f"{server.base_url}/api/exceptions", data=b"{", timeout=10)
    else:
        response = call(server, "PUT", body)
    assert response.status_code == 400 and reason in response.json()["error"], response.text


def test_an_images_latest_result_shows_what_exceptions_suppress(server: DevHostServer) -> None:
    settings = get_settings()
    canonical = "docker.io/library/httpd:2.4"
    now = datetime.now(UTC)
    behaviour = ScanBehaviour.model_validate({"result": "ok", "vulnerabilities": {"CRITICAL": 1, "LOW": 1}})
    outcome = ImageOutcome(0, canonical, "ok", EXIT_CODES["ok"], now, now, behaviour, None)
    reports = clients_for(settings).container(settings.results_container)
    blob = reports.upload_blob("httpd/report.sarif.json", json.dumps(report_document(outcome)).encode(), overwrite=True)
    result = ImageResult.model_validate(
        {
            "image": canonical,
            "status": "completed",
            "vulnerabilities": {"CRITICAL": 1, "LOW": 1},
            "worst_severity": "CRITICAL",
            "report": str(blob.url),
            "scanned_at": now,
            "instance_id": "scan-httpd",
        }
    )
    event = {"kind": "deployment", "event": {"resource_id": f"{SCOPE}/providers/Microsoft.App/containerApps/web"}}
    store_results(
        clients_for(settings), settings, StoreRequest(instance_id="scan-httpd", event=event, results=[result])
    )
    version = call(server, "GET").json()["version"]
    call(
        server,
        "PUT",
        {"version": version, "exceptions": [entry("ex-h", qid=100001, image="docker.io/library/httpd:*", scope=SCOPE)]},
    )
    response = requests.get(f"{server.base_url}/api/images", params={"ref": "httpd:2.4"}, timeout=10)
    SCHEMA["/images"]["GET"].validate_response(response)
    body = response.json()
    assert body["result"]["worst_severity"] == "CRITICAL"  # the stored result is intact
    assert body["exceptions"]["exception_ids"] == ["ex-h"]
    assert body["exceptions"]["suppressed"] == {"CRITICAL": 1, "HIGH": 0, "MEDIUM": 0, "LOW": 0}
    assert body["exceptions"]["effective"]["worst_severity"] == "LOW"
    untouched = requests.get(f"{server.base_url}/api/images", params={"ref": "never:1"}, timeout=10)
    assert untouched.status_code == 404
