"""The ARM simulator's scanner uploads what scan.sh uploads, in QScanner's shapes, and a scenario's files verbatim."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from devhost import qscanner_output as q
from devhost.armsim import scanner_run
from devhost.armsim.scenario import Scenario, load_scenario
from devhost.demo_scenario import ScenarioError, load_demo_scenario

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
NGINX = "docker.io/library/nginx:1.27"
PINNED = "ghcr.io/acme/app@sha256:" + "cd" * 32
COUNTS = {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 0, "LOW": 3}


def blobs(
    scenario: Scenario, image: str = NGINX, env: dict[str, str] | None = None, timeout: float | None = 600
) -> dict[str, bytes]:
    plan = scanner_run.plan_scan(scenario, [image], timeout, START, env=env)
    return {name: body for name, body, _ in scanner_run.image_blobs(plan.images[0], "scan-x", 2)}


def doc(found: dict[str, bytes], name: str) -> Any:
    return json.loads(found[f"scan-x/0/{name}"])


def scenario_with(behaviour: dict[str, Any]) -> Scenario:
    return Scenario.model_validate({"scans": {"default": behaviour}})


def test_a_reported_scan_uploads_the_contract_files_in_scan_sh_order() -> None:
    found = blobs(scenario_with({"vulnerabilities": COUNTS}))

    assert list(found) == [
        f"scan-x/0/{name}"
        for name in ("report.sarif.json", "report.json", "scanresult.json", "sbom.spdx.json", "scan.log", "status.json")
    ]
    status = doc(found, "status.json")
    assert (status["result"], status["exit_code"], status["digest"], status["mode"]) == ("ok", 0, "", "get-report")
    assert status["files"] == ["report.sarif.json", "report.json", "scanresult.json", "sbom.spdx.json", "scan.log"]


def test_the_sarif_has_the_integrations_shape_and_agrees_with_the_log() -> None:
    found = blobs(scenario_with({"vulnerabilities": COUNTS}))

    run = doc(found, "report.sarif.json")["runs"][0]
    rules, results = run["tool"]["driver"]["rules"], run["results"]
    assert [r["properties"]["severity"] for r in rules] == [5, 4, 4, 2, 2, 2]  # CRITICAL 5, HIGH 4, LOW 2
    assert all(r["id"] == str(res["properties"]["QID"]) == res["ruleId"] for r, res in zip(rules, results, strict=True))
    assert all(r["properties"]["cve-ids"] and "qds" in r["properties"] for r in rules)
    assert len(results[0]["properties"]["vulnerableSoftware"]) == 2  # one QID, two package rows
    assert {"name", "installedVersion", "fixedVersion", "layerSHA"} <= set(
        results[1]["properties"]["vulnerableSoftware"][0]
    )
    log = found["scan-x/0/scan.log"].decode().splitlines()
    assert "Image source: remote" in log and "Vulnerability report received" in log
    assert "6 vulnerabilities found!" in log  # per QID, not per package row
    assert [line for line in log if line.startswith("Severity ")] == [
        "Severity 5: 1",
        "Severity 4: 2",
        "Severity 3: 0",
        "Severity 2: 3",
        "Severity 1: 0",
    ]
    assert run["properties"]["imageID"] != run["properties"]["imageDigest"]


def test_the_inventory_names_the_repo_digest_never_the_file_names_id() -> None:
    found = blobs(scenario_with({}), image=PINNED)

    meta = doc(found, "scanresult.json")["Metadata"]["TargetMetadata"]["ImageMetadata"]
    assert meta["RepoDigests"] == [f"ghcr.io/acme/app@sha256:{'cd' * 32}"] and meta["RepoTags"] == []
    assert meta["ImageID"] != "sha256:" + "cd" * 32
    chosen = "sha256:" + "ef" * 32
    found = blobs(scenario_with({"digest": chosen}))
    assert doc(found, "scanresult.json")["Metadata"]["TargetMetadata"]["ImageMetadata"]["RepoDigests"] == [
        f"docker.io/library/nginx@{chosen}"
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"QSCANNER_MODE": "inventory-only"}, ["scanresult.json", "sbom.spdx.json"]),
        ({"QSCANNER_MODE": "scan-only", "QSCANNER_SBOM_FORMAT": "none"}, ["scanresult.json"]),
        ({"QSCANNER_REPORT_FORMATS": "sarif,gitlab"}, ["report.sarif.json", "scanresult.json", "sbom.spdx.json"]),
        (
            {"QSCANNER_SBOM_FORMAT": "cyclonedx"},
            ["report.sarif.json", "report.json", "scanresult.json", "sbom.cyclonedx.json"],
        ),
    ],
)
def test_the_groups_mode_and_formats_are_honoured(env: dict[str, str], expected: list[str]) -> None:
    found = blobs(scenario_with({"vulnerabilities": COUNTS}), env=env)

    status = doc(found, "status.json")
    assert status["files"] == [*expected, "scan.log"]
    assert status["mode"] == env.get("QSCANNER_MODE", "get-report")
    reporting = status["mode"] == "get-report"
    assert ("Vulnerability report received" in found["scan-x/0/scan.log"].decode()) == reporting


def test_an_error_or_a_timeout_uploads_no_report() -> None:
    error = blobs(scenario_with({"result": "error", "exit_code": 6, "vulnerabilities": COUNTS}))
    assert doc(error, "status.json")["files"] == ["scan.log"]
    late = blobs(scenario_with({"duration_s": 900}), timeout=600)
    assert (doc(late, "status.json")["result"], doc(late, "status.json")["files"]) == ("timeout", ["scan.log"])


def test_the_fake_qscanner_and_the_simulator_share_one_shape() -> None:
    outcome = scanner_run.plan_scan(scenario_with({"vulnerabilities": COUNTS}), [NGINX], None, START).images[0]
    scan = scanner_run.image_scan(outcome)
    found = blobs(scenario_with({"vulnerabilities": COUNTS}))
    assert found["scan-x/0/report.sarif.json"] == (json.dumps(q.sarif_document(scan), indent=2) + "\n").encode()


# --- scenario files used verbatim ----------------------------------------------------------------------------------


def write_scenario(directory: Path, files: dict[str, str], **behaviour: Any) -> Path:
    path = directory / "scenario.json"
    path.write_text(json.dumps({"scans": {NGINX: {"result": "ok", "files": files, **behaviour}}}))
    return path


def test_named_files_are_uploaded_verbatim(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "r.sarif.json").write_bytes(b'{"version": "2.1.0", "runs": []}\n')
    (tmp_path / "out" / "x-Report.json").write_bytes(b'{"odd": true}')
    (tmp_path / "out" / "inv.json").write_bytes(b'{"SchemaVersion": 2}')
    (tmp_path / "out" / "q.log").write_bytes(b"Vulnerability report received\n0 vulnerabilities found!\n")
    files = {"sarif": "out/r.sarif.json", "json": "out/x-Report.json", "scanresult": "out/inv.json", "log": "out/q.log"}
    scenario = load_scenario(write_scenario(tmp_path, files))

    found = blobs(scenario)

    assert found["scan-x/0/report.sarif.json"] == b'{"version": "2.1.0", "runs": []}\n'
    assert found["scan-x/0/report.json"] == b'{"odd": true}'
    assert found["scan-x/0/scanresult.json"] == b'{"SchemaVersion": 2}'
    assert found["scan-x/0/scan.log"] == b"Vulnerability report received\n0 vulnerabilities found!\n"
    status = doc(found, "status.json")
    assert status["files"] == ["report.sarif.json", "report.json", "scanresult.json", "scan.log"]
    assert load_demo_scenario(tmp_path / "scenario.json").sim.scans[NGINX].file_contents["json"] == b'{"odd": true}'


def test_without_a_log_file_the_log_states_no_counts(tmp_path: Path) -> None:
    (tmp_path / "r.sarif.json").write_text("{}")
    found = blobs(load_scenario(write_scenario(tmp_path, {"sarif": "r.sarif.json"})))
    log = found["scan-x/0/scan.log"].decode()
    assert "Image source: remote" in log and "vulnerabilities found" not in log


@pytest.mark.parametrize(
    ("files", "extra", "message"),
    [
        ({"sarif": "missing.sarif.json"}, {}, "does not exist"),
        ({"sarif": "../outside.json"}, {}, "outside the scenario's directory"),
        ({"sarif": "/etc/hostname"}, {}, "relative to the scenario file"),
        ({"sarif": "link.json"}, {}, "outside the scenario's directory"),
        ({"sarif": "ok.json"}, {"vulnerabilities": {"HIGH": 1}}, "either files or vulnerabilities"),
        ({"sbom": "ok.json"}, {}, "Extra inputs are not permitted"),
        ({"sarif": "big.json"}, {}, "more than"),
    ],
)
def test_a_bad_files_entry_is_a_clear_scenario_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], extra: dict[str, Any], message: str
) -> None:
    scenario_dir = tmp_path / "scenario"
    scenario_dir.mkdir()
    (tmp_path / "outside.json").write_text("{}")
    (scenario_dir / "ok.json").write_text("{}")
    (scenario_dir / "link.json").symlink_to(tmp_path / "outside.json")
    (scenario_dir / "big.json").write_bytes(b"x" * 101)
    monkeypatch.setattr("devhost.armsim.scenario.MAX_SCAN_FILE_BYTES", 100)
    path = write_scenario(scenario_dir, files, **extra)

    with pytest.raises(ValidationError, match=message):
        load_scenario(path)
    with pytest.raises(ScenarioError, match=message):
        load_demo_scenario(path)


def test_files_need_a_scenario_file() -> None:
    with pytest.raises(ValidationError, match="need a scenario file"):
        Scenario.model_validate({"scans": {NGINX: {"files": {"sarif": "r.json"}}}})


def test_the_bundled_verbatim_scenario_loads_its_files() -> None:
    scenario = load_demo_scenario(ROOT / "scenarios" / "verbatim-files.json").sim
    found = blobs(scenario, image="acme.azurecr.io/billing-api:7.3.1")
    sarif = doc(found, "report.sarif.json")
    assert [r["properties"]["severity"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]] == [4, 3, 2]
    assert b"3 vulnerabilities found!" in found["scan-x/0/scan.log"]
    assert doc(found, "status.json")["files"] == ["report.sarif.json", "scanresult.json", "scan.log"]
