"""Export API through devhost's server and Azurite: stored SARIF/JSON reports and SBOMs, checked by their validators."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis.checks import ignored_auth, positive_data_acceptance

from activities.results_store import store_results
from activities.storage_clients import clients_for
from core.exports import sarif_problems
from core.naming import image_key
from core.report import ImageResult
from core.results import StoreRequest
from core.settings import get_settings
from devhost.azurite import Azurite
from devhost.qscanner_output import Finding, ImageScan, Package, cyclonedx_document, spdx_document
from devhost.server import DevHostServer
from tests.orchestration.pipeline_support import ROOT, START, serving_pipeline
from tests.sbom_validation import cyclonedx_problems, spdx_problems

pytestmark = pytest.mark.azurite
SCHEMA = schemathesis.openapi.from_path(str(ROOT / "openapi.yaml"))
FILES = Path(__file__).parents[1] / "qscanner_files"
DIGEST = "sha256:" + "d" * 64
FULL = "docker.io/library/debian:12"  # every file stored
BROKEN = "docker.io/library/broken:1"  # a SARIF file that is JSON but not SARIF 2.1.0
BARE = "docker.io/library/bare:1"  # a result with no stored files
SCAN = ImageScan(
    FULL, findings=(Finding(6019286, 4, "openssl", ("CVE-2025-0395",), (Package("openssl", "3.0", "3.1"),)),)
)


def _seed() -> None:
    settings = get_settings()
    clients = clients_for(settings)
    reports = clients.container(settings.results_container)
    files: dict[str, dict[str, bytes]] = {
        FULL: {
            "report.sarif.json": (FILES / "debian.sarif.json").read_bytes(),
            "report.json": (FILES / "debian-Report.json").read_bytes(),
            "sbom.spdx.json": json.dumps(spdx_document(SCAN)).encode(),
            "sbom.cyclonedx.json": json.dumps(cyclonedx_document(SCAN)).encode(),
        },
        BROKEN: {"report.sarif.json": b'{"version": "2.1.0", "runs": [{"tool": {}}]}', "report.json": b"{not json"},
        BARE: {},
    }
    for image, kept in files.items():
        instance = f"scan-{image_key(image)[:8]}"
        result = ImageResult(
            image=image,
            digest=DIGEST if image == FULL else None,
            status="completed",
            scanned_at=START - timedelta(hours=1),
            instance_id=instance,
        )
        store_results(clients, settings, StoreRequest(instance_id=instance, results=[result]))
        for name, data in kept.items():
            reports.upload_blob(f"{image_key(image, result.digest)}/{instance}/{name}", data, overwrite=True)


@pytest.fixture(scope="module")
def server(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHostServer]:
    tmp = tmp_path_factory.mktemp("exports")
    with serving_pipeline(azurite, {"resources": []}, tmp, task_hub="ExportsTest", ready=_seed) as (running, _):
        yield running


def get(server: DevHostServer, key: str, what: str, fmt: str | None) -> requests.Response:
    params = {} if fmt is None else {"format": fmt}
    response = requests.get(f"{server.base_url}/api/images/{key}/{what}", params=params, timeout=30)
    SCHEMA[f"/images/{{key}}/{what}"]["GET"].validate_response(response)
    return response


def test_the_image_lookup_gives_the_key(server: DevHostServer) -> None:
    found = requests.get(f"{server.base_url}/api/images", params={"ref": "debian:12"}, timeout=10)
    assert found.json()["key"] == image_key(FULL)


@pytest.mark.parametrize("fmt", [None, "sarif", "SARIF"])
def test_sarif_export_is_the_stored_file_and_valid_sarif(server: DevHostServer, fmt: str | None) -> None:
    response = get(server, image_key(FULL), "report", fmt)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/sarif+json")
    assert response.content == (FILES / "debian.sarif.json").read_bytes()
    assert sarif_problems(response.json()) == []
    assert 'filename="report.sarif.json"' in response.headers["Content-Disposition"]


def test_the_digest_key_of_a_report_url_works_too(server: DevHostServer) -> None:
    assert get(server, image_key(FULL, DIGEST), "report", "json").content == (FILES / "debian-Report.json").read_bytes()


def test_sbom_exports_pass_their_formats_validators(server: DevHostServer) -> None:
    spdx = get(server, image_key(FULL), "sbom", "spdx")
    assert spdx.status_code == 200 and spdx.headers["Content-Type"].startswith("application/spdx+json")
    assert spdx_problems(spdx.content) == []
    cyclonedx = get(server, image_key(FULL), "sbom", "cyclonedx")
    assert cyclonedx.headers["Content-Type"].startswith("application/vnd.cyclonedx+json")
    assert cyclonedx_problems(cyclonedx.content) == []


def test_invalid_stored_files_are_never_served(server: DevHostServer) -> None:
    sarif = get(server, image_key(BROKEN), "report", "sarif")
    assert sarif.status_code == 502
    assert sarif.json()["error"].startswith("the stored SARIF is not valid SARIF 2.1.0: ")
    not_json = get(server, image_key(BROKEN), "report", "json")
    assert not_json.status_code == 502 and "not a JSON document" in not_json.json()["error"]


@pytest.mark.parametrize(
    "case",
    [
        (image_key(BARE), "report", "sarif", 404, "has no stored report.sarif.json"),
        (image_key(BARE), "sbom", None, 404, "has no stored sbom.spdx.json"),
        (image_key("docker.io/library/never:1"), "report", None, 404, "no stored result"),
        ("A" * 40, "report", None, 400, "40 lower-case hex"),
        ("abc", "sbom", None, 400, "40 lower-case hex"),
        (image_key(FULL), "report", "html", 400, "format must be one of sarif, json"),
        (image_key(FULL), "sbom", "sarif", 400, "format must be one of spdx, cyclonedx"),
    ],
)
def test_errors_are_json_with_a_reason(server: DevHostServer, case: tuple[str, str, str | None, int, str]) -> None:
    key, what, fmt, status, reason = case
    response = get(server, key, what, fmt)
    assert response.status_code == status
    assert reason in response.json()["error"]


@pytest.mark.parametrize("path", ["/images/{key}/report", "/images/{key}/sbom"])
def test_every_answer_conforms_to_openapi(server: DevHostServer, path: str) -> None:
    """Schemathesis: generated keys and formats never get a 5xx or an undocumented answer (as in test_http_api)."""

    @hypothesis.given(case=SCHEMA[path]["GET"].as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
    @hypothesis.settings(max_examples=20, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(
            base_url=f"{server.base_url}/api", excluded_checks=[positive_data_acceptance, ignored_auth]
        )

    check()
